//! Directives, per-location configuration and the module's variables.

use crate::util::{self, conf_log};
use epp_core::settings::{validate_header_name, validate_timeout_ms, BodyMode};
use ngx::ffi::*;
use std::ffi::{c_char, c_void};
use std::ptr;

pub const UNSET: isize = -1;
pub const UNSET_SIZE: usize = usize::MAX;
pub const DEFAULT_TIMEOUT_MS: isize = 200;
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// epp_bbr_max_body_size default: the same as the EPP's body limit.
pub const DEFAULT_BBR_MAX_BODY: usize = 16 * 1024 * 1024;

#[repr(C)]
pub struct LocConf {
    pub get_endpoint: ngx_flag_t,
    pub endpoint: *mut ngx_http_complex_value_t,
    pub timeout_ms: ngx_int_t,
    pub fail_open: ngx_flag_t,
    /// Lower-case; empty = default.
    pub header_name: ngx_str_t,
    pub default_upstream: *mut ngx_http_complex_value_t,
    /// 0 none, 1 buffered, 2 streamed; UNSET before merge.
    pub body_mode: ngx_int_t,
    pub max_body: usize,
    pub tls: ngx_flag_t,
    pub tls_verify: ngx_flag_t,
    pub tls_ca: ngx_str_t,
    pub tls_server_name: ngx_str_t,
    pub report_served: ngx_flag_t,
    /// epp_allow, parsed; null = any endpoint. Owned by the config pool (dropped by its cleanup).
    pub allow: *mut std::sync::Arc<epp_core::endpoint::Allowlist>,
    pub subset_hint: *mut ngx_http_complex_value_t,
    /// epp_bbr: body-based routing (the model of a JSON body into a request header).
    pub bbr: ngx_flag_t,
    /// Lower-case; empty = x-gateway-model-name.
    pub bbr_header: ngx_str_t,
    /// How many body bytes BBR scans for the model at most.
    pub bbr_max_body: usize,
    /// epp_bbr_require_model: no usable model -> 400 (413 over the scan limit).
    pub bbr_require_model: ngx_flag_t,
}

/// A configured string, or the default when it was not set.
fn or_default(v: &ngx_str_t, default: &str) -> String {
    let b = unsafe { util::str_bytes(v) };
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
}

// Variable indices, fixed at configuration time (same in every worker).
pub static mut VAR_ENDPOINT: ngx_int_t = -1;
pub static mut VAR_STATUS: ngx_int_t = -1;
/// `$epp_endpoints`: every valid (and allowed) entry of the EPP's list, in order, for `epp_balancer`.
pub static mut VAR_ENDPOINTS: ngx_int_t = -1;
pub static mut VAR_EPP_HOST: ngx_int_t = -1;
pub static mut VAR_EPP_PORT: ngx_int_t = -1;
pub static mut VAR_EPP_PATH: ngx_int_t = -1;
pub static mut VAR_UPSTREAM_ADDR: ngx_int_t = -1;
/// `$epp_model`: the model BBR found in the body (not found otherwise).
pub static mut VAR_MODEL: ngx_int_t = -1;
/// `$epp_bbr_status`: what BBR concluded (ok, no_body, no_model, not_json, ...); also marks a
/// request BBR has already handled (it survives the NGF form's internal redirect).
pub static mut VAR_BBR_STATUS: ngx_int_t = -1;
/// Some location uses the module: workers then start the gRPC runtime.
pub static mut MODULE_USED: bool = false;

const NGX_CONF_OK: *mut c_char = ptr::null_mut();

fn conf_err(msg: &'static std::ffi::CStr) -> *mut c_char {
    msg.as_ptr() as *mut c_char
}
const CONF_ERROR: *mut c_char = -1isize as *mut c_char;

