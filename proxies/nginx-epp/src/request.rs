//! Request side: start an EPP call, suspend the request, resume it when the call completes.
//!
//! Reference counting (r->main->count): while a call is in flight the request's base reference
//! belongs to the call. The content handler returns NGX_DONE (the content phase then drops one
//! reference, so it takes one first, or the body read took one); the precontent handler returns
//! NGX_DONE without a drop. On completion exactly one of these consumes the base reference:
//! internal redirect + finalize(NGX_DONE), the phase engine and the proxied response, or
//! finalize(status). A client that goes away makes nginx terminate the request; the pool
//! cleanup then cancels the call, and its late completion finds no pending entry.

use crate::conf::{self, LocConf};
use crate::util::{self, str_bytes};
use crate::worker;
use epp_core::client::{EppCall, EppTarget};
use epp_core::exchange::{EppStatus, HeaderOp, Outcome, RequestData};
use epp_core::settings::{BodyMode, TlsSettings};
use ngx::ffi::*;
use std::ffi::c_void;
use std::ptr;
use std::time::Duration;

const OK: ngx_int_t = NGX_OK as ngx_int_t;
const DONE: ngx_int_t = NGX_DONE as ngx_int_t;
const DECLINED: ngx_int_t = NGX_DECLINED as ngx_int_t;
const ERROR: ngx_int_t = NGX_ERROR as ngx_int_t;

/// What a call ends with.
pub enum Completion {
    Epp(Outcome),
    /// Refused before any call: the request body exceeds epp_max_body_size (Envoy: 413).
    TooLarge,
}

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

pub struct ReqCtx {
    r: *mut ngx_http_request_t,
    lcf: *mut LocConf,
    mode: Mode,
    state: State,
    /// An EPP call follows the body read (false: BBR alone, the phases resume after it).
    epp: bool,
    /// Non-zero while a call is in flight (key in the worker's pending table).
    id: u64,
    handle: Option<epp_core::client::CallHandle>,
    /// Backstop timer while a call is in flight: fails the call if the runtime never answers,
    /// and, being an nginx timer, keeps a gracefully exiting worker alive until calls end.
    timer: ngx_event_t,
}

unsafe fn module() -> *const ngx_module_t {
    &raw const crate::ngx_http_rust_epp_module
}

unsafe fn lcf_of(r: *mut ngx_http_request_t) -> *mut LocConf {
    util::http_loc_conf(r, module()) as *mut LocConf
}

unsafe fn ctx_of(r: *mut ngx_http_request_t) -> *mut ReqCtx {
    *(*r).ctx.add((*module()).ctx_index) as *mut ReqCtx
}

/// Pool cleanup: runs when the request's pool is destroyed, whatever the path (normal end,
/// client abort, worker shutdown). Cancels a call in flight and forgets the request.
unsafe extern "C" fn ctx_cleanup(data: *mut c_void) {
    let ctx = data as *mut ReqCtx;
    if let Some(w) = worker::get() {
        if (*ctx).id != 0 {
            w.pending.remove(&(*ctx).id);
        }
        // Dropping the slot resets a stream still waiting for the served report.
        w.served.remove(&((*ctx).r as usize));
    }
    (*ctx).id = 0;
    if let Some(h) = (*ctx).handle.take() {
        h.cancel();
    }
    stop_timer(ctx);
    ptr::drop_in_place(ctx);
}

unsafe fn create_ctx(r: *mut ngx_http_request_t, mode: Mode) -> *mut ReqCtx {
    let cln = ngx_pool_cleanup_add((*r).pool, 0);
    if cln.is_null() {
        return ptr::null_mut();
    }
    let ctx = ngx_pcalloc((*r).pool, std::mem::size_of::<ReqCtx>()) as *mut ReqCtx;
    if ctx.is_null() {
        return ptr::null_mut();
    }
    ptr::write(ctx, ReqCtx { r, lcf: lcf_of(r), mode, state: State::ReadingBody, epp: true, id: 0, handle: None, timer: std::mem::zeroed() });
    (*cln).handler = Some(ctx_cleanup);
    (*cln).data = ctx as *mut c_void;
    *(*r).ctx.add((*module()).ctx_index) = ctx as *mut c_void;
    ctx
}

