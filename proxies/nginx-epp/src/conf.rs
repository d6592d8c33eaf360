//! Directives, per-location configuration and the module's variables.

use crate::ffi::{self, ComplexValue, Conf, ConfError, ConfResult, Directive, NgxStr, PoolBox};
use epp_core::endpoint::Allowlist;
use epp_core::settings::{validate_header_name, validate_timeout_ms, BodyMode};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;

pub const UNSET: isize = -1;
pub const UNSET_SIZE: usize = usize::MAX;
pub const DEFAULT_TIMEOUT_MS: isize = 200;
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// epp_bbr_max_body_size default: the same as the EPP's body limit.
pub const DEFAULT_BBR_MAX_BODY: usize = 16 * 1024 * 1024;

/// Set by nginx's own slot setters through the commands' offsets: keep the field types
/// (`isize` for flags and numbers, `NgxStr` for strings).
#[repr(C)]
pub struct LocConf {
    pub get_endpoint: isize,
    pub endpoint: Option<ComplexValue>,
    pub timeout_ms: isize,
    pub fail_open: isize,
    /// Lower-case; empty = default.
    pub header_name: NgxStr,
    pub default_upstream: Option<ComplexValue>,
    /// 0 none, 1 buffered, 2 streamed; UNSET before merge.
    pub body_mode: isize,
    pub max_body: usize,
    pub tls: isize,
    pub tls_verify: isize,
    pub tls_ca: NgxStr,
    pub tls_server_name: NgxStr,
    pub report_served: isize,
    /// epp_allow, parsed; None = any endpoint. Owned by the config pool.
    pub allow: Option<PoolBox<Arc<Allowlist>>>,
    pub subset_hint: Option<ComplexValue>,
    /// epp_bbr: body-based routing (the model of a JSON body into a request header).
    pub bbr: isize,
    /// Lower-case; empty = x-gateway-model-name.
    pub bbr_header: NgxStr,
    /// How many body bytes BBR scans for the model at most.
    pub bbr_max_body: usize,
    /// epp_bbr_require_model: no usable model -> 400 (413 over the scan limit).
    pub bbr_require_model: isize,
}

impl Default for LocConf {
    fn default() -> Self {
        // endpoint/default_upstream None, strings empty: unset.
        LocConf {
            get_endpoint: UNSET,
            endpoint: None,
            timeout_ms: UNSET,
            fail_open: UNSET,
            header_name: NgxStr::default(),
            default_upstream: None,
            body_mode: UNSET,
            max_body: UNSET_SIZE,
            tls: UNSET,
            tls_verify: UNSET,
            tls_ca: NgxStr::default(),
            tls_server_name: NgxStr::default(),
            report_served: UNSET,
            allow: None,
            subset_hint: None,
            bbr: UNSET,
            bbr_header: NgxStr::default(),
            bbr_max_body: UNSET_SIZE,
            bbr_require_model: UNSET,
        }
    }
}

