//! Request side: start an EPP call, suspend the request, resume it when the call completes.
//! Safe code over [`ffi::Request`]; nginx's raw pointers stay in ffi.rs.
//!
//! Reference counting (r->main->count): while a call is in flight the request's base reference
//! belongs to the call. The content handler returns NGX_DONE (the content phase then drops one
//! reference, so it takes one first, or the body read took one); the precontent handler returns
//! NGX_DONE without a drop. On completion exactly one of these consumes the base reference:
//! internal redirect + finalize(NGX_DONE), the phase engine and the proxied response, or
//! finalize(status). A client that goes away makes nginx terminate the request; the pool
//! cleanup then cancels the call, and its late completion finds no parked request.

use crate::conf::{self, LocConf};
use crate::ffi::{self, BodyPart, HeaderEntry, Request, Status, Timer};
use crate::worker::{self, Completion};
use epp_core::client::{CallHandle, EppCall, EppTarget, ServedSlot};
use epp_core::exchange::{EppStatus, HeaderOp, Outcome, RequestData};
use epp_core::settings::{BodyMode, TlsSettings};
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// NGF form: content handler, internal redirect to $epp_internal_path afterwards.
    Redirect,
    /// Direct form: precontent phase, the phases resume in the same location afterwards.
    Resume,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    ReadingBody,
    Waiting,
    Done,
}

struct ReqCtx {
    mode: Mode,
    state: State,
    /// An EPP call follows the body read (false: BBR alone, the phases resume after it).
    epp: bool,
    /// Non-zero while a call is in flight (the id the request is parked under).
    id: u64,
    handle: Option<CallHandle>,
    /// Backstop timer while a call is in flight: fails the call if the runtime never answers,
    /// and, being an nginx timer, keeps a gracefully exiting worker alive until calls end.
    timer: Option<Timer>,
    /// Where the served endpoint goes (epp_report_served); filled in the log phase, dropped
    /// (the stream reset) with the request.
    served: Option<ServedSlot>,
}

thread_local! {
    /// Per-request state by request identity; an entry lives until the request's pool is
    /// destroyed (its cleanup removes it). Never dropped by the thread's exit.
    static CTXS: ManuallyDrop<RefCell<HashMap<usize, ReqCtx>>> = ManuallyDrop::new(RefCell::new(HashMap::new()));
}

/// Runs `f` on the request's state (None when it has none). `f` must not call into nginx.
fn with_ctx<R>(key: usize, f: impl FnOnce(&mut ReqCtx) -> R) -> Option<R> {
    CTXS.with(|m| m.borrow_mut().get_mut(&key).map(f))
}

/// The request has a state for this location (an internal redirect forgets it, as r->ctx).
fn has_ctx(r: &Request) -> bool {
    r.has_ctx_mark() && CTXS.with(|m| m.borrow().contains_key(&r.id()))
}

fn state_of(r: &Request) -> Option<State> {
    if !r.has_ctx_mark() {
        return None;
    }
    with_ctx(r.id(), |c| c.state)
}

fn set_state(r: &Request, s: State) {
    with_ctx(r.id(), |c| c.state = s);
}

/// Pool cleanup: runs when the request's pool is destroyed, whatever the path (normal end,
/// client abort, worker shutdown). Cancels a call in flight; the timer is deleted and the
/// served slot dropped with the state.
fn drop_ctx(key: usize) {
    let Some(mut ctx) = CTXS.with(|m| m.borrow_mut().remove(&key)) else { return };
    if let Some(h) = ctx.handle.take() {
        h.cancel();
    }
    drop(ctx);
}

fn create_ctx(r: &mut Request, mode: Mode, epp: bool) -> bool {
    let key = r.id();
    if !r.on_cleanup(drop_ctx, key) {
        return false;
    }
    let ctx = ReqCtx { mode, state: State::ReadingBody, epp, id: 0, handle: None, timer: None, served: None };
    let old = CTXS.with(|m| m.borrow_mut().insert(key, ctx));
    drop(old);
    r.set_ctx_mark();
    true
}

fn lcf(r: &Request) -> &'static LocConf {
    r.loc_conf::<LocConf>()
}

