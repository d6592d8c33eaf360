//! A compiled ext_proc load client for `eppkit bench mock-epp --load-client native`: one stream
//! per simulated request (request headers, then a JSON body, as a data plane sends them, framed
//! once and reused), over a few HTTP/2 connections (h2), at a fixed arrival rate (latency from
//! each stream's scheduled start, so a stalled server is not hidden) or in a closed loop. It
//! costs a few µs per stream, so at 5,000 streams/s the client is not what limits the mock.
//!
//!   eppkit-ext-proc-load --target ip:port [--rate 5000] [--concurrency 512] [--connections 4]
//!       [--duration-ms 10000] [--warmup-ms 1000] [--body-bytes 1024] [--body-mode none|BUFFERED|FULL_DUPLEX_STREAMED]
//! Streams start on the executor every eppkit load client shares (src/load.rs); it prints the
//! same tally (counts, HDR buckets of service time in µs, its own CPU) as one JSON line, and
//! exits when its stdin closes.

use bytes::{Bytes, BytesMut};
use epp_core::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use epp_core::pb::envoy::service::ext_proc::v3 as ep;
use prost::Message;
use eppkit_bench_tools::load::{self, Executor, Outcome, Plan};
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Opts {
    target: String,
    rate: f64,
    concurrency: usize,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    body_bytes: usize,
    body_mode: String,
    timeout: Duration,
}

fn usage(msg: &str) -> ! {
    eprintln!("eppkit-ext-proc-load: {msg}\nusage: eppkit-ext-proc-load --target ip:port [--rate R] [--concurrency N] [--connections C] [--duration-ms D] [--warmup-ms W] [--body-bytes B] [--body-mode none|BUFFERED|FULL_DUPLEX_STREAMED] [--timeout-ms T]");
    std::process::exit(2);
}

fn parse() -> Opts {
    let mut o = Opts { target: String::new(), rate: 0.0, concurrency: 64, connections: 4, duration: Duration::from_secs(10), warmup: Duration::from_secs(1), body_bytes: 1024, body_mode: "none".into(), timeout: Duration::from_secs(5) };
    let mut a = std::env::args().skip(1);
    while let Some(k) = a.next() {
        let mut v = || a.next().unwrap_or_else(|| usage(&format!("{k} needs a value")));
        let num = |s: String| -> f64 { s.parse().unwrap_or_else(|_| usage(&format!("{k}: not a number"))) };
        match k.as_str() {
            "--target" => o.target = v(),
            "--rate" => o.rate = num(v()),
            "--concurrency" => o.concurrency = num(v()) as usize,
            "--connections" => o.connections = (num(v()) as usize).max(1),
            "--duration-ms" => o.duration = Duration::from_millis(num(v()) as u64),
            "--warmup-ms" => o.warmup = Duration::from_millis(num(v()) as u64),
            "--body-bytes" => o.body_bytes = num(v()) as usize,
            "--body-mode" => o.body_mode = v(),
            "--timeout-ms" => o.timeout = Duration::from_millis(num(v()) as u64),
            _ => usage(&format!("unknown argument {k}")),
        }
    }
    if o.target.is_empty() {
        usage("--target is required");
    }
    o
}

fn hv(k: &str, v: &str) -> HeaderValue {
    HeaderValue { key: k.into(), value: String::new(), raw_value: v.as_bytes().to_vec() }
}

/// The request frames of one stream (gRPC length-prefixed), and how many answers they owe.
fn payload(o: &Opts) -> (Bytes, usize) {
    let has_body = o.body_bytes > 0;
    let mut first = ep::ProcessingRequest {
        request: Some(ep::processing_request::Request::RequestHeaders(ep::HttpHeaders {
            headers: Some(HeaderMap {
                headers: vec![
                    hv(":method", "POST"),
                    hv(":path", "/v1/completions"),
                    hv(":authority", "bench.test"),
                    hv(":scheme", "http"),
                    hv("content-type", "application/json"),
                    hv("content-length", &o.body_bytes.to_string()),
                    hv("user-agent", "eppkit-ext-proc-load"),
                ],
            }),
            end_of_stream: !has_body,
        })),
        ..Default::default()
    };
    let mode = match o.body_mode.as_str() {
        "none" => None,
        "BUFFERED" => Some(2),
        "FULL_DUPLEX_STREAMED" => Some(4),
        m => usage(&format!("--body-mode {m}: none, BUFFERED or FULL_DUPLEX_STREAMED")),
    };
    if let Some(m) = mode {
        // Both frames go at once, so the server must not wait for the headers answer first.
        first.protocol_config = Some(ep::ProtocolConfiguration { request_body_mode: m, response_body_mode: 0, send_body_without_waiting_for_header_response: true });
    }
    let mut msgs = vec![first.encode_to_vec()];
    if has_body {
        let head = "{\"model\":\"bench-model\",\"prompt\":\"";
        let tail = "\"}";
        let pad = o.body_bytes.saturating_sub(head.len() + tail.len());
        let mut body = format!("{head}{}{tail}", "x".repeat(pad)).into_bytes();
        body.truncate(o.body_bytes);
        msgs.push(ep::ProcessingRequest { request: Some(ep::processing_request::Request::RequestBody(ep::HttpBody { body, end_of_stream: true, ..Default::default() })), ..Default::default() }.encode_to_vec());
    }
    let mut out = BytesMut::new();
    for m in &msgs {
        out.extend_from_slice(&[0]);
        out.extend_from_slice(&(m.len() as u32).to_be_bytes());
        out.extend_from_slice(m);
    }
    (out.freeze(), msgs.len())
}

