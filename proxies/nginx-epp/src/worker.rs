//! Per-worker state: the gRPC runtime, the eventfd that wakes the worker's event loop and the
//! queue of finished calls. Touched only on the worker thread, except the queue and the
//! eventfd, which the runtime's threads write. Knows nothing of requests: what a finished call
//! means is the request side's business (the `on_wake` function it passes to [`init`]).

use crate::ffi::{self, Cycle, Status, WakeListener};
use epp_core::client::EppClient;
use epp_core::exchange::Outcome;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};

/// What a call ends with.
pub enum Completion {
    Epp(Outcome),
    /// Refused before any call: the request body exceeds epp_max_body_size (Envoy: 413).
    TooLarge,
}

pub struct Worker {
    pub client: EppClient,
    /// Written by runtime threads; the nginx connection holds a dup of it, so a late write after
    /// worker exit never lands on a reused descriptor.
    pub wake: Arc<Waker>,
    listener: Option<WakeListener>,
    next_id: u64,
}

pub struct Waker {
    fd: File,
    queue: Mutex<Vec<(u64, Completion)>>,
}

impl Waker {
    /// Runtime side: hand a finished call to the worker and wake its loop.
    pub fn complete(&self, id: u64, c: Completion) {
        let first = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push((id, c));
            q.len() == 1
        };
        // One wake-up per batch: a non-empty queue was already signalled, and the worker's
        // drain (after its read of the eventfd) takes everything queued up to then, this one
        // included. EAGAIN only when the counter is about to overflow: the worker is awake.
        if first {
            let _ = (&self.fd).write(&1u64.to_ne_bytes());
        }
    }

    /// Worker side: the calls finished since the last wake-up.
    pub fn drain(&self) -> Vec<(u64, Completion)> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Worker {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

thread_local! {
    /// The worker's state; None outside a worker or when the module is unused. Never dropped
    /// by the thread's exit (exit_process stops the runtime).
    static WORKER: ManuallyDrop<RefCell<Option<Worker>>> = const { ManuallyDrop::new(RefCell::new(None)) };
}

/// Runs `f` on the worker's state; None outside a worker. `f` must not call into nginx (which
/// may run request cleanups that need the state again).
pub fn with<R>(f: impl FnOnce(&mut Worker) -> R) -> Option<R> {
    WORKER.with(|w| w.borrow_mut().as_mut().map(f))
}

fn threads() -> usize {
    std::env::var("NGX_EPP_THREADS").ok().and_then(|v| v.parse().ok()).filter(|n| (1..=64).contains(n)).unwrap_or(1)
}

/// init_process: starts the runtime and registers the eventfd; `on_wake` runs on the worker
/// thread when calls have finished.
pub fn init(cycle: &Cycle, used: bool, on_wake: fn()) -> Status {
    if !used || !ffi::is_worker_process() {
        return ffi::OK;
    }
    match start(cycle, on_wake) {
        Ok(w) => {
            WORKER.with(|s| *s.borrow_mut() = Some(w));
            ffi::OK
        }
        Err(e) => {
            cycle.log(ffi::EMERG, &format!("epp: cannot start the gRPC runtime: {e}"));
            ffi::ERROR
        }
    }
}

fn start(cycle: &Cycle, on_wake: fn()) -> Result<Worker, String> {
    let fd = ffi::eventfd().map_err(|e| format!("eventfd: {e}"))?;
    let listener = WakeListener::register(cycle, &fd, on_wake)?;
    // Created here, after fork: a runtime's threads do not survive fork().
    let client = match EppClient::new(threads()) {
        Ok(c) => c,
        Err(e) => {
            listener.close();
            return Err(format!("tokio runtime: {e}"));
        }
    };
    Ok(Worker { client, wake: Arc::new(Waker { fd: File::from(fd), queue: Mutex::new(Vec::new()) }), listener: Some(listener), next_id: 0 })
}

/// exit_process: requests still waiting are being torn down by nginx; their calls die with
/// the runtime.
pub fn exit(_cycle: &Cycle) {
    if let Some(mut w) = WORKER.with(|s| s.borrow_mut().take()) {
        if let Some(l) = w.listener.take() {
            l.close();
        }
        w.client.shutdown();
    }
}
