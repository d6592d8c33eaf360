//! The compiled bench EPP of `eppkit bench` (`--epp native`): real ext_proc over real HTTP/2
//! (tonic), answering like the mock EPP's default (strict) profile in the cases a bench drives,
//! at a fraction of the Node mock's CPU:
//! - the pick: `x-gateway-destination-endpoint` as `raw_value` (with `append: false`, the
//!   BoolValue real EPPs set), `clear_route_cache`, and the same value in `dynamic_metadata`
//!   `envoy.lb`; round-robin over `--endpoints`;
//! - body modes from `protocol_config` (none: BUFFERED, no waiting, as the mock): when the body
//!   follows and the client does not wait for the headers answer, the headers answer is held
//!   until the body has ended, then the body answer(s) follow — an empty BodyResponse per
//!   message, or in FULL_DUPLEX_STREAMED one `streamed_response` with the whole body;
//! - response headers / body / trailers and request trailers answered in their own phase;
//! - `x-eppkit-delay-ms` (request header) delays the headers answer, as the mock's directive.
//! The stream ends (gRPC OK) when the client half-closes. One thread (tokio current_thread).
//!
//!   eppkit-bench-epp --endpoints ip:port[,ip:port...] [--listen 127.0.0.1:0] [--delay-ms N]
//! Prints `grpc listening on <ip:port>` when ready (the mock's ready line).

use epp_core::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use epp_core::pb::envoy::service::ext_proc::v3 as ep;
use ep::external_processor_server::{ExternalProcessor, ExternalProcessorServer};
use ep::processing_request::Request as Rq;
use ep::processing_response::Response as Rs;
use prost_types::{value::Kind, Struct, Value};
use eppkit_bench_tools::precise_timer::ScheduleSleeper;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

const DESTINATION: &str = "x-gateway-destination-endpoint";
const LB_NAMESPACE: &str = "envoy.lb";
const DELAY_HEADER: &str = "x-eppkit-delay-ms";
const FULL_DUPLEX_STREAMED: i32 = 4;
const BUFFERED: i32 = 2;
const NONE: i32 = 0;

struct Shared {
    /// One prepared pick answer per endpoint; cloned per stream.
    picks: Vec<ep::ProcessingResponse>,
    next: AtomicUsize,
    default_delay_ms: u64,
    delays: Arc<Delays>,
}

/// The delayed answers' deadlines, woken by one task on a timerfd (precise_timer), not by tokio's
/// timer wheel: its 1 ms slots and ms-rounded epoll timeout made a 50 ms delay 51-52 ms, which
/// the C/D bound (connections / delay) of `eppkit bench nonblocking` counted against the plane.
#[derive(Default)]
struct Delays {
    due: Mutex<DueQueue>,
    /// An earlier deadline than the one the driver sleeps to.
    rearm: tokio::sync::Notify,
}

/// Deadlines, earliest first; `next_seq` keeps equal deadlines in arrival order.
#[derive(Default)]
struct DueQueue {
    heap: BinaryHeap<Reverse<Due>>,
    next_seq: u64,
}

struct Due {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl Delays {
    /// Wakes `waker` at `at` (or just after); a stream registers again on every Pending poll.
    fn wake_at(&self, at: Instant, waker: &Waker) {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = due.heap.peek().map(|Reverse(d)| d.at);
        let seq = due.next_seq;
        due.next_seq += 1;
        due.heap.push(Reverse(Due { at, seq, waker: waker.clone() }));
        if earliest.is_none_or(|e| at < e) {
            self.rearm.notify_one();
        }
    }

    /// The driver: sleeps to the earliest deadline, wakes every stream that is due.
    async fn drive(self: Arc<Self>) {
        let mut sleeper = ScheduleSleeper::new();
        loop {
            let next = self.due.lock().unwrap_or_else(|e| e.into_inner()).heap.peek().map(|Reverse(d)| d.at);
            match next {
                None => self.rearm.notified().await,
                Some(at) => {
                    if at > Instant::now() {
                        tokio::select! {
                            _ = sleeper.sleep_until(at) => {}
                            _ = self.rearm.notified() => continue,
                        }
                    }
                    let now = Instant::now();
                    let mut woken = Vec::new();
                    {
                        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
                        while due.heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
                            woken.push(due.heap.pop().expect("peeked").0.waker);
                        }
                    }
                    for w in woken {
                        w.wake();
                    }
                }
            }
        }
    }
}

