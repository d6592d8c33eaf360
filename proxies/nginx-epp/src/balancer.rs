//! `epp_balancer;` in an `upstream` block: the EPP's fallback list as nginx peers.
//!
//! The EPP protocol makes the first valid entry of its comma list the pick and the rest
//! fallbacks, in order. `proxy_pass http://$inference_workload_endpoint` can only ever try the
//! first, so this load-balancing method hands nginx the whole list of THIS request (the
//! `$epp_endpoints` variable, kept in r->variables so it survives the NGF form's internal
//! redirect): `proxy_next_upstream` then moves to the next entry after a connect error, and
//! `tries` is the number of entries. A request without a list (fail-open, or no EPP call at
//! all) gets the upstream's own round-robin over its `server` lines: that is the pool.

use crate::conf;
use crate::util;
use ngx::ffi::*;
use std::ffi::{c_char, c_void};
use std::net::SocketAddr;
use std::ptr;

const OK: ngx_int_t = NGX_OK as ngx_int_t;
const ERROR: ngx_int_t = NGX_ERROR as ngx_int_t;
const BUSY: ngx_int_t = NGX_BUSY as ngx_int_t;

/// One request's peers, in the EPP's order (request pool).
struct Peers {
    addrs: *mut Peer,
    n: usize,
    next: usize,
}

#[repr(C)]
struct Peer {
    sockaddr: *mut sockaddr,
    socklen: socklen_t,
    name: ngx_str_t,
}

/// `epp_balancer;` (upstream context, no arguments).
pub unsafe extern "C" fn set_balancer(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, _conf: *mut c_void) -> *mut c_char {
    let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
    let uscf = *(*ctx).srv_conf.add(ngx_http_upstream_module.ctx_index) as *mut ngx_http_upstream_srv_conf_t;
    if (*uscf).peer.init_upstream.is_some() {
        util::conf_log(NGX_LOG_WARN, cf, "load balancing method redefined");
    }
    (*uscf).peer.init_upstream = Some(init_upstream);
    // The `server` lines (the pool) take the round-robin's parameters.
    (*uscf).flags = (NGX_HTTP_UPSTREAM_CREATE
        | NGX_HTTP_UPSTREAM_WEIGHT
        | NGX_HTTP_UPSTREAM_MAX_CONNS
        | NGX_HTTP_UPSTREAM_MAX_FAILS
        | NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
        | NGX_HTTP_UPSTREAM_DOWN
        | NGX_HTTP_UPSTREAM_BACKUP) as ngx_uint_t;
    ptr::null_mut()
}

unsafe extern "C" fn init_upstream(cf: *mut ngx_conf_t, us: *mut ngx_http_upstream_srv_conf_t) -> ngx_int_t {
    // The round-robin state of the `server` lines serves requests without a list.
    if ngx_http_upstream_init_round_robin(cf, us) != OK {
        return ERROR;
    }
    (*us).peer.init = Some(init_peer);
    OK
}

/// Socket address in the request pool; None for an unparsable entry (never stored: the module
/// writes only validated `ip:port` entries) or out of memory.
unsafe fn pool_sockaddr(pool: *mut ngx_pool_t, entry: &str) -> Option<(*mut sockaddr, socklen_t)> {
    let sa: SocketAddr = entry.parse().ok()?;
    match sa {
        SocketAddr::V4(v4) => {
            let p = ngx_pcalloc(pool, std::mem::size_of::<libc::sockaddr_in>()) as *mut libc::sockaddr_in;
            if p.is_null() {
                return None;
            }
            (*p).sin_family = libc::AF_INET as libc::sa_family_t;
            (*p).sin_port = v4.port().to_be();
            (*p).sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            Some((p as *mut sockaddr, std::mem::size_of::<libc::sockaddr_in>() as socklen_t))
        }
        SocketAddr::V6(v6) => {
            let p = ngx_pcalloc(pool, std::mem::size_of::<libc::sockaddr_in6>()) as *mut libc::sockaddr_in6;
            if p.is_null() {
                return None;
            }
            (*p).sin6_family = libc::AF_INET6 as libc::sa_family_t;
            (*p).sin6_port = v6.port().to_be();
            (*p).sin6_addr.s6_addr = v6.ip().octets();
            Some((p as *mut sockaddr, std::mem::size_of::<libc::sockaddr_in6>() as socklen_t))
        }
    }
}

unsafe extern "C" fn init_peer(r: *mut ngx_http_request_t, us: *mut ngx_http_upstream_srv_conf_t) -> ngx_int_t {
    let list = util::indexed_var(r, conf::VAR_ENDPOINTS).unwrap_or_default();
    let entries: Vec<&str> = std::str::from_utf8(list)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| epp_core::endpoint::is_valid_endpoint(e))
        .collect();
    if entries.is_empty() {
        return ngx_http_upstream_init_round_robin_peer(r, us);
    }
    let pool = (*r).pool;
    let peers = ngx_pcalloc(pool, std::mem::size_of::<Peers>()) as *mut Peers;
    let addrs = ngx_pcalloc(pool, std::mem::size_of::<Peer>() * entries.len()) as *mut Peer;
    if peers.is_null() || addrs.is_null() {
        return ERROR;
    }
    let mut n = 0;
    for e in &entries {
        // `[v6]:port` is what SocketAddr parses too; the name is what $upstream_addr shows.
        let (Some((sa, len)), Some(name)) = (pool_sockaddr(pool, e), util::pool_str(pool, e.as_bytes())) else { continue };
        ptr::write(addrs.add(n), Peer { sockaddr: sa, socklen: len, name });
        n += 1;
    }
    if n == 0 {
        return ngx_http_upstream_init_round_robin_peer(r, us);
    }
    ptr::write(peers, Peers { addrs, n, next: 0 });
    let u = (*r).upstream;
    (*u).peer.get = Some(get_peer);
    (*u).peer.free = Some(free_peer);
    (*u).peer.data = peers as *mut c_void;
    (*u).peer.tries = n as ngx_uint_t;
    OK
}

unsafe extern "C" fn get_peer(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    let peers = &mut *(data as *mut Peers);
    if peers.next >= peers.n {
        return BUSY;
    }
    let p = peers.addrs.add(peers.next);
    peers.next += 1;
    (*pc).sockaddr = (*p).sockaddr;
    (*pc).socklen = (*p).socklen;
    (*pc).name = &raw mut (*p).name;
    (*pc).set_cached(0);
    (*pc).connection = ptr::null_mut();
    OK
}

unsafe extern "C" fn free_peer(pc: *mut ngx_peer_connection_t, _data: *mut c_void, _state: ngx_uint_t) {
    // One try used; nginx answers 502 once none is left.
    if (*pc).tries > 0 {
        (*pc).tries -= 1;
    }
}
