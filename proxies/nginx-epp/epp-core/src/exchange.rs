//! One EPP exchange as data: the ProcessingRequest messages built from an HTTP request, and the
//! interpretation of the ProcessingResponse messages into an [`Outcome`].

use crate::endpoint::{first_allowed_endpoint, Allowlist};
use crate::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, Metadata};
use crate::pb::envoy::service::ext_proc::v3 as ep;
use crate::settings::BodyMode;
use prost_types::{value::Kind, Struct, Value};

pub const DEFAULT_ENDPOINT_HEADER: &str = "x-gateway-destination-endpoint";
pub const LB_NAMESPACE: &str = "envoy.lb";
pub const SERVED_KEY: &str = "x-gateway-destination-endpoint-served";
/// Streamed bodies go in chunks of this size.
pub const STREAM_CHUNK: usize = 64 * 1024;
pub const SUBSET_NAMESPACE: &str = "envoy.lb.subset_hint";
pub const SUBSET_KEY: &str = "x-gateway-destination-endpoint-subset";

/// The HTTP request as the EPP sees it.
#[derive(Clone, Debug, Default)]
pub struct RequestData {
    /// Lower-case names, pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) first.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The HTTP request has a body (even when the body mode does not send it).
    pub has_body: bool,
    /// Endpoints the EPP may pick from (metadata_context `envoy.lb.subset_hint`); empty = none sent.
    pub subset_hint: Vec<String>,
}

/// `$epp_status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EppStatus {
    Ok,
    Immediate,
    Timeout,
    Error,
    Unavailable,
    Invalid,
    FailOpen,
}

impl EppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Immediate => "immediate",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Unavailable => "unavailable",
            Self::Invalid => "invalid",
            Self::FailOpen => "fail_open",
        }
    }
}

/// A request header change asked for by the EPP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderOp {
    /// Replace every value of the header (or add it).
    Set(String, Vec<u8>),
    /// Add one more value.
    Append(String, Vec<u8>),
    Remove(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The EPP picked `endpoint` (the first valid entry); `ops` are the other header mutations.
    Routed { endpoint: String, all: String, ops: Vec<HeaderOp> },
    /// The EPP answered the request itself.
    Immediate { status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8> },
    /// No usable answer; `status` says which kind, `detail` is for the error log.
    Failed { status: EppStatus, detail: String },
}

impl Outcome {
    pub fn failed(status: EppStatus, detail: impl Into<String>) -> Self {
        Self::Failed { status, detail: detail.into() }
    }
}

fn header_map(headers: &[(String, Vec<u8>)]) -> HeaderMap {
    HeaderMap {
        // Like Envoy: raw_value only (a `value` as well makes some servers reject the message).
        headers: headers
            .iter()
            .map(|(k, v)| HeaderValue { key: k.clone(), value: String::new(), raw_value: v.clone() })
            .collect(),
    }
}

/// The messages of one exchange, in order; the stream is half-closed after the last.
pub fn build_messages(req: &RequestData, mode: BodyMode) -> Vec<ep::ProcessingRequest> {
    let send_body = mode != BodyMode::None && req.has_body;
    let mut out = Vec::new();
    out.push(ep::ProcessingRequest {
        request: Some(ep::processing_request::Request::RequestHeaders(ep::HttpHeaders {
            headers: Some(header_map(&req.headers)),
            // No body on this stream (none mode or none at all): the real EPPs look only at
            // end_of_stream and would hold their answer for a body that never comes.
            end_of_stream: !send_body,
        })),
        protocol_config: Some(ep::ProtocolConfiguration {
            request_body_mode: mode.wire(),
            response_body_mode: 0,
            // The whole exchange is sent at once; the EPP may hold its headers answer until the
            // body has ended (what the reference EPP does to read the model name).
            send_body_without_waiting_for_header_response: send_body,
        }),
        metadata_context: subset_metadata(&req.subset_hint),
        ..Default::default()
    });
    if send_body {
        let chunks: Vec<&[u8]> = match mode {
            BodyMode::Streamed if !req.body.is_empty() => req.body.chunks(STREAM_CHUNK).collect(),
            _ => vec![&req.body[..]],
        };
        let n = chunks.len();
        for (i, c) in chunks.into_iter().enumerate() {
            out.push(ep::ProcessingRequest {
                request: Some(ep::processing_request::Request::RequestBody(ep::HttpBody {
                    body: c.to_vec(),
                    end_of_stream: i + 1 == n,
                    end_of_stream_without_message: false,
                })),
                ..Default::default()
            });
        }
    }
    out
}