pub unsafe extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    let c = ngx_pcalloc((*cf).pool, std::mem::size_of::<LocConf>()) as *mut LocConf;
    if c.is_null() {
        return ptr::null_mut();
    }
    (*c).get_endpoint = UNSET;
    (*c).timeout_ms = UNSET;
    (*c).fail_open = UNSET;
    (*c).body_mode = UNSET;
    (*c).max_body = UNSET_SIZE;
    (*c).tls = UNSET;
    (*c).tls_verify = UNSET;
    (*c).report_served = UNSET;
    (*c).bbr = UNSET;
    (*c).bbr_max_body = UNSET_SIZE;
    (*c).bbr_require_model = UNSET;
    // endpoint/default_upstream null, strings empty: unset.
    c as *mut c_void
}

fn merge_i(conf: &mut isize, prev: isize, default: isize) {
    if *conf == UNSET {
        *conf = if prev == UNSET { default } else { prev };
    }
}

pub unsafe extern "C" fn merge_loc_conf(_cf: *mut ngx_conf_t, parent: *mut c_void, child: *mut c_void) -> *mut c_char {
    let p = &*(parent as *const LocConf);
    let c = &mut *(child as *mut LocConf);
    // epp_get_endpoint is per location (it installs a content handler there): not inherited.
    if c.get_endpoint == UNSET {
        c.get_endpoint = 0;
    }
    if c.endpoint.is_null() {
        c.endpoint = p.endpoint;
    }
    merge_i(&mut c.timeout_ms, p.timeout_ms, DEFAULT_TIMEOUT_MS);
    merge_i(&mut c.fail_open, p.fail_open, 0);
    if c.header_name.data.is_null() {
        c.header_name = p.header_name;
    }
    if c.default_upstream.is_null() {
        c.default_upstream = p.default_upstream;
    }
    merge_i(&mut c.body_mode, p.body_mode, 1);
    if c.max_body == UNSET_SIZE {
        c.max_body = if p.max_body == UNSET_SIZE { DEFAULT_MAX_BODY } else { p.max_body };
    }
    merge_i(&mut c.tls, p.tls, 0);
    merge_i(&mut c.tls_verify, p.tls_verify, 1);
    if c.tls_ca.data.is_null() {
        c.tls_ca = p.tls_ca;
    }
    if c.tls_server_name.data.is_null() {
        c.tls_server_name = p.tls_server_name;
    }
    merge_i(&mut c.report_served, p.report_served, 0);
    if c.allow.is_null() {
        c.allow = p.allow;
    }
    if c.subset_hint.is_null() {
        c.subset_hint = p.subset_hint;
    }
    merge_i(&mut c.bbr, p.bbr, 0);
    if c.bbr_header.data.is_null() {
        c.bbr_header = p.bbr_header;
    }
    if c.bbr_max_body == UNSET_SIZE {
        c.bbr_max_body = if p.bbr_max_body == UNSET_SIZE { DEFAULT_BBR_MAX_BODY } else { p.bbr_max_body };
    }
    merge_i(&mut c.bbr_require_model, p.bbr_require_model, 0);
    NGX_CONF_OK
}

unsafe fn args<'a>(cf: *mut ngx_conf_t) -> &'a [ngx_str_t] {
    let a = (*cf).args;
    std::slice::from_raw_parts((*a).elts as *const ngx_str_t, (*a).nelts)
}

unsafe fn field<T>(conf: *mut c_void, cmd: *mut ngx_command_t) -> *mut T {
    (conf as *mut u8).add((*cmd).offset) as *mut T
}

pub unsafe extern "C" fn set_flag(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    MODULE_USED = true;
    ngx_conf_set_flag_slot(cf, cmd, conf)
}

pub unsafe extern "C" fn set_str(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    MODULE_USED = true;
    ngx_conf_set_str_slot(cf, cmd, conf)
}

pub unsafe extern "C" fn set_size(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let f = field::<usize>(conf, cmd);
    if *f != UNSET_SIZE {
        return conf_err(c"is duplicate");
    }
    let v = &args(cf)[1];
    let n = ngx_parse_size(v as *const ngx_str_t as *mut ngx_str_t);
    if n < 0 {
        return conf_err(c"invalid size");
    }
    *f = n as usize;
    NGX_CONF_OK
}