struct Epp(Arc<Shared>);

fn pick_answer(endpoint: &str) -> ep::ProcessingResponse {
    let mut inner = BTreeMap::new();
    inner.insert(DESTINATION.to_owned(), Value { kind: Some(Kind::StringValue(endpoint.to_owned())) });
    let mut outer = BTreeMap::new();
    outer.insert(LB_NAMESPACE.to_owned(), Value { kind: Some(Kind::StructValue(Struct { fields: inner })) });
    ep::ProcessingResponse {
        response: Some(Rs::RequestHeaders(ep::HeadersResponse {
            response: Some(ep::CommonResponse {
                header_mutation: Some(ep::HeaderMutation {
                    set_headers: vec![HeaderValueOption {
                        header: Some(HeaderValue { key: DESTINATION.into(), value: String::new(), raw_value: endpoint.as_bytes().to_vec() }),
                        append: Some(false),
                        ..Default::default()
                    }],
                    remove_headers: vec![],
                }),
                clear_route_cache: true,
                ..Default::default()
            }),
        })),
        dynamic_metadata: Some(Struct { fields: outer }),
        ..Default::default()
    }
}

fn empty_body_answer(request: bool) -> ep::ProcessingResponse {
    let b = ep::BodyResponse { response: Some(ep::CommonResponse::default()) };
    ep::ProcessingResponse { response: Some(if request { Rs::RequestBody(b) } else { Rs::ResponseBody(b) }), ..Default::default() }
}

fn streamed_body_answer(request: bool, body: Vec<u8>, end_of_stream: bool) -> ep::ProcessingResponse {
    let b = ep::BodyResponse {
        response: Some(ep::CommonResponse {
            body_mutation: Some(ep::BodyMutation { mutation: Some(ep::body_mutation::Mutation::StreamedResponse(ep::StreamedBodyResponse { body, end_of_stream })) }),
            ..Default::default()
        }),
    };
    ep::ProcessingResponse { response: Some(if request { Rs::RequestBody(b) } else { Rs::ResponseBody(b) }), ..Default::default() }
}

/// One ext_proc stream: reads the client's messages and yields the answers, in order, without a
/// task or a channel of its own (the response stream drives the request stream).
struct Session {
    input: Streaming<ep::ProcessingRequest>,
    shared: Arc<Shared>,
    req_mode: i32,
    resp_mode: i32,
    modes_set: bool,
    waits_for_headers_answer: bool,
    holding: bool,
    held_messages: usize,
    held_body: Vec<u8>,
    delay_ms: u64,
    queue: VecDeque<ep::ProcessingResponse>,
    /// A delayed headers answer holds the queue until this instant (Shared::delays wakes it).
    hold_until: Option<Instant>,
    input_done: bool,
}

impl Session {
    fn set_modes(&mut self, m: &ep::ProcessingRequest) {
        self.modes_set = true;
        match &m.protocol_config {
            Some(pc) => {
                self.req_mode = pc.request_body_mode;
                self.resp_mode = pc.response_body_mode;
                // Envoy sends the body only after the headers answer, except in these two cases.
                self.waits_for_headers_answer = !(pc.request_body_mode == FULL_DUPLEX_STREAMED || pc.send_body_without_waiting_for_header_response);
            }
            None => {
                // Clients without protocol_config (NGF shim, eppkit's proxies) send headers then body at once.
                self.req_mode = BUFFERED;
                self.resp_mode = BUFFERED;
                self.waits_for_headers_answer = false;
            }
        }
    }

    fn answer_headers(&mut self) {
        let n = self.shared.picks.len();
        let i = self.shared.next.fetch_add(1, Ordering::Relaxed) % n;
        if self.delay_ms > 0 {
            self.hold_until = Some(Instant::now() + Duration::from_millis(self.delay_ms));
        }
        self.queue.push_back(self.shared.picks[i].clone());
    }