/// `epp_get_endpoint on;` (NGF form).
pub unsafe extern "C" fn content_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    let ctx = create_ctx(r, Mode::Redirect);
    if ctx.is_null() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    let lcf = &*(*ctx).lcf;
    if bbr_pending(r, lcf) || lcf.body_mode() != BodyMode::None {
        let rc = ngx_http_read_client_request_body(r, Some(body_handler));
        if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
        // The content phase's finalize(NGX_DONE) drops the body read's reference.
        return DONE;
    }
    // Balances the content phase's finalize(NGX_DONE).
    (*(*r).main).set_count((*(*r).main).count() + 1);
    begin(r, ctx);
    DONE
}

/// Direct form (`epp_endpoint`), and BBR alone (`epp_bbr on` without an EPP): precontent
/// phase, before proxy_pass's content handler.
pub unsafe extern "C" fn precontent_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    let lcf = &*lcf_of(r);
    if lcf.get_endpoint == 1 || r != (*r).main {
        return DECLINED;
    }
    let ctx = ctx_of(r);
    if !ctx.is_null() {
        return match (*ctx).state {
            State::Done => DECLINED,
            // A stray run of the phases while the call is in flight.
            _ => DONE,
        };
    }
    let epp = !lcf.endpoint.is_null();
    let bbr = bbr_pending(r, lcf);
    if !epp && !bbr {
        return DECLINED;
    }
    let ctx = create_ctx(r, Mode::Resume);
    if ctx.is_null() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    (*ctx).epp = epp;
    if bbr || lcf.body_mode() != BodyMode::None {
        let rc = ngx_http_read_client_request_body(r, Some(body_handler));
        if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
        // The phase engine does not drop a reference on NGX_DONE: drop the body read's here.
        ngx_http_finalize_request(r, DONE);
        return DONE;
    }
    begin(r, ctx);
    DONE
}

/// Body fully read (possibly synchronously, inside ngx_http_read_client_request_body).
unsafe extern "C" fn body_handler(r: *mut ngx_http_request_t) {
    let ctx = ctx_of(r);
    if ctx.is_null() {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        return;
    }
    let lcf = &*(*ctx).lcf;
    if bbr_pending(r, lcf) {
        if let Err(status) = run_bbr(r, lcf) {
            (*ctx).state = State::Done;
            ngx_http_finalize_request(r, status);
            return;
        }
    }
    if (*ctx).epp {
        begin(r, ctx);
        return;
    }
    // BBR alone: the phases resume from the event loop (this handler may be running inside the
    // precontent handler), through the connection's write event.
    (*ctx).state = State::Done;
    (*r).write_event_handler = Some(ngx_http_core_run_phases);
    ngx_post_event((*(*r).connection).write, &raw mut ngx_posted_events);
}

/// BBR is on here and has not run for this request yet (its status survives a redirect).
unsafe fn bbr_pending(r: *mut ngx_http_request_t, lcf: &LocConf) -> bool {
    lcf.bbr == 1 && util::indexed_var(r, conf::VAR_BBR_STATUS).is_none()
}

