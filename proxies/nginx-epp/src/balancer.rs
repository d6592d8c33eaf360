//! `epp_balancer;` in an `upstream` block: the EPP's fallback list as nginx peers.
//!
//! The EPP protocol makes the first valid entry of its comma list the pick and the rest
//! fallbacks, in order. `proxy_pass http://$inference_workload_endpoint` can only ever try the
//! first, so this load-balancing method hands nginx the whole list of THIS request (the
//! `$epp_endpoints` variable, kept in r->variables so it survives the NGF form's internal
//! redirect): `proxy_next_upstream` then moves to the next entry after a connect error, and
//! `tries` is the number of entries. A request without a list (fail-open, or no EPP call at
//! all) gets the upstream's own round-robin over its `server` lines: that is the pool.
//! The peer bookkeeping nginx needs lives in ffi.rs (`Directive::set_list_balancer`).

use crate::conf;
use crate::ffi::{ConfResult, Directive, Request};
use std::net::SocketAddr;

/// `epp_balancer;` (upstream context, no arguments).
pub fn set_balancer(d: &mut Directive<()>) -> ConfResult {
    d.set_list_balancer(peers_of);
    Ok(())
}

/// This request's entries, in the EPP's order; `[v6]:port` is what SocketAddr parses too, and
/// the entry as written is what $upstream_addr shows. Empty: round-robin over the pool.
fn peers_of(r: &mut Request) -> Vec<(SocketAddr, String)> {
    let Some(list) = r.var(conf::VAR_ENDPOINTS.index()) else { return Vec::new() };
    std::str::from_utf8(list)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| epp_core::endpoint::is_valid_endpoint(e))
        .filter_map(|e| e.parse().ok().map(|sa| (sa, e.to_owned())))
        .collect()
}
