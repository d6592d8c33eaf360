//! The gRPC side: a tokio runtime on threads of its own (created per nginx worker, after fork),
//! one HTTP/2 connection (tonic Channel) per EPP target reused by every request, and calls that
//! report their outcome through a callback (which wakes the nginx event loop).

use crate::exchange::{build_messages, served_report, Collector, EppStatus, Outcome, RequestData};
use crate::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use crate::settings::{BodyMode, TlsSettings};
use crate::tls::TlsConnector;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

/// Largest gRPC message either way (a buffered body travels in one message).
pub const MAX_MESSAGE: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct EppTarget {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsSettings>,
}

#[derive(Debug)]
pub struct EppCall {
    pub target: EppTarget,
    /// Per-message timeout (Envoy's message_timeout): the wait for each answer.
    pub timeout: Duration,
    pub mode: BodyMode,
    pub header_name: String,
    pub request: RequestData,
}

pub struct EppClient {
    rt: tokio::runtime::Runtime,
    channels: Arc<Mutex<HashMap<(String, u16, Option<TlsSettings>), Channel>>>,
}

/// Cancels a call; dropping it does not.
pub struct CallHandle(tokio::task::AbortHandle);

impl CallHandle {
    /// Drops the call's future on the runtime: the HTTP/2 stream is reset, nothing is reported.
    pub fn cancel(&self) {
        self.0.abort();
    }
}

impl EppClient {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("epp-grpc")
            .enable_all()
            .build()?;
        Ok(Self { rt, channels: Arc::new(Mutex::new(HashMap::new())) })
    }

    /// Starts a call; `done` runs on a runtime thread with the outcome, unless cancelled first.
    pub fn spawn<F>(&self, call: EppCall, done: F) -> CallHandle
    where
        F: FnOnce(Outcome) + Send + 'static,
    {
        let channels = self.channels.clone();
        let task = self.rt.spawn(async move {
            let outcome = run(&channels, call).await;
            done(outcome);
        });
        CallHandle(task.abort_handle())
    }

    /// Fire-and-forget served-endpoint report on a stream of its own.
    pub fn report_served(&self, target: EppTarget, timeout: Duration, served: String, status: u16) {
        let channels = self.channels.clone();
        self.rt.spawn(async move {
            let Ok(channel) = channel_for(&channels, &target) else { return };
            let mut client = ExternalProcessorClient::new(channel);
            let msgs = vec![served_report(&served, status)];
            let deadline = Instant::now() + timeout;
            if let Ok(Ok(resp)) = timeout_at(deadline, client.process(tokio_stream::iter(msgs))).await {
                let mut s = resp.into_inner();
                let _ = timeout_at(deadline, s.message()).await;
            }
        });
    }

    /// Stops the runtime without waiting for calls in flight (nginx worker exit).
    pub fn shutdown(self) {
        self.rt.shutdown_background();
    }

    /// For tests: run a future on the runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

fn channel_for(
    channels: &Mutex<HashMap<(String, u16, Option<TlsSettings>), Channel>>,
    t: &EppTarget,
) -> Result<Channel, String> {
    let key = (t.host.clone(), t.port, t.tls.clone());
    let mut map = channels.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(&key) {
        return Ok(c.clone());
    }
    let host_uri = if t.host.contains(':') { format!("[{}]", t.host) } else { t.host.clone() };
    let ep = Endpoint::from_shared(format!("http://{host_uri}:{}", t.port))
        .map_err(|e| format!("bad EPP address {}:{}: {e}", t.host, t.port))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .buffer_size(65_536)
        .initial_stream_window_size(4 * 1024 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    // Lazy: connects on first use and reconnects after failures, so one EPP restart does not
    // poison the cached channel.
    let ch = match &t.tls {
        None => ep.connect_lazy(),
        Some(s) => ep.connect_with_connector_lazy(TlsConnector::new(&t.host, t.port, s)?),
    };
    map.insert(key, ch.clone());
    Ok(ch)
}

fn from_status(s: tonic::Status) -> Outcome {
    let kind = match s.code() {
        Code::Unavailable => EppStatus::Unavailable,
        Code::DeadlineExceeded => EppStatus::Timeout,
        _ => EppStatus::Error,
    };
    Outcome::failed(kind, format!("EPP gRPC {:?}: {}", s.code(), s.message()))
}

async fn run(channels: &Mutex<HashMap<(String, u16, Option<TlsSettings>), Channel>>, call: EppCall) -> Outcome {
    let channel = match channel_for(channels, &call.target) {
        Ok(c) => c,
        Err(e) => return Outcome::failed(EppStatus::Error, e),
    };
    let mut client = ExternalProcessorClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let msgs = build_messages(&call.request, call.mode);
    let body_sent = msgs.len() > 1;
    let mut coll = Collector::new(&call.header_name, call.mode, body_sent);
    let mut deadline = Instant::now() + call.timeout;
    let mut stream = match timeout_at(deadline, client.process(tokio_stream::iter(msgs))).await {
        Err(_) => return Outcome::failed(EppStatus::Timeout, format!("no EPP answer within {} ms", call.timeout.as_millis())),
        Ok(Err(s)) => return from_status(s),
        Ok(Ok(r)) => r.into_inner(),
    };
    loop {
        match timeout_at(deadline, stream.message()).await {
            Err(_) if coll.has_pick_answer() => break,
            Err(_) => {
                return Outcome::failed(EppStatus::Timeout, format!("no EPP answer within {} ms", call.timeout.as_millis()))
            }
            Ok(Ok(Some(m))) => {
                if coll.feed(m) {
                    break;
                }
                deadline = Instant::now() + call.timeout;
            }
            Ok(Ok(None)) => break,
            Ok(Err(_)) if coll.has_pick_answer() => break,
            Ok(Err(s)) => return from_status(s),
        }
    }
    coll.outcome()
}