/// `epp_get_endpoint on;` (NGF form).
pub fn content_handler(r: &mut Request) -> Status {
    if !create_ctx(r, Mode::Redirect, true) {
        return ffi::HTTP_INTERNAL_SERVER_ERROR;
    }
    let lcf = lcf(r);
    if bbr_pending(r, lcf) || lcf.body_mode() != BodyMode::None {
        let rc = r.read_body(ffi::body_handler!(body_handler));
        if rc >= ffi::HTTP_SPECIAL_RESPONSE {
            return rc;
        }
        // The content phase's finalize(NGX_DONE) drops the body read's reference.
        return ffi::DONE;
    }
    // Balances the content phase's finalize(NGX_DONE).
    r.take_reference();
    begin(r);
    ffi::DONE
}

/// Direct form (`epp_endpoint`), and BBR alone (`epp_bbr on` without an EPP): precontent
/// phase, before proxy_pass's content handler.
pub fn precontent_handler(r: &mut Request) -> Status {
    let lcf = lcf(r);
    if lcf.get_endpoint == 1 || !r.is_main() {
        return ffi::DECLINED;
    }
    if let Some(state) = state_of(r) {
        return match state {
            State::Done => ffi::DECLINED,
            // A stray run of the phases while the call is in flight.
            _ => ffi::DONE,
        };
    }
    let epp = lcf.endpoint.is_some();
    let bbr = bbr_pending(r, lcf);
    if !epp && !bbr {
        return ffi::DECLINED;
    }
    if !create_ctx(r, Mode::Resume, epp) {
        return ffi::HTTP_INTERNAL_SERVER_ERROR;
    }
    if bbr || lcf.body_mode() != BodyMode::None {
        let rc = r.read_body(ffi::body_handler!(body_handler));
        if rc >= ffi::HTTP_SPECIAL_RESPONSE {
            return rc;
        }
        // The phase engine does not drop a reference on NGX_DONE: drop the body read's here.
        r.finalize(ffi::DONE);
        return ffi::DONE;
    }
    begin(r);
    ffi::DONE
}

/// Body fully read (possibly synchronously, inside ngx_http_read_client_request_body).
fn body_handler(r: &mut Request) {
    if !has_ctx(r) {
        r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    let lcf = lcf(r);
    if bbr_pending(r, lcf) {
        if let Err(status) = run_bbr(r, lcf) {
            set_state(r, State::Done);
            r.finalize(status);
            return;
        }
    }
    if with_ctx(r.id(), |c| c.epp).unwrap_or(false) {
        begin(r);
        return;
    }
    // BBR alone: the phases resume from the event loop (this handler may be running inside the
    // precontent handler), through the connection's write event.
    set_state(r, State::Done);
    r.resume_phases_later();
}

/// BBR is on here and has not run for this request yet (its status survives a redirect).
fn bbr_pending(r: &mut Request, lcf: &LocConf) -> bool {
    lcf.bbr == 1 && r.var(conf::VAR_BBR_STATUS.index()).is_none()
}

/// Body-based routing, on the body already read: the top-level `model` of a JSON body becomes
/// the BBR header (replacing a client's own) and `$epp_model`, before any EPP call, so the EPP
/// sees it too. Err(status) when the request is refused (epp_bbr_require_model) or broken.
fn run_bbr(r: &mut Request, lcf: &LocConf) -> Result<(), Status> {
    use epp_core::bbr::ScanOutcome;
    let header = lcf.bbr_header();
    let outcome = match scan_body(r, lcf.bbr_max_body as u64) {
        Ok(o) => o,
        Err(e) => {
            r.log(ffi::ERR, &format!("epp_bbr: {e}"));
            r.set_var(conf::VAR_BBR_STATUS.index(), b"error");
            return Err(ffi::HTTP_INTERNAL_SERVER_ERROR);
        }
    };
    if !r.set_var(conf::VAR_BBR_STATUS.index(), outcome.status().as_bytes()) {
        return Err(ffi::HTTP_INTERNAL_SERVER_ERROR);
    }
    let why = match &outcome {
        ScanOutcome::Model(m) => {
            if !r.set_var(conf::VAR_MODEL.index(), m.as_bytes())
                || rebuild_headers(r, &[HeaderOp::Set(header.clone(), m.as_bytes().to_vec())]).is_err()
            {
                return Err(ffi::HTTP_INTERNAL_SERVER_ERROR);
            }
            r.log(ffi::DEBUG, &format!("epp_bbr: model {m:?} -> {header}"));
            return Ok(());
        }
        // A request without a body (GET /v1/models) is never refused for it.
        ScanOutcome::NoBody => return Ok(()),
        ScanOutcome::NoModel => "the JSON body has no top-level \"model\"".to_owned(),
        ScanOutcome::NotJson(at) => format!("the body is not a JSON object (byte {at})"),
        ScanOutcome::NotString => "\"model\" is not a string".to_owned(),
        ScanOutcome::BadModel(why) => format!("\"model\" cannot be a header value ({why})"),
        ScanOutcome::TooLarge => format!("no \"model\" within the first {} bytes (epp_bbr_max_body_size)", lcf.bbr_max_body),
    };
    if lcf.bbr_require_model == 1 {
        r.log(ffi::INFO, &format!("epp_bbr: {why}; refused (epp_bbr_require_model)"));
        let code = if outcome == ScanOutcome::TooLarge { ffi::HTTP_REQUEST_ENTITY_TOO_LARGE } else { ffi::HTTP_BAD_REQUEST };
        return Err(code);
    }
    r.log(ffi::INFO, &format!("epp_bbr: {why}; {header} not set"));
    Ok(())
}

/// Feeds the scanner from the body's memory buffers and temp file, stopping as soon as the
/// outcome is known (the rest of the body is not read again).
fn scan_body(r: &Request, limit: u64) -> Result<epp_core::bbr::ScanOutcome, String> {
    let mut scanner = epp_core::bbr::ModelScanner::new(limit);
    let mut chunk: Vec<u8> = Vec::new();
    'parts: for part in r.body_parts() {
        match part {
            BodyPart::Memory(b) => {
                if scanner.feed(b) {
                    break;
                }
            }
            BodyPart::File(f) => {
                if chunk.is_empty() {
                    chunk.resize(64 * 1024, 0);
                }
                let mut pos = 0;
                while pos < f.len() {
                    let got = f.read_at(&mut chunk, pos).map_err(|e| format!("cannot read the request body temp file: {e}"))?;
                    if got == 0 {
                        return Err("cannot read the request body temp file: unexpected end".into());
                    }
                    pos += got;
                    if scanner.feed(&chunk[..got]) {
                        break 'parts;
                    }
                }
            }
        }
    }
    Ok(scanner.finish())
}