/// Body-based routing, on the body already read: the top-level `model` of a JSON body becomes
/// the BBR header (replacing a client's own) and `$epp_model`, before any EPP call, so the EPP
/// sees it too. Err(status) when the request is refused (epp_bbr_require_model) or broken.
unsafe fn run_bbr(r: *mut ngx_http_request_t, lcf: &LocConf) -> Result<(), ngx_int_t> {
    use epp_core::bbr::ScanOutcome;
    let log = (*(*r).connection).log;
    let header = lcf.bbr_header();
    let outcome = match scan_body(r, lcf.bbr_max_body as u64) {
        Ok(o) => o,
        Err(e) => {
            util::log(NGX_LOG_ERR, log, &format!("epp_bbr: {e}"));
            util::set_indexed_var(r, conf::VAR_BBR_STATUS, b"error");
            return Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        }
    };
    if !util::set_indexed_var(r, conf::VAR_BBR_STATUS, outcome.status().as_bytes()) {
        return Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
    }
    let why = match &outcome {
        ScanOutcome::Model(m) => {
            if !util::set_indexed_var(r, conf::VAR_MODEL, m.as_bytes())
                || rebuild_headers(r, &[HeaderOp::Set(header.clone(), m.as_bytes().to_vec())]).is_err()
            {
                return Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
            }
            util::log(NGX_LOG_DEBUG, log, &format!("epp_bbr: model {m:?} -> {header}"));
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
        util::log(NGX_LOG_INFO, log, &format!("epp_bbr: {why}; refused (epp_bbr_require_model)"));
        let code = if outcome == ScanOutcome::TooLarge { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE } else { NGX_HTTP_BAD_REQUEST };
        return Err(code as ngx_int_t);
    }
    util::log(NGX_LOG_INFO, log, &format!("epp_bbr: {why}; {header} not set"));
    Ok(())
}

/// Feeds the scanner from the body's memory buffers and temp file, stopping as soon as the
/// outcome is known (the rest of the body is not read again).
unsafe fn scan_body(r: *mut ngx_http_request_t, limit: u64) -> Result<epp_core::bbr::ScanOutcome, String> {
    let mut scanner = epp_core::bbr::ModelScanner::new(limit);
    let rb = (*r).request_body;
    let mut cl = if rb.is_null() { ptr::null_mut() } else { (*rb).bufs };
    let mut chunk: Vec<u8> = Vec::new();
    while !cl.is_null() {
        let b = (*cl).buf;
        if (*b).temporary() != 0 || (*b).memory() != 0 || (*b).mmap() != 0 {
            let n = (*b).last.offset_from((*b).pos) as usize;
            if n > 0 && scanner.feed(std::slice::from_raw_parts((*b).pos, n)) {
                break;
            }
        } else if (*b).in_file() != 0 && !(*b).file.is_null() {
            if chunk.is_empty() {
                chunk.resize(64 * 1024, 0);
            }
            let mut pos = (*b).file_pos;
            let mut concluded = false;
            while pos < (*b).file_last {
                let want = ((*b).file_last - pos).min(chunk.len() as i64) as usize;
                let got = libc::pread((*(*b).file).fd, chunk.as_mut_ptr() as *mut libc::c_void, want, pos);
                if got <= 0 {
                    return Err(format!("cannot read the request body temp file: {}", std::io::Error::last_os_error()));
                }
                pos += got as i64;
                if scanner.feed(&chunk[..got as usize]) {
                    concluded = true;
                    break;
                }
            }
            if concluded {
                break;
            }
        }
        cl = (*cl).next;
    }
    Ok(scanner.finish())
}

/// Starts the call; every outcome, even an immediate failure, arrives through the worker's
/// queue, so completion always runs from the event loop and never inside a handler.
unsafe fn begin(r: *mut ngx_http_request_t, ctx: *mut ReqCtx) {
    (*ctx).state = State::Waiting;
    // Detect a client that goes away while we wait; nothing else runs meanwhile.
    (*r).read_event_handler = Some(ngx_http_test_reading);
    (*r).write_event_handler = Some(ngx_http_request_empty_handler);
    let Some(w) = worker::get() else {
        util::log(NGX_LOG_ERR, (*(*r).connection).log, "epp: module not initialised in this process");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        return;
    };
    let id = w.next_id();
    (*ctx).id = id;
    w.pending.insert(id, ctx);
    let lcf = &*(*ctx).lcf;
    // The call's own timeout applies per EPP message; the backstop allows a few of them.
    let ev = &raw mut (*ctx).timer;
    (*ev).handler = Some(on_backstop);
    (*ev).data = ctx as *mut c_void;
    (*ev).log = (*(*r).connection).log;
    ngx_add_timer(ev, (lcf.timeout_ms.max(1) as ngx_msec_t) * 4 + 1000);
    let call = match prepare(r, ctx, lcf) {
        Ok(call) => call,
        Err(c) => {
            w.wake.complete(id, c);
            return;
        }
    };
    let wake = w.wake.clone();
    let done = move |outcome| wake.complete(id, Completion::Epp(outcome));
    if lcf.report_served == 1 {
        let (handle, slot) = w.client.spawn_with_report(call, done);
        (*ctx).handle = Some(handle);
        w.served.insert(r as usize, slot);
    } else {
        (*ctx).handle = Some(w.client.spawn(call, done));
    }
}

unsafe fn prepare(r: *mut ngx_http_request_t, ctx: *mut ReqCtx, lcf: &LocConf) -> Result<EppCall, Completion> {
    let fail = |s: EppStatus, m: String| Completion::Epp(Outcome::failed(s, m));
    let (host, port) = match (*ctx).mode {
        Mode::Redirect => {
            let h = util::indexed_var(r, conf::VAR_EPP_HOST).unwrap_or_default();
            let p = util::indexed_var(r, conf::VAR_EPP_PORT).unwrap_or_default();
            let t = format!("{}:{}", String::from_utf8_lossy(h), String::from_utf8_lossy(p));
            epp_core::endpoint::parse_target(&t).map_err(|e| fail(EppStatus::Error, format!("$epp_host/$epp_port: {e}")))?
        }
        Mode::Resume => {
            let v = util::complex_value(r, lcf.endpoint).ok_or_else(|| fail(EppStatus::Error, "epp_endpoint evaluation failed".into()))?;
            epp_core::endpoint::parse_target(&String::from_utf8_lossy(&v)).map_err(|e| fail(EppStatus::Error, format!("epp_endpoint: {e}")))?
        }
    };
    let mode = lcf.body_mode();
    let has_body = (*r).headers_in.content_length_n > 0 || (*r).headers_in.chunked() != 0;
    let body = if mode != BodyMode::None && !(*r).request_body.is_null() {
        read_body(r, lcf.max_body)?
    } else {
        Vec::new()
    };
    let subset_hint = if lcf.subset_hint.is_null() {
        Vec::new()
    } else {
        let v = util::complex_value(r, lcf.subset_hint).unwrap_or_default();
        String::from_utf8_lossy(&v)
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| epp_core::endpoint::is_valid_endpoint(e))
            .map(str::to_owned)
            .collect()
    };
    let allow = if lcf.allow.is_null() { std::sync::Arc::default() } else { (*lcf.allow).clone() };
    Ok(EppCall {
        allow,
        target: EppTarget { host, port, tls: tls_settings(lcf) },
        timeout: Duration::from_millis(lcf.timeout_ms.max(1) as u64),
        mode,
        header_name: lcf.header_name(),
        request: RequestData { headers: request_headers(r), body, has_body, subset_hint },
    })
}

