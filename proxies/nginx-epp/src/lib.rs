//! ngx_http_rust_epp_module: asks an Endpoint Picker (Envoy ext_proc over gRPC) where each
//! request goes, without ever blocking an nginx worker.
//!
//! Two config forms:
//! - NGF drop-in: `epp_get_endpoint on;` (content handler) reads `$epp_host`, `$epp_port`,
//!   `$epp_internal_path`, sets `$inference_workload_endpoint` and redirects internally.
//! - Direct: `epp_endpoint host:port;` runs in the precontent phase, sets the variable and the
//!   endpoint request header, then lets the same location's `proxy_pass` run.
//!
//! Either form may proxy to an `upstream { epp_balancer; ... }`, which tries the EPP's
//! fallback list in order (`$epp_endpoints`) and round-robins the `server` lines without one.
//!
//! Threads: nginx APIs are only ever called on the worker thread. The gRPC client runs on a tokio
//! runtime (own threads, created in init_process after fork); a finished call pushes its outcome
//! to a queue and writes an eventfd that is registered as a read event in the worker's loop.
//!
//! Layers (no cycles): ffi (every raw pointer, the only unchecked code) <- conf <- worker <- request,
//! balancer <- this file (the tables nginx reads and the callbacks it calls).

mod balancer;
mod conf;
mod ffi;
mod request;
mod worker;

use conf::LocConf;
use ffi::{ConfResult, Directive, Status};
use ngx::ffi::{
    ngx_command_t, ngx_http_module_t, ngx_module_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_CONF_TAKE1,
    NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MODULE, NGX_HTTP_SRV_CONF,
    NGX_HTTP_UPS_CONF,
};
use std::ffi::c_void;
use std::ptr;

/// The `commands` array: terminated by an empty command.
static mut COMMANDS: [ngx_command_t; 21] = [
    ngx_command_t {
        name: ngx::ngx_string!("epp_get_endpoint"),
        type_: (NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, set_get_endpoint)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, get_endpoint),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_endpoint"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_endpoint)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, endpoint),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_timeout_ms"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_timeout_ms)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, timeout_ms),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_failure_mode_allow"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_flag)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, fail_open),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_header_name"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_header_name)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, header_name),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_default_upstream"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_complex)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, default_upstream),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_body_mode"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_body_mode)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, body_mode),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_max_body_size"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_size)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, max_body),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_tls"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_flag)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, tls),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_tls_verify"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_flag)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, tls_verify),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_tls_ca"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_str)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, tls_ca),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_tls_server_name"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_str)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, tls_server_name),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_report_served"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_flag)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, report_served),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_allow"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_allow)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, allow),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_subset_hint"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_complex)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, subset_hint),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_balancer"),
        type_: (NGX_HTTP_UPS_CONF | NGX_CONF_NOARGS) as ngx_uint_t,
        set: Some(ffi::directive!((), balancer::set_balancer)),
        conf: 0,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_bbr"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        // Not set_flag: BBR alone needs no gRPC runtime in the workers.
        set: Some(ffi::directive!(LocConf, conf::set_plain_flag)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, bbr),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_bbr_header"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_header_name)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, bbr_header),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_bbr_max_body_size"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_size)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, bbr_max_body),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("epp_bbr_require_model"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ffi::directive!(LocConf, conf::set_plain_flag)),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: std::mem::offset_of!(LocConf, bbr_require_model),
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(ffi::conf_handler!(preconfiguration)),
    postconfiguration: Some(ffi::conf_handler!(postconfiguration)),
    create_main_conf: None,
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(ffi::create_conf::<LocConf>),
    merge_loc_conf: Some(ffi::merge_conf!(LocConf, conf::merge_loc_conf)),
};

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_rust_epp_module: ngx_module_t = ngx_module_t {
    ctx: &MODULE_CTX as *const ngx_http_module_t as *mut c_void,
    commands: &raw mut COMMANDS as *mut ngx_command_t,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_process: Some(ffi::init_process!(init_process)),
    exit_process: Some(ffi::exit_process!(worker::exit)),
    ..ngx_module_t::default()
};

ngx::ngx_modules!(ngx_http_rust_epp_module);

/// `epp_get_endpoint`: the content handler comes from here, so conf does not depend on request.
fn set_get_endpoint(d: &mut Directive<LocConf>) -> ConfResult {
    conf::set_get_endpoint(d, ffi::http_handler!(request::content_handler))
}

fn init_process(cycle: &ffi::Cycle) -> Status {
    worker::init(cycle, conf::module_used(), request::on_wake)
}

/// Variables are added before the rest of the config is parsed, so `map`, `log_format` and
/// `set` can use them.
fn preconfiguration(cf: &mut ffi::Conf) -> Status {
    ffi::register_module::<LocConf>(&raw mut ngx_http_rust_epp_module);
    if conf::add_variables(cf).is_err() {
        return ffi::ERROR;
    }
    ffi::OK
}

fn postconfiguration(cf: &mut ffi::Conf) -> Status {
    if !cf.add_phase_handler(false, ffi::http_handler!(request::precontent_handler))
        || !cf.add_phase_handler(true, ffi::http_handler!(request::log_handler))
        || conf::index_builtin_variables(cf).is_err()
    {
        return ffi::ERROR;
    }
    ffi::OK
}