/// A configured string, or the default when it was not set.
fn or_default(v: &NgxStr, default: &str) -> String {
    let b = v.as_bytes();
    if b.is_empty() {
        default.to_owned()
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

impl LocConf {
    pub fn body_mode(&self) -> BodyMode {
        match self.body_mode {
            0 => BodyMode::None,
            2 => BodyMode::Streamed,
            _ => BodyMode::Buffered,
        }
    }
    pub fn bbr_header(&self) -> String {
        or_default(&self.bbr_header, epp_core::bbr::DEFAULT_MODEL_HEADER)
    }
    pub fn header_name(&self) -> String {
        or_default(&self.header_name, epp_core::exchange::DEFAULT_ENDPOINT_HEADER)
    }
    /// The epp_allow list; None = any endpoint.
    pub fn allowlist(&self) -> Option<&Arc<Allowlist>> {
        self.allow.as_deref()
    }
}

/// Variable indices, fixed at configuration time (same in every worker).
pub struct Var(AtomicIsize);

impl Var {
    const fn new() -> Self {
        Var(AtomicIsize::new(-1))
    }
    pub fn index(&self) -> isize {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, i: isize) {
        self.0.store(i, Ordering::Relaxed)
    }
}

pub static VAR_ENDPOINT: Var = Var::new();
pub static VAR_STATUS: Var = Var::new();
/// `$epp_endpoints`: every valid (and allowed) entry of the EPP's list, in order, for `epp_balancer`.
pub static VAR_ENDPOINTS: Var = Var::new();
pub static VAR_EPP_HOST: Var = Var::new();
pub static VAR_EPP_PORT: Var = Var::new();
pub static VAR_EPP_PATH: Var = Var::new();
pub static VAR_UPSTREAM_ADDR: Var = Var::new();
/// `$epp_model`: the model BBR found in the body (not found otherwise).
pub static VAR_MODEL: Var = Var::new();
/// `$epp_bbr_status`: what BBR concluded (ok, no_body, no_model, not_json, ...); also marks a
/// request BBR has already handled (it survives the NGF form's internal redirect).
pub static VAR_BBR_STATUS: Var = Var::new();

/// Some location uses the module: workers then start the gRPC runtime.
static MODULE_USED: AtomicBool = AtomicBool::new(false);

pub fn module_used() -> bool {
    MODULE_USED.load(Ordering::Relaxed)
}

fn mark_used() {
    MODULE_USED.store(true, Ordering::Relaxed);
}

fn merge_i(conf: &mut isize, prev: isize, default: isize) {
    if *conf == UNSET {
        *conf = if prev == UNSET { default } else { prev };
    }
}

pub fn merge_loc_conf(p: &LocConf, c: &mut LocConf) -> ConfResult {
    // epp_get_endpoint is per location (it installs a content handler there): not inherited.
    if c.get_endpoint == UNSET {
        c.get_endpoint = 0;
    }
    if c.endpoint.is_none() {
        c.endpoint = p.endpoint;
    }
    merge_i(&mut c.timeout_ms, p.timeout_ms, DEFAULT_TIMEOUT_MS);
    merge_i(&mut c.fail_open, p.fail_open, 0);
    if !c.header_name.is_set() {
        c.header_name = p.header_name;
    }
    if c.default_upstream.is_none() {
        c.default_upstream = p.default_upstream;
    }
    merge_i(&mut c.body_mode, p.body_mode, 1);
    if c.max_body == UNSET_SIZE {
        c.max_body = if p.max_body == UNSET_SIZE { DEFAULT_MAX_BODY } else { p.max_body };
    }
    merge_i(&mut c.tls, p.tls, 0);
    merge_i(&mut c.tls_verify, p.tls_verify, 1);
    if !c.tls_ca.is_set() {
        c.tls_ca = p.tls_ca;
    }
    if !c.tls_server_name.is_set() {
        c.tls_server_name = p.tls_server_name;
    }
    merge_i(&mut c.report_served, p.report_served, 0);
    if c.allow.is_none() {
        c.allow = p.allow;
    }
    if c.subset_hint.is_none() {
        c.subset_hint = p.subset_hint;
    }
    merge_i(&mut c.bbr, p.bbr, 0);
    if !c.bbr_header.is_set() {
        c.bbr_header = p.bbr_header;
    }
    if c.bbr_max_body == UNSET_SIZE {
        c.bbr_max_body = if p.bbr_max_body == UNSET_SIZE { DEFAULT_BBR_MAX_BODY } else { p.bbr_max_body };
    }
    merge_i(&mut c.bbr_require_model, p.bbr_require_model, 0);
    Ok(())
}

type D<'a> = Directive<'a, LocConf>;

fn arg(d: &D, i: usize) -> String {
    d.args().get(i).map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default()
}

fn emerg(d: &D, msg: String) -> ConfResult {
    d.log(ffi::EMERG, &msg);
    Err(ConfError::Failed)
}

/// An `on|off` directive that needs the gRPC runtime in the workers.
pub fn set_flag(d: &mut D) -> ConfResult {
    mark_used();
    d.flag_slot()
}

/// `on|off` without the runtime (BBR alone needs none).
pub fn set_plain_flag(d: &mut D) -> ConfResult {
    d.flag_slot()
}

pub fn set_str(d: &mut D) -> ConfResult {
    mark_used();
    d.str_slot()
}

pub fn set_size(d: &mut D) -> ConfResult {
    if *d.field::<usize>() != UNSET_SIZE {
        return Err(ConfError::Msg(c"is duplicate"));
    }
    let v = d.args().first().map(|a| a.to_vec()).unwrap_or_default();
    let Some(n) = d.parse_size(&v) else { return Err(ConfError::Msg(c"invalid size")) };
    *d.field::<usize>() = n;
    Ok(())
}

pub fn set_complex(d: &mut D) -> ConfResult {
    mark_used();
    if d.field::<Option<ComplexValue>>().is_some() {
        return Err(ConfError::Msg(c"is duplicate"));
    }
    let Some(cv) = d.complex_value(0) else { return Err(ConfError::Failed) };
    *d.field::<Option<ComplexValue>>() = Some(cv);
    Ok(())
}

pub fn set_endpoint(d: &mut D) -> ConfResult {
    let v = arg(d, 0);
    // A literal value is checked now; one with variables at request time.
    if !v.contains('$') {
        if let Err(e) = epp_core::endpoint::parse_target(&v) {
            return emerg(d, format!("epp_endpoint: {e}"));
        }
    }
    set_complex(d)
}

pub fn set_timeout_ms(d: &mut D) -> ConfResult {
    if *d.field::<isize>() != UNSET {
        return Err(ConfError::Msg(c"is duplicate"));
    }
    let s = arg(d, 0);
    match s.parse::<i64>().map_err(|_| format!("invalid number {s:?}")).and_then(validate_timeout_ms) {
        Ok(ms) => {
            *d.field::<isize>() = ms.as_millis() as isize;
            Ok(())
        }
        Err(e) => emerg(d, format!("epp_timeout_ms: {e}")),
    }
}

pub fn set_header_name(d: &mut D) -> ConfResult {
    if d.field::<NgxStr>().is_set() {
        return Err(ConfError::Msg(c"is duplicate"));
    }
    match validate_header_name(&arg(d, 0)) {
        Ok(lc) => {
            let Some(v) = d.pool_str(lc.as_bytes()) else { return Err(ConfError::Failed) };
            *d.field::<NgxStr>() = v;
            Ok(())
        }
        Err(e) => {
            let name = String::from_utf8_lossy(d.name()).into_owned();
            emerg(d, format!("{name}: {e}"))
        }
    }
}

pub fn set_body_mode(d: &mut D) -> ConfResult {
    if *d.field::<isize>() != UNSET {
        return Err(ConfError::Msg(c"is duplicate"));
    }
    match BodyMode::parse(&arg(d, 0)) {
        Ok(m) => {
            *d.field::<isize>() = match m {
                BodyMode::None => 0,
                BodyMode::Buffered => 1,
                BodyMode::Streamed => 2,
            };
            Ok(())
        }
        Err(e) => emerg(d, format!("epp_body_mode: {e}")),
    }
}

/// `epp_allow cidr|ip|ip:port ...;`
pub fn set_allow(d: &mut D) -> ConfResult {
    if d.field::<Option<PoolBox<Arc<Allowlist>>>>().is_some() {
        return Err(ConfError::Msg(c"is duplicate"));
    }
    let entries: Vec<String> = d.args().iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let list = match Allowlist::parse(entries.iter().flat_map(|e| e.split(','))) {
        Ok(l) => l,
        Err(e) => return emerg(d, format!("epp_allow: {e}")),
    };
    let Some(b) = d.pool_box(Arc::new(list)) else { return Err(ConfError::Failed) };
    *d.field::<Option<PoolBox<Arc<Allowlist>>>>() = Some(b);
    Ok(())
}

/// `epp_get_endpoint on|off`: installs `content` as the location's handler and resolves the
/// NGF variables.
pub fn set_get_endpoint(d: &mut D, content: ffi::HttpHandler) -> ConfResult {
    d.flag_slot()?;
    if d.conf().get_endpoint != 1 {
        return Ok(());
    }
    mark_used();
    d.set_content_handler(content);
    for (name, var) in [("epp_host", &VAR_EPP_HOST), ("epp_port", &VAR_EPP_PORT), ("epp_internal_path", &VAR_EPP_PATH)] {
        // Unknown variables fail the config test with "unknown variable": they come from `set`.
        let Some(idx) = d.variable_index(name) else { return Err(ConfError::Failed) };
        var.set(idx);
    }
    Ok(())
}

/// Variables are added before the rest of the config is parsed, so `map`, `log_format` and
/// `set` can use them.
pub fn add_variables(cf: &mut Conf) -> Result<(), ()> {
    for (name, var) in [
        ("inference_workload_endpoint", &VAR_ENDPOINT),
        ("epp_status", &VAR_STATUS),
        ("epp_endpoints", &VAR_ENDPOINTS),
        ("epp_model", &VAR_MODEL),
        ("epp_bbr_status", &VAR_BBR_STATUS),
    ] {
        var.set(cf.add_variable(name).ok_or(())?);
    }
    Ok(())
}

pub fn index_builtin_variables(cf: &mut Conf) -> Result<(), ()> {
    VAR_UPSTREAM_ADDR.set(cf.variable_index("upstream_addr").ok_or(())?);
    Ok(())
}