pub unsafe fn tls_settings(lcf: &LocConf) -> Option<TlsSettings> {
    if lcf.tls != 1 {
        return None;
    }
    let s = |v: &ngx_str_t| {
        let b = str_bytes(v);
        (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
    };
    Some(TlsSettings { ca_file: s(&lcf.tls_ca), server_name: s(&lcf.tls_server_name), verify: lcf.tls_verify != 0 })
}

/// Lower-case names, pseudo-headers first (what Envoy sends for an HTTP/1 request).
unsafe fn request_headers(r: *mut ngx_http_request_t) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity(16);
    out.push((":method".to_owned(), str_bytes(&(*r).method_name).to_vec()));
    out.push((":path".to_owned(), str_bytes(&(*r).unparsed_uri).to_vec()));
    let host = if (*r).headers_in.host.is_null() { &[][..] } else { str_bytes(&(*(*r).headers_in.host).value) };
    out.push((":authority".to_owned(), host.to_vec()));
    let https = !(*(*r).connection).ssl.is_null();
    out.push((":scheme".to_owned(), if https { b"https".to_vec() } else { b"http".to_vec() }));
    for h in headers_in(r) {
        let k = String::from_utf8_lossy(str_bytes(&(*h).key)).to_ascii_lowercase();
        if k == "host" {
            continue;
        }
        out.push((k, str_bytes(&(*h).value).to_vec()));
    }
    out
}

