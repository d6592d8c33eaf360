//! Small FFI helpers (worker thread only).

use ngx::ffi::*;
use std::ffi::{c_char, c_void, CString};

pub unsafe fn http_main_conf(cf: *mut ngx_conf_t, module: *const ngx_module_t) -> *mut c_void {
    let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
    *(*ctx).main_conf.add((*module).ctx_index)
}

pub unsafe fn http_loc_conf_cf(cf: *mut ngx_conf_t, module: *const ngx_module_t) -> *mut c_void {
    let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
    *(*ctx).loc_conf.add((*module).ctx_index)
}

pub unsafe fn http_loc_conf(r: *mut ngx_http_request_t, module: *const ngx_module_t) -> *mut c_void {
    *(*r).loc_conf.add((*module).ctx_index)
}

pub unsafe fn log(level: u32, log: *mut ngx_log_t, msg: &str) {
    if log.is_null() || (*log).log_level < level as ngx_uint_t {
        return;
    }
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    ngx_log_error_core(level as ngx_uint_t, log, 0, c"%s".as_ptr() as *const c_char, c.as_ptr());
}

pub unsafe fn conf_log(level: u32, cf: *mut ngx_conf_t, msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    ngx_conf_log_error(level as ngx_uint_t, cf, 0, c"%s".as_ptr() as *const c_char, c.as_ptr());
}

pub unsafe fn str_bytes<'a>(s: &ngx_str_t) -> &'a [u8] {
    if s.data.is_null() || s.len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(s.data, s.len)
    }
}

/// Copies bytes into the pool; None when out of memory.
pub unsafe fn pool_str(pool: *mut ngx_pool_t, b: &[u8]) -> Option<ngx_str_t> {
    if b.is_empty() {
        return Some(ngx_str_t { len: 0, data: c"".as_ptr() as *mut u8 });
    }
    let p = ngx_pnalloc(pool, b.len()) as *mut u8;
    if p.is_null() {
        return None;
    }
    std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len());
    Some(ngx_str_t { len: b.len(), data: p })
}

/// Value of an indexed variable (None when not found).
pub unsafe fn indexed_var<'a>(r: *mut ngx_http_request_t, index: ngx_int_t) -> Option<&'a [u8]> {
    if index < 0 {
        return None;
    }
    let v = ngx_http_get_indexed_variable(r, index as ngx_uint_t);
    if v.is_null() || (*v).not_found() != 0 {
        return None;
    }
    let len = (*v).len() as usize;
    Some(if len == 0 || (*v).data.is_null() { &[] } else { std::slice::from_raw_parts((*v).data, len) })
}

/// Stores a value in r->variables[index]: it survives internal redirects (r->ctx does not).
pub unsafe fn set_indexed_var(r: *mut ngx_http_request_t, index: ngx_int_t, value: &[u8]) -> bool {
    if index < 0 {
        return false;
    }
    let Some(s) = pool_str((*r).pool, value) else { return false };
    let v = (*r).variables.add(index as usize);
    (*v).set_len(s.len as u32);
    (*v).set_valid(1);
    (*v).set_no_cacheable(0);
    (*v).set_not_found(0);
    (*v).set_escape(0);
    (*v).data = s.data;
    true
}

pub unsafe fn complex_value(r: *mut ngx_http_request_t, cv: *mut ngx_http_complex_value_t) -> Option<Vec<u8>> {
    let mut out = ngx_str_t { len: 0, data: std::ptr::null_mut() };
    if ngx_http_complex_value(r, cv, &mut out) != NGX_OK as ngx_int_t {
        return None;
    }
    Some(str_bytes(&out).to_vec())
}