/// Starts the call; every outcome, even an immediate failure, arrives through the worker's
/// queue, so completion always runs from the event loop and never inside a handler.
fn begin(r: &mut Request) {
    set_state(r, State::Waiting);
    // Detect a client that goes away while we wait; nothing else runs meanwhile.
    r.suspend();
    let Some(id) = worker::with(|w| w.next_id()) else {
        r.log(ffi::ERR, "epp: module not initialised in this process");
        r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
        return;
    };
    if !r.park(id) {
        r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    let lcf = lcf(r);
    // The call's own timeout applies per EPP message; the backstop allows a few of them.
    let timer = Timer::start(r, (lcf.timeout_ms.max(1) as u64) * 4 + 1000, on_backstop, id);
    let key = r.id();
    let mode = with_ctx(key, |c| {
        c.id = id;
        c.timer = Some(timer);
        c.mode
    })
    .unwrap_or(Mode::Resume);
    let call = prepare(r, mode, lcf);
    let report = lcf.report_served == 1;
    let started = worker::with(|w| {
        let call = match call {
            Ok(call) => call,
            Err(c) => {
                w.wake.complete(id, c);
                return None;
            }
        };
        let wake = w.wake.clone();
        let done = move |outcome| wake.complete(id, Completion::Epp(outcome));
        Some(if report {
            let (handle, slot) = w.client.spawn_with_report(call, done);
            (handle, Some(slot))
        } else {
            (w.client.spawn(call, done), None)
        })
    });
    if let Some(Some((handle, served))) = started {
        with_ctx(key, |c| {
            c.handle = Some(handle);
            c.served = served;
        });
    }
}

fn prepare(r: &mut Request, mode: Mode, lcf: &LocConf) -> Result<EppCall, Completion> {
    let fail = |s: EppStatus, m: String| Completion::Epp(Outcome::failed(s, m));
    let (host, port) = match mode {
        Mode::Redirect => {
            let h = String::from_utf8_lossy(r.var(conf::VAR_EPP_HOST.index()).unwrap_or_default()).into_owned();
            let p = String::from_utf8_lossy(r.var(conf::VAR_EPP_PORT.index()).unwrap_or_default()).into_owned();
            epp_core::endpoint::parse_target(&format!("{h}:{p}")).map_err(|e| fail(EppStatus::Error, format!("$epp_host/$epp_port: {e}")))?
        }
        Mode::Resume => {
            let v = lcf.endpoint.and_then(|cv| r.complex_value(cv)).ok_or_else(|| fail(EppStatus::Error, "epp_endpoint evaluation failed".into()))?;
            epp_core::endpoint::parse_target(&String::from_utf8_lossy(&v)).map_err(|e| fail(EppStatus::Error, format!("epp_endpoint: {e}")))?
        }
    };
    let body_mode = lcf.body_mode();
    let has_body = r.announces_body();
    let body = if body_mode != BodyMode::None && r.has_request_body() { read_body(r, lcf.max_body)? } else { Vec::new() };
    let subset_hint = match lcf.subset_hint {
        None => Vec::new(),
        Some(cv) => {
            let v = r.complex_value(cv).unwrap_or_default();
            String::from_utf8_lossy(&v)
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|e| epp_core::endpoint::is_valid_endpoint(e))
                .map(str::to_owned)
                .collect()
        }
    };
    Ok(EppCall {
        allow: lcf.allowlist().cloned().unwrap_or_default(),
        target: EppTarget { host, port, tls: tls_settings(lcf) },
        timeout: Duration::from_millis(lcf.timeout_ms.max(1) as u64),
        mode: body_mode,
        header_name: lcf.header_name(),
        request: RequestData { headers: request_headers(r), body, has_body, subset_hint },
    })
}