unsafe fn headers_in(r: *mut ngx_http_request_t) -> Vec<*mut ngx_table_elt_t> {
    let mut v = Vec::new();
    let mut part: *mut ngx_list_part_t = &mut (*r).headers_in.headers.part;
    while !part.is_null() {
        let elts = (*part).elts as *mut ngx_table_elt_t;
        for i in 0..(*part).nelts {
            v.push(elts.add(i));
        }
        part = (*part).next;
    }
    v
}

/// The whole body, from memory buffers and from the temp file.
unsafe fn read_body(r: *mut ngx_http_request_t, max: usize) -> Result<Vec<u8>, Completion> {
    let rb = (*r).request_body;
    let mut out = Vec::new();
    let mut cl = (*rb).bufs;
    while !cl.is_null() {
        let b = (*cl).buf;
        if (*b).temporary() != 0 || (*b).memory() != 0 || (*b).mmap() != 0 {
            let n = (*b).last.offset_from((*b).pos) as usize;
            if out.len() + n > max {
                return Err(Completion::TooLarge);
            }
            out.extend_from_slice(std::slice::from_raw_parts((*b).pos, n));
        } else if (*b).in_file() != 0 && !(*b).file.is_null() {
            let n = ((*b).file_last - (*b).file_pos) as usize;
            if out.len() + n > max {
                return Err(Completion::TooLarge);
            }
            let start = out.len();
            out.resize(start + n, 0);
            let mut done = 0usize;
            while done < n {
                let got = libc::pread(
                    (*(*b).file).fd,
                    out.as_mut_ptr().add(start + done) as *mut libc::c_void,
                    n - done,
                    (*b).file_pos + done as i64,
                );
                if got <= 0 {
                    return Err(Completion::Epp(Outcome::failed(
                        EppStatus::Error,
                        format!("cannot read the request body temp file: {}", std::io::Error::last_os_error()),
                    )));
                }
                done += got as usize;
            }
        }
        cl = (*cl).next;
    }
    Ok(out)
}

unsafe fn stop_timer(ctx: *mut ReqCtx) {
    let ev = &raw mut (*ctx).timer;
    if (*ev).timer_set() != 0 {
        ngx_del_timer(ev);
    }
    if (*ev).posted() != 0 {
        ngx_delete_posted_event(ev);
    }
}

/// The backstop fired: the runtime never reported. Fail the call as a timeout.
unsafe extern "C" fn on_backstop(ev: *mut ngx_event_t) {
    let ctx = (*ev).data as *mut ReqCtx;
    let id = (*ctx).id;
    if id == 0 {
        return;
    }
    if let Some(h) = (*ctx).handle.take() {
        h.cancel();
    }
    util::log(NGX_LOG_ERR, (*ev).log, "epp: no outcome from the gRPC runtime in time (backstop timer)");
    on_complete(id, Completion::Epp(Outcome::failed(EppStatus::Timeout, "backstop timer")));
}

/// A call finished (worker thread, from the eventfd handler).
pub unsafe fn on_complete(id: u64, completion: Completion) {
    let Some(w) = worker::get() else { return };
    // Gone: the request was torn down (client abort) and its call cancelled.
    let Some(ctx) = w.pending.remove(&id) else { return };
    (*ctx).id = 0;
    (*ctx).handle = None;
    stop_timer(ctx);
    let r = (*ctx).r;
    let c = (*r).connection;
    (*r).read_event_handler = Some(ngx_http_block_reading);
    finish(r, ctx, completion);
    ngx_http_run_posted_requests(c);
}