/// One ext_proc stream; Ok(when the last expected answer arrived).
async fn one(mut send: h2::client::SendRequest<Bytes>, authority: Rc<String>, body: Bytes, expected: usize) -> Result<Instant, String> {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{authority}/envoy.service.ext_proc.v3.ExternalProcessor/Process"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| e.to_string())?;
    send = send.ready().await.map_err(|e| format!("ready: {e}"))?;
    let (resp, mut stream) = send.send_request(req, false).map_err(|e| format!("send: {e}"))?;
    stream.send_data(body, true).map_err(|e| format!("data: {e}"))?;
    let resp = resp.await.map_err(|e| format!("response: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut rx = resp.into_body();
    let mut buf = BytesMut::new();
    let mut got = 0usize;
    while got < expected {
        match rx.data().await {
            Some(Ok(c)) => {
                let _ = rx.flow_control().release_capacity(c.len());
                buf.extend_from_slice(&c);
                while buf.len() >= 5 {
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                    if buf.len() < 5 + len {
                        break;
                    }
                    let _ = buf.split_to(5 + len);
                    got += 1;
                }
            }
            Some(Err(e)) => return Err(format!("body: {e}")),
            None => break,
        }
    }
    if got < expected {
        return Err(format!("stream ended after {got} of {expected} answers"));
    }
    let done_at = Instant::now();
    // Drain to the server's end of stream (its status): no reset from our side.
    while let Some(c) = rx.data().await {
        if let Ok(c) = c {
            let _ = rx.flow_control().release_capacity(c.len());
        }
    }
    let _ = rx.trailers().await;
    Ok(done_at)
}

fn main() {
    let o = parse();
    let (body, expected) = payload(&o);
    load::exit_with_parent();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut senders = Vec::new();
        for _ in 0..o.connections {
            let tcp = tokio::net::TcpStream::connect(&o.target).await.unwrap_or_else(|e| usage(&format!("cannot connect to {}: {e}", o.target)));
            let _ = tcp.set_nodelay(true);
            let (send, conn) = h2::client::Builder::new()
                .initial_window_size(1 << 20)
                .initial_connection_window_size(8 << 20)
                .handshake::<_, Bytes>(tcp)
                .await
                .unwrap_or_else(|e| usage(&format!("HTTP/2 handshake: {e}")));
            tokio::task::spawn_local(async move {
                let _ = conn.await;
            });
            senders.push(send);
        }
        let authority = Rc::new(o.target.clone());
        let senders = Rc::new(senders);
        let rr = Rc::new(std::cell::Cell::new(0usize));
        let timeout = o.timeout;
        let fire: load::Fire = Rc::new(move || {
            let i = rr.get();
            rr.set(i + 1);
            let fut = one(senders[i % senders.len()].clone(), authority.clone(), body.clone(), expected);
            Box::pin(async move {
                match tokio::time::timeout(timeout, fut).await {
                    Err(_) => Outcome::Error("timeout".into()),
                    Ok(Err(e)) => Outcome::Error(e),
                    Ok(Ok(done_at)) => Outcome::Answered { status: None, bytes: 0, done_at: Some(done_at) },
                }
            })
        });
        let executor = if o.rate > 0.0 { Executor::ConstantArrivalRate } else { Executor::ConstantVus };
        let plan = Plan { executor, slots: o.concurrency, rate: o.rate, warmup: o.warmup, duration: o.duration, timeout: o.timeout, max_iterations: None };
        println!("{}", load::run(plan, fire).await.to_json());
    });
}