pub unsafe extern "C" fn set_complex(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    MODULE_USED = true;
    let f = field::<*mut ngx_http_complex_value_t>(conf, cmd);
    if !(*f).is_null() {
        return conf_err(c"is duplicate");
    }
    let cv = ngx_pcalloc((*cf).pool, std::mem::size_of::<ngx_http_complex_value_t>()) as *mut ngx_http_complex_value_t;
    if cv.is_null() {
        return CONF_ERROR;
    }
    let value = &args(cf)[1] as *const ngx_str_t as *mut ngx_str_t;
    let mut ccv: ngx_http_compile_complex_value_t = std::mem::zeroed();
    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;
    if ngx_http_compile_complex_value(&mut ccv) != NGX_OK as ngx_int_t {
        return CONF_ERROR;
    }
    *f = cv;
    NGX_CONF_OK
}

pub unsafe extern "C" fn set_endpoint(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let v = util::str_bytes(&args(cf)[1]);
    // A literal value is checked now; one with variables at request time.
    if !v.contains(&b'$') {
        if let Err(e) = epp_core::endpoint::parse_target(&String::from_utf8_lossy(v)) {
            conf_log(NGX_LOG_EMERG, cf, &format!("epp_endpoint: {e}"));
            return CONF_ERROR;
        }
    }
    set_complex(cf, cmd, conf)
}

pub unsafe extern "C" fn set_timeout_ms(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let f = field::<ngx_int_t>(conf, cmd);
    if *f != UNSET {
        return conf_err(c"is duplicate");
    }
    let s = String::from_utf8_lossy(util::str_bytes(&args(cf)[1])).into_owned();
    let ms = match s.parse::<i64>().map_err(|_| format!("invalid number {s:?}")).and_then(validate_timeout_ms) {
        Ok(d) => d.as_millis() as ngx_int_t,
        Err(e) => {
            conf_log(NGX_LOG_EMERG, cf, &format!("epp_timeout_ms: {e}"));
            return CONF_ERROR;
        }
    };
    *f = ms;
    NGX_CONF_OK
}

pub unsafe extern "C" fn set_header_name(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let f = field::<ngx_str_t>(conf, cmd);
    if !(*f).data.is_null() {
        return conf_err(c"is duplicate");
    }
    let s = String::from_utf8_lossy(util::str_bytes(&args(cf)[1])).into_owned();
    match validate_header_name(&s) {
        Ok(lc) => match util::pool_str((*cf).pool, lc.as_bytes()) {
            Some(v) => {
                *f = v;
                NGX_CONF_OK
            }
            None => CONF_ERROR,
        },
        Err(e) => {
            let name = String::from_utf8_lossy(util::str_bytes(&(*cmd).name)).into_owned();
            conf_log(NGX_LOG_EMERG, cf, &format!("{name}: {e}"));
            CONF_ERROR
        }
    }
}

pub unsafe extern "C" fn set_body_mode(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let f = field::<ngx_int_t>(conf, cmd);
    if *f != UNSET {
        return conf_err(c"is duplicate");
    }
    let s = String::from_utf8_lossy(util::str_bytes(&args(cf)[1])).into_owned();
    match BodyMode::parse(&s) {
        Ok(m) => {
            *f = match m {
                BodyMode::None => 0,
                BodyMode::Buffered => 1,
                BodyMode::Streamed => 2,
            };
            NGX_CONF_OK
        }
        Err(e) => {
            conf_log(NGX_LOG_EMERG, cf, &format!("epp_body_mode: {e}"));
            CONF_ERROR
        }
    }
}

unsafe extern "C" fn drop_allowlist(data: *mut c_void) {
    drop(Box::from_raw(data as *mut std::sync::Arc<epp_core::endpoint::Allowlist>));
}