unsafe fn finish(r: *mut ngx_http_request_t, ctx: *mut ReqCtx, completion: Completion) {
    let lcf = &*(*ctx).lcf;
    let log = (*(*r).connection).log;
    let outcome = match completion {
        Completion::TooLarge => {
            set_status(r, EppStatus::Error);
            util::log(NGX_LOG_ERR, log, &format!("epp: request body larger than epp_max_body_size {}", lcf.max_body));
            ngx_http_finalize_request(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE as ngx_int_t);
            return;
        }
        Completion::Epp(o) => o,
    };
    match outcome {
        Outcome::Routed { endpoint, all, ops } => {
            set_status(r, EppStatus::Ok);
            util::log(NGX_LOG_DEBUG, log, &format!("epp: picked {endpoint} (EPP answered {all:?})"));
            // The fallbacks, for epp_balancer: valid and allowed entries in the EPP's order,
            // the pick first (the collector already chose it by the same rule).
            let allow = if lcf.allow.is_null() { None } else { Some(&**lcf.allow) };
            let mut list: Vec<String> = epp_core::endpoint::valid_endpoints(&all)
                .into_iter()
                .filter(|e| allow.is_none_or(|a| a.is_empty() || a.allows(e)))
                .collect();
            if list.first() != Some(&endpoint) {
                list.retain(|e| e != &endpoint);
                list.insert(0, endpoint.clone());
            }
            if !util::set_indexed_var(r, conf::VAR_ENDPOINT, endpoint.as_bytes())
                || !util::set_indexed_var(r, conf::VAR_ENDPOINTS, list.join(",").as_bytes())
                || apply_header_ops(r, &lcf.header_name(), &endpoint, &ops).is_err()
            {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
                return;
            }
            proceed(r, ctx);
        }
        Outcome::Immediate { status, headers, body } => {
            set_status(r, EppStatus::Immediate);
            util::log(NGX_LOG_INFO, log, &format!("epp: immediate response {status}"));
            send_immediate(r, status, &headers, &body);
        }
        Outcome::Failed { status, detail } => {
            if lcf.fail_open == 1 {
                util::log(NGX_LOG_WARN, log, &format!("epp: {} ({detail}); failure mode allow: continuing without a pick", status.as_str()));
                set_status(r, EppStatus::FailOpen);
                let mut fallback = Vec::new();
                if (*ctx).mode == Mode::Resume && !lcf.default_upstream.is_null() {
                    fallback = util::complex_value(r, lcf.default_upstream).unwrap_or_default();
                }
                // NGF form: empty, and the config's map picks the pool's upstream.
                // An empty $epp_endpoints: epp_balancer round-robins its own servers (the pool).
                if !util::set_indexed_var(r, conf::VAR_ENDPOINT, &fallback)
                    || !util::set_indexed_var(r, conf::VAR_ENDPOINTS, b"")
                    || remove_spoofed_endpoint(r, &lcf.header_name()).is_err()
                {
                    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
                    return;
                }
                proceed(r, ctx);
            } else {
                util::log(NGX_LOG_ERR, log, &format!("epp: {} ({detail}); failure mode close", status.as_str()));
                set_status(r, status);
                let code = if status == EppStatus::Timeout { NGX_HTTP_GATEWAY_TIME_OUT } else { NGX_HTTP_INTERNAL_SERVER_ERROR };
                ngx_http_finalize_request(r, code as ngx_int_t);
            }
        }
    }
}

unsafe fn set_status(r: *mut ngx_http_request_t, s: EppStatus) {
    util::set_indexed_var(r, conf::VAR_STATUS, s.as_str().as_bytes());
}

