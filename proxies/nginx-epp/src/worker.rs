//! Per-worker state: the gRPC runtime, the eventfd that wakes the worker's event loop, the queue
//! of finished calls and the table of requests waiting for one. Touched only on the worker
//! thread, except the queue and the eventfd, which the runtime's threads write.

use crate::request::Completion;
use crate::util;
use epp_core::client::EppClient;
use ngx::ffi::*;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

pub struct Worker {
    pub client: EppClient,
    /// Written by runtime threads; the nginx connection holds a dup of it, so a late write after
    /// worker exit never lands on a reused descriptor.
    pub wake: Arc<Waker>,
    conn: *mut ngx_connection_t,
    pub pending: HashMap<u64, *mut crate::request::ReqCtx>,
    /// Served-endpoint slots of routed requests (epp_report_served), by request address;
    /// filled in the log phase, dropped with the request's pool.
    pub served: HashMap<usize, epp_core::client::ServedSlot>,
    next_id: u64,
}

pub struct Waker {
    fd: OwnedFd,
    pub queue: Mutex<Vec<(u64, Completion)>>,
}

impl Waker {
    /// Runtime side: hand a finished call to the worker and wake its loop.
    pub fn complete(&self, id: u64, c: Completion) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push((id, c));
        let one: u64 = 1;
        // EAGAIN only when the counter is about to overflow: the worker is awake anyway.
        unsafe { libc::write(self.fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    }
}

// Read through a raw pointer (not `&mut WORKER`): the static_mut_refs rule.
static mut WORKER: Option<Worker> = None;

/// The worker's state; None outside a worker or when the module is unused.
pub unsafe fn get() -> Option<&'static mut Worker> {
    (*(&raw mut WORKER)).as_mut()
}

impl Worker {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

fn threads() -> usize {
    std::env::var("NGX_EPP_THREADS").ok().and_then(|v| v.parse().ok()).filter(|n| (1..=64).contains(n)).unwrap_or(1)
}

pub unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    if !crate::conf::MODULE_USED {
        return NGX_OK as ngx_int_t;
    }
    let p = ngx_process as u32;
    if p != NGX_PROCESS_WORKER && p != NGX_PROCESS_SINGLE {
        return NGX_OK as ngx_int_t;
    }
    let log = (*cycle).log;
    match start(cycle) {
        Ok(w) => {
            WORKER = Some(w);
            NGX_OK as ngx_int_t
        }
        Err(e) => {
            util::log(NGX_LOG_EMERG, log, &format!("epp: cannot start the gRPC runtime: {e}"));
            NGX_ERROR as ngx_int_t
        }
    }
}

unsafe fn start(cycle: *mut ngx_cycle_t) -> Result<Worker, String> {
    let raw = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
    if raw < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    let fd = OwnedFd::from_raw_fd(raw);
    let dup = libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0);
    if dup < 0 {
        return Err(format!("dup: {}", std::io::Error::last_os_error()));
    }
    let c = ngx_get_connection(dup, (*cycle).log);
    if c.is_null() {
        libc::close(dup);
        return Err("no free connection for the eventfd (worker_connections)".into());
    }
    (*c).log = (*cycle).log;
    (*(*c).read).log = (*cycle).log;
    (*(*c).write).log = (*cycle).log;
    (*(*c).read).handler = Some(on_wake);
    (*c).data = std::ptr::null_mut();
    if ngx_handle_read_event((*c).read, 0) != NGX_OK as ngx_int_t {
        ngx_close_connection(c);
        return Err("cannot add the eventfd to the event loop".into());
    }
    // Created here, after fork: a runtime's threads do not survive fork().
    let client = EppClient::new(threads()).map_err(|e| format!("tokio runtime: {e}"))?;
    Ok(Worker { client, wake: Arc::new(Waker { fd, queue: Mutex::new(Vec::new()) }), conn: c, pending: HashMap::new(), served: HashMap::new(), next_id: 0 })
}

/// Read event of the eventfd: runs on the worker thread inside nginx's event loop.
unsafe extern "C" fn on_wake(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    let mut buf: u64 = 0;
    // Reset the counter first, then drain: a completion queued after the drain writes again.
    libc::read((*c).fd, &mut buf as *mut u64 as *mut libc::c_void, 8);
    (*ev).set_ready(0);
    let Some(w) = get() else { return };
    let items = std::mem::take(&mut *w.wake.queue.lock().unwrap_or_else(|e| e.into_inner()));
    for (id, completion) in items {
        crate::request::on_complete(id, completion);
    }
}

pub unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    if let Some(w) = (*(&raw mut WORKER)).take() {
        if !w.conn.is_null() {
            ngx_close_connection(w.conn);
        }
        // Requests still waiting are being torn down by nginx; their calls die with the runtime.
        w.client.shutdown();
    }
}