    fn release_held(&mut self, end_of_stream: bool) {
        self.holding = false;
        self.answer_headers();
        if self.req_mode == FULL_DUPLEX_STREAMED {
            let body = std::mem::take(&mut self.held_body);
            self.queue.push_back(streamed_body_answer(true, body, end_of_stream));
        } else {
            for _ in 0..self.held_messages {
                self.queue.push_back(empty_body_answer(true));
            }
        }
        self.held_messages = 0;
    }

    fn handle(&mut self, m: ep::ProcessingRequest) {
        if !self.modes_set {
            self.set_modes(&m);
        }
        let observe = m.observability_mode;
        match m.request {
            Some(Rq::RequestHeaders(h)) => {
                for hv in h.headers.iter().flat_map(|x| x.headers.iter()) {
                    if hv.key == DELAY_HEADER {
                        let v = if hv.raw_value.is_empty() { hv.value.as_bytes() } else { &hv.raw_value[..] };
                        if let Some(ms) = std::str::from_utf8(v).ok().and_then(|s| s.trim().parse().ok()) {
                            self.delay_ms = ms;
                        }
                    }
                }
                if observe {
                    return;
                }
                let body_follows = !h.end_of_stream && self.req_mode != NONE;
                self.holding = body_follows && !self.waits_for_headers_answer;
                if !self.holding {
                    self.answer_headers();
                }
            }
            Some(Rq::RequestBody(b)) => {
                let eos = b.end_of_stream || b.end_of_stream_without_message;
                if observe {
                    return;
                }
                if self.holding {
                    self.held_messages += 1;
                    if self.req_mode == FULL_DUPLEX_STREAMED {
                        self.held_body.extend_from_slice(&b.body);
                    }
                    if eos {
                        self.release_held(true);
                    }
                } else if self.req_mode == FULL_DUPLEX_STREAMED {
                    self.queue.push_back(streamed_body_answer(true, b.body, eos));
                } else {
                    self.queue.push_back(empty_body_answer(true));
                }
            }
            Some(Rq::RequestTrailers(_)) => {
                if observe {
                    return;
                }
                if self.holding {
                    self.release_held(false);
                }
                self.queue.push_back(ep::ProcessingResponse { response: Some(Rs::RequestTrailers(ep::TrailersResponse::default())), ..Default::default() });
            }
            Some(Rq::ResponseHeaders(_)) => {
                if !observe {
                    self.queue.push_back(ep::ProcessingResponse {
                        response: Some(Rs::ResponseHeaders(ep::HeadersResponse { response: Some(ep::CommonResponse::default()) })),
                        ..Default::default()
                    });
                }
            }
            Some(Rq::ResponseBody(b)) => {
                if !observe {
                    let eos = b.end_of_stream || b.end_of_stream_without_message;
                    let a = if self.resp_mode == FULL_DUPLEX_STREAMED { streamed_body_answer(false, b.body, eos) } else { empty_body_answer(false) };
                    self.queue.push_back(a);
                }
            }
            Some(Rq::ResponseTrailers(_)) => {
                if !observe {
                    self.queue.push_back(ep::ProcessingResponse { response: Some(Rs::ResponseTrailers(ep::TrailersResponse::default())), ..Default::default() });
                }
            }
            None => {}
        }
    }
}

impl Session {
    fn pending(&self, cx: &mut Context<'_>) -> Poll<Option<Result<ep::ProcessingResponse, Status>>> {
        if let Some(t) = self.hold_until {
            self.shared.delays.wake_at(t, cx.waker());
        }
        Poll::Pending
    }
}