unsafe fn proceed(r: *mut ngx_http_request_t, ctx: *mut ReqCtx) {
    (*ctx).state = State::Done;
    match (*ctx).mode {
        Mode::Redirect => {
            let path = util::indexed_var(r, conf::VAR_EPP_PATH).unwrap_or_default();
            if path.is_empty() || path[0] != b'/' {
                util::log(NGX_LOG_ERR, (*(*r).connection).log, "epp: $epp_internal_path is empty or not a path");
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
                return;
            }
            let Some(mut uri) = util::pool_str((*r).pool, path) else {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
                return;
            };
            // Query args preserved; the redirect takes a reference of its own.
            let mut args = (*r).args;
            ngx_http_internal_redirect(r, &mut uri, &mut args);
            ngx_http_finalize_request(r, DONE);
        }
        Mode::Resume => {
            (*r).write_event_handler = Some(ngx_http_core_run_phases);
            ngx_http_core_run_phases(r);
        }
    }
}

/// Rebuilds r->headers_in.headers with the EPP's mutations and the endpoint header (a client's
/// own copy of that header is always replaced: it must not steer routing).
unsafe fn apply_header_ops(r: *mut ngx_http_request_t, endpoint_header: &str, endpoint: &str, ops: &[HeaderOp]) -> Result<(), ()> {
    let mut all = ops.to_vec();
    all.push(HeaderOp::Set(endpoint_header.to_owned(), endpoint.as_bytes().to_vec()));
    rebuild_headers(r, &all)
}

unsafe fn remove_spoofed_endpoint(r: *mut ngx_http_request_t, endpoint_header: &str) -> Result<(), ()> {
    rebuild_headers(r, &[HeaderOp::Remove(endpoint_header.to_owned())])
}

/// Headers nginx tracks through its own pointers or that frame the message: never mutated.
fn protected(name: &str) -> bool {
    name.starts_with(':')
        || matches!(name, "host" | "content-length" | "transfer-encoding" | "connection" | "expect" | "upgrade" | "te")
}

unsafe fn rebuild_headers(r: *mut ngx_http_request_t, ops: &[HeaderOp]) -> Result<(), ()> {
    let log = (*(*r).connection).log;
    let old = headers_in(r);
    // (element to keep as is) or (new name, new value)
    enum E {
        Keep(*mut ngx_table_elt_t),
        New(String, Vec<u8>),
    }
    let mut list: Vec<(String, E)> =
        old.into_iter().map(|h| (String::from_utf8_lossy(str_bytes(&(*h).key)).to_ascii_lowercase(), E::Keep(h))).collect();
    for op in ops {
        let name = match op {
            HeaderOp::Set(n, _) | HeaderOp::Append(n, _) | HeaderOp::Remove(n) => n,
        };
        if protected(name) || epp_core::settings::validate_header_name(name).is_err() {
            util::log(NGX_LOG_WARN, log, &format!("epp: ignoring mutation of header {name:?}"));
            continue;
        }
        match op {
            HeaderOp::Set(n, v) => {
                list.retain(|(k, _)| k != n);
                list.push((n.clone(), E::New(n.clone(), v.clone())));
            }
            HeaderOp::Append(n, v) => list.push((n.clone(), E::New(n.clone(), v.clone()))),
            HeaderOp::Remove(n) => list.retain(|(k, _)| k != n),
        }
    }
    let pool = (*r).pool;
    let mut newl: ngx_list_t = std::mem::zeroed();
    if ngx_list_init(&mut newl, pool, list.len().max(1) + 4, std::mem::size_of::<ngx_table_elt_t>()) != OK {
        return Err(());
    }
    for (_, e) in &list {
        let h = ngx_list_push(&mut newl) as *mut ngx_table_elt_t;
        if h.is_null() {
            return Err(());
        }
        match e {
            E::Keep(old) => ptr::copy_nonoverlapping(*old, h, 1),
            E::New(n, v) => {
                // Header values must not carry CR/LF (they would split the upstream request).
                let clean: Vec<u8> = v.iter().copied().filter(|b| *b != b'\r' && *b != b'\n' && *b != 0).collect();
                let key = util::pool_str(pool, n.as_bytes()).ok_or(())?;
                let value = util::pool_str(pool, &clean).ok_or(())?;
                (*h).key = key;
                (*h).value = value;
                (*h).lowcase_key = key.data; // already lower-case
                (*h).hash = ngx_hash_key(key.data, key.len);
            }
        }
    }
    // The list header lives in the request; `last` must point into the new parts.
    let hl = &mut (*r).headers_in.headers;
    *hl = newl;
    if std::ptr::eq(hl.last, &newl.part) {
        hl.last = &mut hl.part;
    }
    Ok(())
}