/// `epp_allow cidr|ip|ip:port ...;`
pub unsafe extern "C" fn set_allow(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let f = field::<*mut std::sync::Arc<epp_core::endpoint::Allowlist>>(conf, cmd);
    if !(*f).is_null() {
        return conf_err(c"is duplicate");
    }
    let entries: Vec<String> = args(cf)[1..].iter().map(|a| String::from_utf8_lossy(util::str_bytes(a)).into_owned()).collect();
    let list = match epp_core::endpoint::Allowlist::parse(entries.iter().flat_map(|e| e.split(','))) {
        Ok(l) => l,
        Err(e) => {
            conf_log(NGX_LOG_EMERG, cf, &format!("epp_allow: {e}"));
            return CONF_ERROR;
        }
    };
    let cln = ngx_pool_cleanup_add((*cf).pool, 0);
    if cln.is_null() {
        return CONF_ERROR;
    }
    let b = Box::into_raw(Box::new(std::sync::Arc::new(list)));
    (*cln).handler = Some(drop_allowlist);
    (*cln).data = b as *mut c_void;
    *f = b;
    NGX_CONF_OK
}

/// `epp_get_endpoint on|off`: installs the content handler and resolves the NGF variables.
pub unsafe extern "C" fn set_get_endpoint(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if !rv.is_null() {
        return rv;
    }
    let lc = &*(conf as *const LocConf);
    if lc.get_endpoint != 1 {
        return NGX_CONF_OK;
    }
    MODULE_USED = true;
    let clcf = util::http_loc_conf_cf(cf, &raw const ngx_http_core_module) as *mut ngx_http_core_loc_conf_t;
    (*clcf).handler = Some(crate::request::content_handler);
    for (name, slot) in [
        ("epp_host", &raw mut VAR_EPP_HOST),
        ("epp_port", &raw mut VAR_EPP_PORT),
        ("epp_internal_path", &raw mut VAR_EPP_PATH),
    ] {
        let mut n = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
        // Unknown variables fail the config test with "unknown variable": they come from `set`.
        let idx = ngx_http_get_variable_index(cf, &mut n);
        if idx == NGX_ERROR as ngx_int_t {
            return CONF_ERROR;
        }
        *slot = idx;
    }
    NGX_CONF_OK
}

unsafe extern "C" fn var_unset(_r: *mut ngx_http_request_t, v: *mut ngx_http_variable_value_t, _data: usize) -> ngx_int_t {
    (*v).set_not_found(1);
    NGX_OK as ngx_int_t
}

pub unsafe fn add_variables(cf: *mut ngx_conf_t) -> Result<(), ()> {
    for (name, slot) in [
        ("inference_workload_endpoint", &raw mut VAR_ENDPOINT),
        ("epp_status", &raw mut VAR_STATUS),
        ("epp_endpoints", &raw mut VAR_ENDPOINTS),
        ("epp_model", &raw mut VAR_MODEL),
        ("epp_bbr_status", &raw mut VAR_BBR_STATUS),
    ] {
        let mut n = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
        let v = ngx_http_add_variable(cf, &mut n, NGX_HTTP_VAR_CHANGEABLE as ngx_uint_t);
        if v.is_null() {
            return Err(());
        }
        (*v).get_handler = Some(var_unset);
        let idx = ngx_http_get_variable_index(cf, &mut n);
        if idx == NGX_ERROR as ngx_int_t {
            return Err(());
        }
        *slot = idx;
    }
    Ok(())
}

pub unsafe fn index_builtin_variables(cf: *mut ngx_conf_t) -> Result<(), ()> {
    let mut n = ngx::ngx_string!("upstream_addr");
    let idx = ngx_http_get_variable_index(cf, &mut n);
    if idx == NGX_ERROR as ngx_int_t {
        return Err(());
    }
    VAR_UPSTREAM_ADDR = idx;
    Ok(())
}