pub fn tls_settings(lcf: &LocConf) -> Option<TlsSettings> {
    if lcf.tls != 1 {
        return None;
    }
    let s = |v: &ffi::NgxStr| {
        let b = v.as_bytes();
        (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
    };
    Some(TlsSettings { ca_file: s(&lcf.tls_ca), server_name: s(&lcf.tls_server_name), verify: lcf.tls_verify != 0 })
}

/// Lower-case names, pseudo-headers first (what Envoy sends for an HTTP/1 request).
fn request_headers(r: &Request) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity(16);
    out.push((":method".to_owned(), r.method().to_vec()));
    out.push((":path".to_owned(), r.unparsed_uri().to_vec()));
    out.push((":authority".to_owned(), r.host().to_vec()));
    out.push((":scheme".to_owned(), if r.is_https() { b"https".to_vec() } else { b"http".to_vec() }));
    for (k, v) in r.headers_in() {
        let k = String::from_utf8_lossy(k).to_ascii_lowercase();
        if k == "host" {
            continue;
        }
        out.push((k, v.to_vec()));
    }
    out
}

/// The whole body, from memory buffers and from the temp file.
fn read_body(r: &Request, max: usize) -> Result<Vec<u8>, Completion> {
    let mut out = Vec::new();
    for part in r.body_parts() {
        match part {
            BodyPart::Memory(b) => {
                if out.len() + b.len() > max {
                    return Err(Completion::TooLarge);
                }
                out.extend_from_slice(b);
            }
            BodyPart::File(f) => {
                let n = f.len();
                if out.len() + n > max {
                    return Err(Completion::TooLarge);
                }
                let start = out.len();
                out.resize(start + n, 0);
                let mut done = 0usize;
                while done < n {
                    let got = match f.read_at(&mut out[start + done..], done) {
                        Ok(0) => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                        other => other,
                    };
                    match got {
                        Ok(g) => done += g,
                        Err(e) => {
                            return Err(Completion::Epp(Outcome::failed(EppStatus::Error, format!("cannot read the request body temp file: {e}"))));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The backstop fired: the runtime never reported. Fail the call as a timeout.
fn on_backstop(id: u64) {
    let Some(key) = ffi::with_parked(id, |r| {
        r.log(ffi::ERR, "epp: no outcome from the gRPC runtime in time (backstop timer)");
        r.id()
    }) else {
        return;
    };
    if let Some(Some(h)) = with_ctx(key, |c| c.handle.take()) {
        h.cancel();
    }
    on_complete(id, Completion::Epp(Outcome::failed(EppStatus::Timeout, "backstop timer")));
}

/// The worker's eventfd fired: finish every call that completed.
pub fn on_wake() {
    let items = worker::with(|w| w.wake.drain()).unwrap_or_default();
    for (id, completion) in items {
        on_complete(id, completion);
    }
}

/// A call finished (worker thread, from the eventfd handler or the backstop timer).
fn on_complete(id: u64, completion: Completion) {
    // Not parked: the request was torn down (client abort) and its call cancelled.
    ffi::resume(id, |r| {
        let stale = with_ctx(r.id(), |c| {
            c.id = 0;
            c.handle = None;
            c.timer.take()
        });
        // Deletes the backstop timer.
        drop(stale);
        r.block_reading();
        finish(r, completion);
    });
}

fn finish(r: &mut Request, completion: Completion) {
    let lcf = lcf(r);
    let outcome = match completion {
        Completion::TooLarge => {
            set_status(r, EppStatus::Error);
            r.log(ffi::ERR, &format!("epp: request body larger than epp_max_body_size {}", lcf.max_body));
            r.finalize(ffi::HTTP_REQUEST_ENTITY_TOO_LARGE);
            return;
        }
        Completion::Epp(o) => o,
    };
    match outcome {
        Outcome::Routed { endpoint, all, ops } => {
            set_status(r, EppStatus::Ok);
            r.log(ffi::DEBUG, &format!("epp: picked {endpoint} (EPP answered {all:?})"));
            // The fallbacks, for epp_balancer: valid and allowed entries in the EPP's order,
            // the pick first (the collector already chose it by the same rule).
            let allow = lcf.allowlist();
            let mut list: Vec<String> = epp_core::endpoint::valid_endpoints(&all)
                .into_iter()
                .filter(|e| allow.is_none_or(|a| a.is_empty() || a.allows(e)))
                .collect();
            if list.first() != Some(&endpoint) {
                list.retain(|e| e != &endpoint);
                list.insert(0, endpoint.clone());
            }
            if !r.set_var(conf::VAR_ENDPOINT.index(), endpoint.as_bytes())
                || !r.set_var(conf::VAR_ENDPOINTS.index(), list.join(",").as_bytes())
                || apply_header_ops(r, &lcf.header_name(), &endpoint, &ops).is_err()
            {
                r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
            proceed(r);
        }
        Outcome::Immediate { status, headers, body } => {
            set_status(r, EppStatus::Immediate);
            r.log(ffi::INFO, &format!("epp: immediate response {status}"));
            send_immediate(r, status, &headers, &body);
        }
        Outcome::Failed { status, detail } => {
            if lcf.fail_open == 1 {
                r.log(ffi::WARN, &format!("epp: {} ({detail}); failure mode allow: continuing without a pick", status.as_str()));
                set_status(r, EppStatus::FailOpen);
                let mode = with_ctx(r.id(), |c| c.mode);
                let mut fallback = Vec::new();
                if let (Some(Mode::Resume), Some(cv)) = (mode, lcf.default_upstream) {
                    fallback = r.complex_value(cv).unwrap_or_default();
                }
                // NGF form: empty, and the config's map picks the pool's upstream.
                // An empty $epp_endpoints: epp_balancer round-robins its own servers (the pool).
                if !r.set_var(conf::VAR_ENDPOINT.index(), &fallback)
                    || !r.set_var(conf::VAR_ENDPOINTS.index(), b"")
                    || remove_spoofed_endpoint(r, &lcf.header_name()).is_err()
                {
                    r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
                    return;
                }
                proceed(r);
            } else {
                r.log(ffi::ERR, &format!("epp: {} ({detail}); failure mode close", status.as_str()));
                set_status(r, status);
                let code = if status == EppStatus::Timeout { ffi::HTTP_GATEWAY_TIME_OUT } else { ffi::HTTP_INTERNAL_SERVER_ERROR };
                r.finalize(code);
            }
        }
    }
}

fn set_status(r: &mut Request, s: EppStatus) {
    r.set_var(conf::VAR_STATUS.index(), s.as_str().as_bytes());
}

fn proceed(r: &mut Request) {
    let mode = with_ctx(r.id(), |c| {
        c.state = State::Done;
        c.mode
    });
    match mode.unwrap_or(Mode::Resume) {
        Mode::Redirect => {
            let path = r.var(conf::VAR_EPP_PATH.index()).unwrap_or_default().to_vec();
            if path.first() != Some(&b'/') {
                r.log(ffi::ERR, "epp: $epp_internal_path is empty or not a path");
                r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
            if !r.internal_redirect(&path) {
                r.finalize(ffi::HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
            r.finalize(ffi::DONE);
        }
        Mode::Resume => r.run_phases(),
    }
}

/// Rebuilds the request headers with the EPP's mutations and the endpoint header (a client's
/// own copy of that header is always replaced: it must not steer routing).
fn apply_header_ops(r: &mut Request, endpoint_header: &str, endpoint: &str, ops: &[HeaderOp]) -> Result<(), ()> {
    let mut all = ops.to_vec();
    all.push(HeaderOp::Set(endpoint_header.to_owned(), endpoint.as_bytes().to_vec()));
    rebuild_headers(r, &all)
}

fn remove_spoofed_endpoint(r: &mut Request, endpoint_header: &str) -> Result<(), ()> {
    rebuild_headers(r, &[HeaderOp::Remove(endpoint_header.to_owned())])
}

/// Headers nginx tracks through its own pointers or that frame the message: never mutated.
fn protected(name: &str) -> bool {
    name.starts_with(':')
        || matches!(name, "host" | "content-length" | "transfer-encoding" | "connection" | "expect" | "upgrade" | "te")
}

/// Header values must not carry CR/LF (they would split the upstream request) or NUL.
fn clean_value(v: &[u8]) -> Vec<u8> {
    v.iter().copied().filter(|b| *b != b'\r' && *b != b'\n' && *b != 0).collect()
}

fn rebuild_headers(r: &mut Request, ops: &[HeaderOp]) -> Result<(), ()> {
    // The i-th header as is, or a new (lower-case name, value); names compared without
    // allocating (the EPP's are lower-case already, the client's in any case).
    enum E<'a> {
        Keep(usize),
        New(&'a str, Vec<u8>),
    }
    let mut refused: Vec<&str> = Vec::new();
    let entries_owned: Vec<E> = {
        let old = r.headers_in();
        let mut list: Vec<E> = (0..old.len()).map(E::Keep).collect();
        for op in ops {
            let name = match op {
                HeaderOp::Set(n, _) | HeaderOp::Append(n, _) | HeaderOp::Remove(n) => n.as_str(),
            };
            if protected(name) || epp_core::settings::validate_header_name(name).is_err() {
                refused.push(name);
                continue;
            }
            let same = |e: &E| match e {
                E::Keep(i) => old[*i].0.eq_ignore_ascii_case(name.as_bytes()),
                E::New(n, _) => n.eq_ignore_ascii_case(name),
            };
            match op {
                HeaderOp::Set(_, v) => {
                    list.retain(|e| !same(e));
                    list.push(E::New(name, clean_value(v)));
                }
                HeaderOp::Append(_, v) => list.push(E::New(name, clean_value(v))),
                HeaderOp::Remove(_) => list.retain(|e| !same(e)),
            }
        }
        list
    };
    for name in refused {
        r.log(ffi::WARN, &format!("epp: ignoring mutation of header {name:?}"));
    }
    let entries: Vec<HeaderEntry> = entries_owned
        .iter()
        .map(|e| match e {
            E::Keep(i) => HeaderEntry::Keep(*i),
            E::New(n, v) => HeaderEntry::New(n.as_bytes(), v),
        })
        .collect();
    if r.rebuild_headers_in(&entries) { Ok(()) } else { Err(()) }
}

fn send_immediate(r: &mut Request, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) {
    if r.discard_body() != ffi::OK {
        r.finalize(ffi::ERROR);
        return;
    }
    let kept: Vec<(&[u8], Vec<u8>)> = headers
        .iter()
        .filter(|(k, _)| {
            !(matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection" | "keep-alive")
                || k.starts_with(':')
                || epp_core::settings::validate_header_name(k).is_err())
        })
        .map(|(k, v)| (k.as_bytes(), clean_value(v)))
        // A value HTTP cannot carry (another control byte, DEL) leaves the header out, as Envoy
        // ignores an invalid mutation; written as is, the client could not parse the response.
        .filter(|(_, v)| v.iter().all(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = kept.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let rc = r.send_response(status, &refs, body);
    r.finalize(rc);
}

/// Log phase: report the served endpoint (`epp_report_served on`) on the call's own stream.
pub fn log_handler(r: &mut Request) -> Status {
    if !r.is_main() {
        return ffi::OK;
    }
    let Some(Some(slot)) = with_ctx(r.id(), |c| c.served.take()) else { return ffi::OK };
    if r.var(conf::VAR_STATUS.index()) != Some(b"ok") {
        return ffi::OK;
    }
    let Some(addr) = r.var(conf::VAR_UPSTREAM_ADDR.index()) else { return ffi::OK };
    // "a, b" after retries, "a : b" across internal redirects: the last one answered.
    let addr = String::from_utf8_lossy(addr).into_owned();
    let last = addr.rsplit(" : ").next().unwrap_or(&addr);
    let served = last.rsplit(", ").next().unwrap_or(last).trim().to_owned();
    if epp_core::endpoint::is_valid_endpoint(&served) {
        slot.report(served, r.response_status());
    }
    ffi::OK
}