unsafe fn send_immediate(r: *mut ngx_http_request_t, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) {
    let pool = (*r).pool;
    if ngx_http_discard_request_body(r) != OK {
        ngx_http_finalize_request(r, ERROR);
        return;
    }
    (*r).headers_out.status = status as ngx_uint_t;
    for (k, v) in headers {
        if matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection" | "keep-alive")
            || k.starts_with(':')
            || epp_core::settings::validate_header_name(k).is_err()
        {
            continue;
        }
        let clean: Vec<u8> = v.iter().copied().filter(|b| *b != b'\r' && *b != b'\n' && *b != 0).collect();
        let (Some(key), Some(value)) = (util::pool_str(pool, k.as_bytes()), util::pool_str(pool, &clean)) else {
            ngx_http_finalize_request(r, ERROR);
            return;
        };
        if k == "content-type" {
            (*r).headers_out.content_type = value;
            (*r).headers_out.content_type_len = value.len;
            continue;
        }
        let h = ngx_list_push(&mut (*r).headers_out.headers) as *mut ngx_table_elt_t;
        if h.is_null() {
            ngx_http_finalize_request(r, ERROR);
            return;
        }
        (*h).hash = 1;
        (*h).key = key;
        (*h).value = value;
        (*h).lowcase_key = key.data;
    }
    (*r).headers_out.content_length_n = body.len() as off_t;
    let rc = ngx_http_send_header(r);
    if rc == ERROR || rc > OK || (*r).header_only() != 0 {
        ngx_http_finalize_request(r, rc);
        return;
    }
    let b = ngx_pcalloc(pool, std::mem::size_of::<ngx_buf_t>()) as *mut ngx_buf_t;
    if b.is_null() {
        ngx_http_finalize_request(r, ERROR);
        return;
    }
    if !body.is_empty() {
        let Some(data) = util::pool_str(pool, body) else {
            ngx_http_finalize_request(r, ERROR);
            return;
        };
        (*b).pos = data.data;
        (*b).last = data.data.add(data.len);
        (*b).start = (*b).pos;
        (*b).end = (*b).last;
        (*b).set_memory(1);
    }
    (*b).set_last_buf(if r == (*r).main { 1 } else { 0 });
    (*b).set_last_in_chain(1);
    let mut out = ngx_chain_t { buf: b, next: ptr::null_mut() };
    let rc = ngx_http_output_filter(r, &mut out);
    ngx_http_finalize_request(r, rc);
}

/// Log phase: report the served endpoint (`epp_report_served on`) on the call's own stream.
pub unsafe extern "C" fn log_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    if r != (*r).main {
        return OK;
    }
    let Some(w) = worker::get() else { return OK };
    let Some(slot) = w.served.remove(&(r as usize)) else { return OK };
    if util::indexed_var(r, conf::VAR_STATUS) != Some(b"ok") {
        return OK;
    }
    let Some(addr) = util::indexed_var(r, conf::VAR_UPSTREAM_ADDR) else { return OK };
    // "a, b" after retries, "a : b" across internal redirects: the last one answered.
    let addr = String::from_utf8_lossy(addr);
    let last = addr.rsplit(" : ").next().unwrap_or(&addr);
    let served = last.rsplit(", ").next().unwrap_or(last).trim().to_owned();
    if epp_core::endpoint::is_valid_endpoint(&served) {
        slot.report(served, (*r).headers_out.status as u16);
    }
    OK
}