impl Stream for Session {
    type Item = Result<ep::ProcessingResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.hold_until.is_some_and(|t| Instant::now() >= t) {
                this.hold_until = None;
            }
            if this.hold_until.is_none() {
                if let Some(r) = this.queue.pop_front() {
                    return Poll::Ready(Some(Ok(r)));
                }
                if this.input_done {
                    return Poll::Ready(None);
                }
            }
            if this.input_done {
                // Only the delay is pending; the delays' driver wakes us.
                return this.pending(cx);
            }
            match Pin::new(&mut this.input).poll_next(cx) {
                Poll::Ready(Some(Ok(m))) => this.handle(m),
                // Half-close, or a broken stream: answer what is owed, then end with OK.
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.input_done = true,
                Poll::Pending => return this.pending(cx),
            }
        }
    }
}

#[tonic::async_trait]
impl ExternalProcessor for Epp {
    type ProcessStream = Session;

    async fn process(&self, req: Request<Streaming<ep::ProcessingRequest>>) -> Result<Response<Session>, Status> {
        Ok(Response::new(Session {
            input: req.into_inner(),
            shared: self.0.clone(),
            req_mode: BUFFERED,
            resp_mode: BUFFERED,
            modes_set: false,
            waits_for_headers_answer: false,
            holding: false,
            held_messages: 0,
            held_body: Vec::new(),
            delay_ms: self.0.default_delay_ms,
            queue: VecDeque::with_capacity(2),
            hold_until: None,
            input_done: false,
        }))
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("eppkit-bench-epp: {msg}\nusage: eppkit-bench-epp --endpoints ip:port[,ip:port...] [--listen 127.0.0.1:0] [--delay-ms N]");
    std::process::exit(2);
}

fn main() {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut endpoints: Vec<String> = Vec::new();
    let mut delay_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or_else(|| usage("--listen needs host:port")),
            "--endpoints" => {
                endpoints = args.next().unwrap_or_else(|| usage("--endpoints needs a list")).split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
            }
            "--delay-ms" => delay_ms = args.next().and_then(|d| d.parse().ok()).unwrap_or_else(|| usage("--delay-ms needs a number")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if endpoints.is_empty() {
        usage("--endpoints is required");
    }
    let delays = Arc::new(Delays::default());
    let shared = Arc::new(Shared { picks: endpoints.iter().map(|e| pick_answer(e)).collect(), next: AtomicUsize::new(0), default_delay_ms: delay_ms, delays: delays.clone() });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        tokio::spawn(delays.drive());
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap_or_else(|e| usage(&format!("cannot listen on {listen}: {e}")));
        println!("grpc listening on {}", listener.local_addr().expect("local addr"));
        // TCP_NODELAY: with Nagle, a pick's small frames can wait for a delayed ACK (~40 ms).
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(true);
            }
            s
        });
        // hyper's default of 200 concurrent streams would cap 50 ms picks at 4,000/s per connection.
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(100_000))
            .initial_stream_window_size(Some(1 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .add_service(ExternalProcessorServer::new(Epp(shared)))
            .serve_with_incoming(incoming)
            .await
            .expect("serve");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flag(std::sync::atomic::AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn delays_wake_each_stream_at_its_deadline_never_before_whatever_the_order() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let delays = Arc::new(Delays::default());
            tokio::spawn(delays.clone().drive());
            let t0 = Instant::now();
            // Registered later-first: the driver must re-arm for each earlier deadline.
            let offsets = [30u64, 10, 20, 5];
            let flags: Vec<Arc<Flag>> = offsets.iter().map(|_| Arc::new(Flag(false.into()))).collect();
            for (o, f) in offsets.iter().zip(&flags) {
                delays.wake_at(t0 + Duration::from_millis(*o), &Waker::from(f.clone()));
            }
            let mut woken_at = vec![None; offsets.len()];
            while woken_at.iter().any(Option::is_none) {
                tokio::task::yield_now().await;
                for (i, f) in flags.iter().enumerate() {
                    if woken_at[i].is_none() && f.0.load(Ordering::SeqCst) {
                        woken_at[i] = Some(Instant::now());
                    }
                }
            }
            for (o, w) in offsets.iter().zip(&woken_at) {
                assert!(w.unwrap() >= t0 + Duration::from_millis(*o), "woken before its deadline ({o} ms)");
            }
        });
    }
}