fn subset_metadata(hint: &[String]) -> Option<Metadata> {
    if hint.is_empty() {
        return None;
    }
    let list = prost_types::ListValue { values: hint.iter().map(|e| Value { kind: Some(Kind::StringValue(e.clone())) }).collect() };
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(SUBSET_KEY.to_owned(), Value { kind: Some(Kind::ListValue(list)) });
    let mut filter_metadata = std::collections::HashMap::new();
    filter_metadata.insert(SUBSET_NAMESPACE.to_owned(), Struct { fields });
    Some(Metadata { filter_metadata })
}

/// The served-endpoint report: a response_headers message whose metadata_context carries
/// `envoy.lb` / `x-gateway-destination-endpoint-served`.
pub fn served_report(served: &str, status: u16) -> ep::ProcessingRequest {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(SERVED_KEY.to_owned(), Value { kind: Some(Kind::StringValue(served.to_owned())) });
    let mut filter_metadata = std::collections::HashMap::new();
    filter_metadata.insert(LB_NAMESPACE.to_owned(), Struct { fields });
    ep::ProcessingRequest {
        request: Some(ep::processing_request::Request::ResponseHeaders(ep::HttpHeaders {
            headers: Some(header_map(&[(":status".to_owned(), status.to_string().into_bytes())])),
            end_of_stream: true,
        })),
        metadata_context: Some(Metadata { filter_metadata }),
        ..Default::default()
    }
}

fn header_value_bytes(h: &HeaderValue) -> Vec<u8> {
    if !h.raw_value.is_empty() {
        h.raw_value.clone()
    } else {
        h.value.clone().into_bytes()
    }
}

