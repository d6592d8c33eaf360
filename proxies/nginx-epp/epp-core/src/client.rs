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

/// One tonic Channel (one HTTP/2 connection) per EPP target and TLS settings.
type Channels = Mutex<HashMap<(String, u16, Option<TlsSettings>), Channel>>;

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
    /// Empty = any valid endpoint.
    pub allow: std::sync::Arc<crate::endpoint::Allowlist>,
}

pub struct EppClient {
    rt: tokio::runtime::Runtime,
    channels: Arc<Channels>,
}

/// Where the worker hands over the served endpoint (`$upstream_addr`) and response status.
pub struct ServedSlot(tokio::sync::oneshot::Sender<(String, u16)>);

impl ServedSlot {
    pub fn report(self, served: String, status: u16) {
        let _ = self.0.send((served, status));
    }
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
            run(&channels, call, None, done).await;
        });
        CallHandle(task.abort_handle())
    }

    /// Like [`spawn`](Self::spawn), but after a pick the stream stays open until the returned
    /// slot is filled with the served endpoint (sent as a response_headers message on the same
    /// stream, as Envoy does) or dropped (the stream is then reset).
    pub fn spawn_with_report<F>(&self, call: EppCall, done: F) -> (CallHandle, ServedSlot)
    where
        F: FnOnce(Outcome) + Send + 'static,
    {
        let channels = self.channels.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = self.rt.spawn(async move {
            run(&channels, call, Some(rx), done).await;
        });
        (CallHandle(task.abort_handle()), ServedSlot(tx))
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
    channels: &Channels,
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

async fn run<F>(
    channels: &Channels,
    call: EppCall,
    report: Option<tokio::sync::oneshot::Receiver<(String, u16)>>,
    done: F,
) where
    F: FnOnce(Outcome) + Send + 'static,
{
    let channel = match channel_for(channels, &call.target) {
        Ok(c) => c,
        Err(e) => return done(Outcome::failed(EppStatus::Error, e)),
    };
    let mut client = ExternalProcessorClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let msgs = build_messages(&call.request, call.mode);
    let body_sent = msgs.len() > 1;
    let mut coll = Collector::new(&call.header_name, call.mode, body_sent)
        .with_body_chunks(msgs.len() - 1)
        .with_allowlist((*call.allow).clone());
    let timeout_outcome = || Outcome::failed(EppStatus::Timeout, format!("no EPP answer within {} ms", call.timeout.as_millis()));
    let mut deadline = Instant::now() + call.timeout;
    // The request side: the messages, then half-close; a channel only when a served report is
    // to follow on the same stream (the common call allocates no channel).
    let (opened, more) = if report.is_some() {
        let (tx, rx) = tokio::sync::mpsc::channel(msgs.len() + 1);
        for m in msgs {
            let _ = tx.try_send(m);
        }
        (timeout_at(deadline, client.process(tokio_stream::wrappers::ReceiverStream::new(rx))).await, Some(tx))
    } else {
        (timeout_at(deadline, client.process(tokio_stream::iter(msgs))).await, None)
    };
    let mut stream = match opened {
        Err(_) => return done(timeout_outcome()),
        Ok(Err(s)) => return done(from_status(s)),
        Ok(Ok(r)) => r.into_inner(),
    };
    loop {
        match timeout_at(deadline, stream.message()).await {
            // Buffered: the body's answer is owed, and Envoy's message timeout fails the call
            // even after the pick. Full duplex has no per-message timeout in Envoy: the pick
            // stands once the body's echo is late.
            Err(_) if coll.has_pick_answer() && call.mode == BodyMode::Streamed => break,
            Err(_) => return done(timeout_outcome()),
            Ok(Ok(Some(m))) => {
                if coll.feed(m) {
                    break;
                }
                deadline = Instant::now() + call.timeout;
            }
            Ok(Ok(None)) => break,
            // A gRPC error (a reset, a status) while answers are owed fails the call even after the
            // pick, in both body modes, as Envoy does (FailClose 500; fuzz findings): unlike a
            // late echo in full duplex, an error ends the body's relay.
            Ok(Err(s)) => return done(from_status(s)),
        }
    }
    let outcome = coll.outcome();
    let routed = matches!(outcome, Outcome::Routed { .. });
    done(outcome);
    // Served report on the same stream: wait for the worker (bounded by the request's life:
    // the slot is dropped when the request's pool goes away).
    if routed {
        if let (Some(rx), Some(tx)) = (report, more) {
            send_served(rx, tx, stream, call.timeout).await;
            return;
        }
    }
    // Let the EPP end the stream (its trailers follow the last answer): dropping it early would
    // reset every stream, which HTTP/2 servers treat as abuse (rapid-reset protection answers
    // ENHANCE_YOUR_CALM and closes the connection).
    let until = Instant::now() + call.timeout;
    while let Ok(Ok(Some(_))) = timeout_at(until, stream.message()).await {}
}

async fn send_served(
    rx: tokio::sync::oneshot::Receiver<(String, u16)>,
    tx: tokio::sync::mpsc::Sender<crate::pb::envoy::service::ext_proc::v3::ProcessingRequest>,
    mut stream: tonic::Streaming<crate::pb::envoy::service::ext_proc::v3::ProcessingResponse>,
    timeout: Duration,
) {
    let Ok((served, status)) = rx.await else { return };
    let sent = tx.send(served_report(&served, status)).await;
    drop(tx); // half-close
    if sent.is_ok() {
        let until = Instant::now() + timeout;
        while let Ok(Ok(Some(_))) = timeout_at(until, stream.message()).await {}
    }
}