fn metadata_endpoint(md: &Option<Struct>, key: &str) -> Option<String> {
    let lb = md.as_ref()?.fields.get(LB_NAMESPACE)?;
    let Some(Kind::StructValue(s)) = &lb.kind else { return None };
    match &s.fields.get(key)?.kind {
        Some(Kind::StringValue(v)) => Some(v.clone()),
        // A list of strings is accepted too (some EPPs send one).
        Some(Kind::ListValue(l)) => Some(
            l.values
                .iter()
                .filter_map(|v| if let Some(Kind::StringValue(s)) = &v.kind { Some(s.as_str()) } else { None })
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// Folds the EPP's answers into an outcome.
#[derive(Debug)]
pub struct Collector {
    header_name: String,
    body_sent: bool,
    mode: BodyMode,
    headers_answer: Option<(Option<String>, Vec<HeaderOp>)>,
    body_done: bool,
    /// Streamed mode: body chunks sent and not yet answered by a plain (non-`streamed_response`)
    /// body answer. Each plain answer releases one chunk, as Envoy and node-proxy count them.
    chunks_owed: usize,
    /// Streamed mode: the EPP answered with `streamed_response` and owns the body until its
    /// `end_of_stream`; plain answers no longer end it.
    epp_owns_body: bool,
    immediate: Option<Outcome>,
    protocol_error: Option<String>,
    allow: Allowlist,
}

impl Collector {
    /// `header_name`: lower-case name carrying the pick (x-gateway-destination-endpoint by default).
    pub fn new(header_name: &str, mode: BodyMode, body_sent: bool) -> Self {
        Self {
            header_name: header_name.to_ascii_lowercase(),
            body_sent,
            mode,
            headers_answer: None,
            body_done: !body_sent,
            chunks_owed: usize::from(body_sent),
            epp_owns_body: false,
            immediate: None,
            protocol_error: None,
            allow: Allowlist::default(),
        }
    }

    /// Streamed mode: how many body chunks were sent (default one when a body was sent).
    pub fn with_body_chunks(mut self, n: usize) -> Self {
        if self.body_sent {
            self.chunks_owed = n.max(1);
        }
        self
    }

    /// Picks outside `allow` are refused (the first allowed entry of the list is used).
    pub fn with_allowlist(mut self, allow: Allowlist) -> Self {
        self.allow = allow;
        self
    }

    /// Takes one answer; true when nothing more is needed.
    pub fn feed(&mut self, resp: ep::ProcessingResponse) -> bool {
        use ep::processing_response::Response as R;
        match resp.response {
            Some(R::ImmediateResponse(ir)) => {
                let status = ir.status.map(|s| s.code).unwrap_or(0);
                // Envoy: a missing or < 200 status becomes 200.
                let status = if (200..=599).contains(&status) { status as u16 } else { 200 };
                let mut headers = Vec::new();
                if let Some(m) = ir.headers {
                    for o in m.set_headers {
                        if let Some(h) = o.header {
                            headers.push((h.key.to_ascii_lowercase(), header_value_bytes(&h)));
                        }
                    }
                }
                self.immediate = Some(Outcome::Immediate { status, headers, body: ir.body });
                true
            }
            Some(R::RequestHeaders(_)) if self.headers_answer.is_some() => {
                // Envoy: a spurious message (the headers were answered already) fails the stream.
                self.protocol_error = Some("a second request_headers answer (spurious message)".into());
                true
            }
            Some(R::RequestHeaders(hr)) => {
                let mut pick = None;
                let mut ops = Vec::new();
                if let Some(cr) = hr.response {
                    if let Some(m) = cr.header_mutation {
                        for o in m.set_headers {
                            let Some(h) = o.header else { continue };
                            let key = h.key.to_ascii_lowercase();
                            let val = header_value_bytes(&h);
                            if key == self.header_name || key == DEFAULT_ENDPOINT_HEADER {
                                if pick.is_none() || key == self.header_name {
                                    pick = Some(String::from_utf8_lossy(&val).into_owned());
                                }
                                continue;
                            }
                            // append_action: APPEND_IF_EXISTS_OR_ADD(0) is the proto default, but
                            // Envoy honours the deprecated `append` (default false = overwrite).
                            let append = o.append.unwrap_or(false);
                            ops.push(if append { HeaderOp::Append(key, val) } else { HeaderOp::Set(key, val) });
                        }
                        for k in m.remove_headers {
                            ops.push(HeaderOp::Remove(k.to_ascii_lowercase()));
                        }
                    }
                }
                if pick.is_none() {
                    pick = metadata_endpoint(&resp.dynamic_metadata, &self.header_name)
                        .or_else(|| metadata_endpoint(&resp.dynamic_metadata, DEFAULT_ENDPOINT_HEADER));
                }
                self.headers_answer = Some((pick, ops));
                self.done()
            }
            Some(R::RequestBody(_)) if self.headers_answer.is_none() => {
                // Envoy: a body answer while the headers answer is owed is a spurious message and
                // fails the stream (an immediate response after it does not undo that).
                self.protocol_error = Some("a request_body answer while the request_headers answer is owed (spurious message)".into());
                true
            }
            Some(R::RequestBody(br)) => {
                let end = match self.mode {
                    BodyMode::Streamed => match br.response.and_then(|c| c.body_mutation).and_then(|m| m.mutation) {
                        // Full duplex: the EPP relays the body itself; only its end ends it.
                        Some(ep::body_mutation::Mutation::StreamedResponse(sr)) => {
                            self.epp_owns_body = true;
                            sr.end_of_stream
                        }
                        // A plain answer (or a per-chunk mutation) answers the oldest chunk sent;
                        // the body is done when every chunk has its answer. Counting it as the
                        // end let a gRPC error after the first of many chunks route the request
                        // (fuzz finding; Envoy and node-proxy fail it).
                        _ if self.epp_owns_body => false,
                        _ => {
                            self.chunks_owed = self.chunks_owed.saturating_sub(1);
                            self.chunks_owed == 0
                        }
                    },
                    _ => true,
                };
                if end {
                    self.body_done = true;
                }
                self.done()
            }
            Some(R::RequestTrailers(_)) => self.done(),
            Some(other) => {
                self.protocol_error = Some(format!("unexpected answer of another phase: {}", phase_name(&other)));
                true
            }
            None => {
                self.protocol_error = Some("answer without a response".into());
                true
            }
        }
    }

    fn done(&self) -> bool {
        self.headers_answer.is_some() && (self.body_done || !self.body_sent)
    }

    /// True once the headers answer (the one that matters) is in.
    pub fn has_pick_answer(&self) -> bool {
        self.headers_answer.is_some() || self.immediate.is_some()
    }

    /// The outcome from what arrived (call at stream end, on completion, or on a late timeout).
    pub fn outcome(self) -> Outcome {
        if let Some(i) = self.immediate {
            return i;
        }
        if let Some(e) = self.protocol_error {
            return Outcome::failed(EppStatus::Error, e);
        }
        match self.headers_answer {
            None => Outcome::failed(EppStatus::Error, "EPP closed the stream without answering the request headers"),
            Some((None, _)) => Outcome::failed(EppStatus::Invalid, "EPP answer carries no destination endpoint"),
            Some((Some(all), ops)) => match first_allowed_endpoint(&all, &self.allow) {
                Some(endpoint) => Outcome::Routed { endpoint, all, ops },
                None if self.allow.is_empty() => {
                    Outcome::failed(EppStatus::Invalid, format!("EPP picked no valid ip:port: {:?}", truncate(&all, 200)))
                }
                None => Outcome::failed(EppStatus::Invalid, format!("EPP picked no allowed ip:port: {:?}", truncate(&all, 200))),
            },
        }
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn phase_name(r: &ep::processing_response::Response) -> &'static str {
    use ep::processing_response::Response as R;
    match r {
        R::RequestHeaders(_) => "request_headers",
        R::ResponseHeaders(_) => "response_headers",
        R::RequestBody(_) => "request_body",
        R::ResponseBody(_) => "response_body",
        R::RequestTrailers(_) => "request_trailers",
        R::ResponseTrailers(_) => "response_trailers",
        R::ImmediateResponse(_) => "immediate_response",
        R::StreamedImmediateResponse(_) => "streamed_immediate_response",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::core::v3::HeaderValueOption;
    use crate::pb::envoy::r#type::v3::HttpStatus;
    use ep::processing_response::Response as R;

    fn hv(k: &str, v: &str) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(HeaderValue { key: k.into(), value: String::new(), raw_value: v.as_bytes().to_vec() }),
            ..Default::default()
        }
    }

    fn headers_answer(set: Vec<HeaderValueOption>, remove: Vec<String>, md: Option<Struct>) -> ep::ProcessingResponse {
        ep::ProcessingResponse {
            response: Some(R::RequestHeaders(ep::HeadersResponse {
                response: Some(ep::CommonResponse {
                    header_mutation: Some(ep::HeaderMutation { set_headers: set, remove_headers: remove }),
                    ..Default::default()
                }),
            })),
            dynamic_metadata: md,
            ..Default::default()
        }
    }

    fn lb_md(key: &str, v: &str) -> Struct {
        let mut inner = std::collections::BTreeMap::new();
        inner.insert(key.to_owned(), Value { kind: Some(Kind::StringValue(v.into())) });
        let mut outer = std::collections::BTreeMap::new();
        outer.insert(LB_NAMESPACE.to_owned(), Value { kind: Some(Kind::StructValue(Struct { fields: inner })) });
        Struct { fields: outer }
    }

    fn req(body: &[u8]) -> RequestData {
        RequestData {
            headers: vec![(":method".into(), b"POST".to_vec()), ("content-type".into(), b"application/json".to_vec())],
            body: body.to_vec(),
            has_body: !body.is_empty(),
            subset_hint: vec![],
        }
    }

    #[test]
    fn messages_buffered_with_body() {
        let m = build_messages(&req(b"{\"model\":\"m\"}"), BodyMode::Buffered);
        assert_eq!(m.len(), 2);
        let pc = m[0].protocol_config.as_ref().unwrap();
        assert_eq!(pc.request_body_mode, 2);
        assert!(pc.send_body_without_waiting_for_header_response);
        match &m[0].request {
            Some(ep::processing_request::Request::RequestHeaders(h)) => {
                assert!(!h.end_of_stream);
                let hs = &h.headers.as_ref().unwrap().headers;
                assert_eq!(hs[0].key, ":method");
                assert_eq!(hs[0].raw_value, b"POST");
                assert!(hs[0].value.is_empty(), "raw_value only");
            }
            other => panic!("{other:?}"),
        }
        match &m[1].request {
            Some(ep::processing_request::Request::RequestBody(b)) => {
                assert!(b.end_of_stream);
                assert_eq!(b.body, b"{\"model\":\"m\"}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_without_body_and_none_mode() {
        let m = build_messages(&req(b""), BodyMode::Buffered);
        assert_eq!(m.len(), 1);
        assert!(matches!(&m[0].request, Some(ep::processing_request::Request::RequestHeaders(h)) if h.end_of_stream));
        let m = build_messages(&req(b"abc"), BodyMode::None);
        assert_eq!(m.len(), 1, "none: the body is not sent");
        // The stream ends with the headers: a real EPP would otherwise wait for the body.
        assert!(matches!(&m[0].request, Some(ep::processing_request::Request::RequestHeaders(h)) if h.end_of_stream));
        assert_eq!(m[0].protocol_config.as_ref().unwrap().request_body_mode, 0);
    }

    #[test]
    fn messages_streamed_chunks() {
        let body = vec![7u8; STREAM_CHUNK * 2 + 10];
        let m = build_messages(&req(&body), BodyMode::Streamed);
        assert_eq!(m.len(), 4);
        let mut total = 0;
        for (i, msg) in m[1..].iter().enumerate() {
            let Some(ep::processing_request::Request::RequestBody(b)) = &msg.request else { panic!() };
            total += b.body.len();
            assert_eq!(b.end_of_stream, i == 2);
        }
        assert_eq!(total, body.len());
        assert_eq!(m[0].protocol_config.as_ref().unwrap().request_body_mode, 4);
    }

    #[test]
    fn pick_from_header_mutation_with_fallbacks_and_ops() {
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::Buffered, true);
        let mut app = hv("x-added", "2");
        app.append = Some(true);
        let done = c.feed(headers_answer(
            vec![hv("x-gateway-destination-endpoint", "bogus,10.0.0.5:8000,10.0.0.6:8000"), hv("X-Set", "1"), app],
            vec!["X-Gone".into()],
            None,
        ));
        assert!(!done, "waits for the body answer");
        assert!(c.has_pick_answer());
        assert!(c.feed(ep::ProcessingResponse {
            response: Some(R::RequestBody(ep::BodyResponse::default())),
            ..Default::default()
        }));
        assert_eq!(
            c.outcome(),
            Outcome::Routed {
                endpoint: "10.0.0.5:8000".into(),
                all: "bogus,10.0.0.5:8000,10.0.0.6:8000".into(),
                ops: vec![
                    HeaderOp::Set("x-set".into(), b"1".to_vec()),
                    HeaderOp::Append("x-added".into(), b"2".to_vec()),
                    HeaderOp::Remove("x-gone".into())
                ]
            }
        );
    }

    #[test]
    fn pick_from_metadata_when_no_header() {
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false);
        assert!(c.feed(headers_answer(vec![], vec![], Some(lb_md(DEFAULT_ENDPOINT_HEADER, "[::1]:9000")))));
        assert!(matches!(c.outcome(), Outcome::Routed { endpoint, .. } if endpoint == "[::1]:9000"));
    }

    #[test]
    fn a_second_headers_answer_is_a_protocol_error() {
        // Buffered with a body: the first headers answer leaves the body's answer owed; a second
        // headers answer is Envoy's spurious message (500 under FailClose), not the body's answer.
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::Buffered, true);
        assert!(!c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:80")], vec![], None)));
        assert!(c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:80")], vec![], None)));
        assert!(matches!(c.outcome(), Outcome::Failed { status: EppStatus::Error, detail } if detail.contains("second request_headers")));
    }

    #[test]
    fn garbage_and_missing_picks_are_invalid() {
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false);
        c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "not-an-endpoint")], vec![], None));
        assert!(matches!(c.outcome(), Outcome::Failed { status: EppStatus::Invalid, .. }));
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false);
        c.feed(headers_answer(vec![], vec![], None));
        assert!(matches!(c.outcome(), Outcome::Failed { status: EppStatus::Invalid, .. }));
        let c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false);
        assert!(matches!(c.outcome(), Outcome::Failed { status: EppStatus::Error, .. }));
    }

    #[test]
    fn custom_header_name_wins() {
        let mut c = Collector::new("x-inference-upstream", BodyMode::None, false);
        c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:1"), hv("x-inference-upstream", "10.0.0.2:2")], vec![], None));
        assert!(matches!(c.outcome(), Outcome::Routed { endpoint, .. } if endpoint == "10.0.0.2:2"));
    }

    #[test]
    fn immediate_response_is_relayed() {
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::Buffered, true);
        let done = c.feed(ep::ProcessingResponse {
            response: Some(R::ImmediateResponse(ep::ImmediateResponse {
                status: Some(HttpStatus { code: 429 }),
                headers: Some(ep::HeaderMutation { set_headers: vec![hv("Retry-After", "1")], remove_headers: vec![] }),
                body: b"slow down".to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        });
        assert!(done);
        assert_eq!(
            c.outcome(),
            Outcome::Immediate { status: 429, headers: vec![("retry-after".into(), b"1".to_vec())], body: b"slow down".to_vec() }
        );
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false);
        c.feed(ep::ProcessingResponse {
            response: Some(R::ImmediateResponse(ep::ImmediateResponse::default())),
            ..Default::default()
        });
        assert!(matches!(c.outcome(), Outcome::Immediate { status: 200, .. }), "missing status becomes 200");
    }

    #[test]
    fn a_body_answer_before_the_headers_answer_is_a_protocol_error() {
        for mode in [BodyMode::Buffered, BodyMode::Streamed] {
            let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, mode, true);
            let body = ep::ProcessingResponse { response: Some(R::RequestBody(ep::BodyResponse::default())), ..Default::default() };
            assert!(c.feed(body), "the stream is over at the spurious message");
            match c.outcome() {
                Outcome::Failed { status: EppStatus::Error, detail } => assert!(detail.contains("owed"), "{detail}"),
                o => panic!("expected a protocol error, got {o:?}"),
            }
        }
    }

    #[test]
    fn full_duplex_plain_body_answers_release_one_chunk_each() {
        let plain = || ep::ProcessingResponse { response: Some(R::RequestBody(ep::BodyResponse::default())), ..Default::default() };
        let streamed = |eos: bool| ep::ProcessingResponse {
            response: Some(R::RequestBody(ep::BodyResponse {
                response: Some(ep::CommonResponse {
                    body_mutation: Some(ep::BodyMutation {
                        mutation: Some(ep::body_mutation::Mutation::StreamedResponse(ep::StreamedBodyResponse { body: vec![], end_of_stream: eos })),
                    }),
                    ..Default::default()
                }),
            })),
            ..Default::default()
        };
        // Three chunks sent: the pick, then three plain answers; only the third completes it.
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::Streamed, true).with_body_chunks(3);
        assert!(!c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:1")], vec![], None)));
        assert!(!c.feed(plain()), "one of three chunks answered");
        assert!(!c.feed(plain()), "two of three chunks answered");
        assert!(c.feed(plain()), "every chunk answered");
        assert!(matches!(c.outcome(), Outcome::Routed { .. }));
        // Once the EPP relays the body (streamed_response), only its end_of_stream ends it.
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::Streamed, true).with_body_chunks(2);
        assert!(!c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:1")], vec![], None)));
        assert!(!c.feed(streamed(false)));
        assert!(!c.feed(plain()));
        assert!(!c.feed(plain()), "plain answers do not end a body the EPP owns");
        assert!(c.feed(streamed(true)));
        // Buffered: one body answer whatever the chunk count.
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::Buffered, true).with_body_chunks(5);
        assert!(!c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:1")], vec![], None)));
        assert!(c.feed(plain()));
    }

    #[test]
    fn wrong_phase_is_an_error() {
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false);
        assert!(c.feed(ep::ProcessingResponse {
            response: Some(R::ResponseHeaders(ep::HeadersResponse::default())),
            ..Default::default()
        }));
        assert!(matches!(c.outcome(), Outcome::Failed { status: EppStatus::Error, .. }));
    }

    #[test]
    fn subset_hint_and_allowlist() {
        let mut r = req(b"");
        r.subset_hint = vec!["10.0.0.1:1".into(), "10.0.0.2:2".into()];
        let m = build_messages(&r, BodyMode::Buffered);
        let md = m[0].metadata_context.as_ref().unwrap();
        let Some(Kind::ListValue(l)) = &md.filter_metadata[SUBSET_NAMESPACE].fields[SUBSET_KEY].kind else { panic!() };
        assert_eq!(l.values.len(), 2);
        assert!(build_messages(&req(b""), BodyMode::Buffered)[0].metadata_context.is_none());
        let allow = Allowlist::parse(["10.0.0.2:2"]).unwrap();
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false).with_allowlist(allow.clone());
        c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:1,10.0.0.2:2")], vec![], None));
        assert!(matches!(c.outcome(), Outcome::Routed { endpoint, .. } if endpoint == "10.0.0.2:2"));
        let mut c = Collector::new(DEFAULT_ENDPOINT_HEADER, BodyMode::None, false).with_allowlist(allow);
        c.feed(headers_answer(vec![hv(DEFAULT_ENDPOINT_HEADER, "10.0.0.1:1")], vec![], None));
        assert!(matches!(c.outcome(), Outcome::Failed { status: EppStatus::Invalid, .. }));
    }

    #[test]
    fn served_report_shape() {
        let m = served_report("10.0.0.1:8000", 200);
        let md = m.metadata_context.unwrap();
        let lb = &md.filter_metadata[LB_NAMESPACE];
        assert!(matches!(&lb.fields[SERVED_KEY].kind, Some(Kind::StringValue(s)) if s == "10.0.0.1:8000"));
        assert!(matches!(m.request, Some(ep::processing_request::Request::ResponseHeaders(_))));
    }
}
