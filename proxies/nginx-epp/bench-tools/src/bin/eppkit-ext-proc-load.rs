//! A compiled ext_proc load client for `eppkit bench mock-epp --load-client native`: one stream
//! per simulated request (request headers, then a JSON body, as a data plane sends them, framed
//! once and reused), over a few HTTP/2 connections (h2), at a fixed arrival rate (latency from
//! each stream's scheduled start, so a stalled server is not hidden) or in a closed loop. It
//! costs a few µs per stream, so at 5,000 streams/s the client is not what limits the mock.
//!
//!   eppkit-ext-proc-load --target ip:port [--rate 5000] [--concurrency 512] [--connections 4]
//!       [--duration-ms 10000] [--warmup-ms 1000] [--body-bytes 1024] [--body-mode none|BUFFERED|FULL_DUPLEX_STREAMED]
//! Prints one JSON object with the counts, the service-time percentiles (ms) and its own CPU.

use bytes::{Bytes, BytesMut};
use epp_core::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use epp_core::pb::envoy::service::ext_proc::v3 as ep;
use prost::Message;
use std::cell::RefCell;
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
}

fn usage(msg: &str) -> ! {
    eprintln!("eppkit-ext-proc-load: {msg}\nusage: eppkit-ext-proc-load --target ip:port [--rate R] [--concurrency N] [--connections C] [--duration-ms D] [--warmup-ms W] [--body-bytes B] [--body-mode none|BUFFERED|FULL_DUPLEX_STREAMED]");
    std::process::exit(2);
}

fn parse() -> Opts {
    let mut o = Opts { target: String::new(), rate: 0.0, concurrency: 64, connections: 4, duration: Duration::from_secs(10), warmup: Duration::from_secs(1), body_bytes: 1024, body_mode: "none".into() };
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

#[derive(Default)]
struct Stats {
    lat_us: Vec<u32>,
    errors: u64,
    dropped: u64,
    in_flight: usize,
    total: u64,
    last_end: Option<Instant>,
}

fn cpu_us() -> u64 {
    // utime + stime of this process, from /proc (USER_HZ 100).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (t(11) + t(12)) * 10_000
}

async fn one(mut send: h2::client::SendRequest<Bytes>, authority: Rc<String>, body: Bytes, expected: usize) -> Result<(), String> {
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
    // Drain to the server's end of stream (its status): no reset from our side.
    while let Some(c) = rx.data().await {
        if let Ok(c) = c {
            let _ = rx.flow_control().release_capacity(c.len());
        }
    }
    let _ = rx.trailers().await;
    Ok(())
}

fn main() {
    let o = parse();
    let (body, expected) = payload(&o);
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
        let stats = Rc::new(RefCell::new(Stats::default()));
        let start = Instant::now();
        let measure_from = start + o.warmup;
        let stop_at = measure_from + o.duration;
        let mut cpu0 = None;
        let mut next = 0u64;
        let interval = if o.rate > 0.0 { Duration::from_secs_f64(1.0 / o.rate) } else { Duration::ZERO };
        let launch = |intended: Instant, i: usize| {
            let st = stats.clone();
            st.borrow_mut().in_flight += 1;
            let fut = one(senders[i % senders.len()].clone(), authority.clone(), body.clone(), expected);
            tokio::task::spawn_local(async move {
                let r = fut.await;
                let end = Instant::now();
                let mut s = st.borrow_mut();
                s.in_flight -= 1;
                s.total += 1;
                if intended >= measure_from && intended < stop_at {
                    s.last_end = Some(end);
                    match r {
                        Ok(()) => s.lat_us.push(end.duration_since(intended).as_micros().min(u32::MAX as u128) as u32),
                        Err(_) => s.errors += 1,
                    }
                }
            });
        };
        loop {
            let now = Instant::now();
            if cpu0.is_none() && now >= measure_from {
                cpu0 = Some(cpu_us());
            }
            if now >= stop_at {
                break;
            }
            if o.rate > 0.0 {
                // Every stream due by now starts (latency counts from its scheduled time).
                loop {
                    let intended = start + interval * next as u32;
                    if intended > now || intended >= stop_at {
                        break;
                    }
                    next += 1;
                    if stats.borrow().in_flight >= o.concurrency {
                        if intended >= measure_from {
                            stats.borrow_mut().dropped += 1;
                        }
                        continue;
                    }
                    launch(intended, next as usize);
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            } else {
                while stats.borrow().in_flight < o.concurrency {
                    next += 1;
                    launch(Instant::now(), next as usize);
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_micros(50)).await;
            }
        }
        let cpu1 = cpu_us();
        // Let the streams in flight finish (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.borrow().in_flight > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut s = stats.borrow_mut();
        let elapsed = s.last_end.map(|e| e.duration_since(measure_from)).unwrap_or(o.duration).max(o.duration);
        let n = s.lat_us.len();
        s.lat_us.sort_unstable();
        let pct = |p: f64| -> f64 { if n == 0 { 0.0 } else { s.lat_us[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0 } };
        let client_cpu_us = cpu1.saturating_sub(cpu0.unwrap_or(cpu1));
        println!(
            "{{\"streams\":{n},\"streamsTotal\":{},\"errors\":{},\"dropped\":{},\"elapsedMs\":{},\"rate\":{:.1},\"p50\":{:.3},\"p90\":{:.3},\"p99\":{:.3},\"p999\":{:.3},\"max\":{:.3},\"clientCpuUs\":{client_cpu_us},\"clientUsPerStream\":{:.1}}}",
            s.total,
            s.errors,
            s.dropped,
            elapsed.as_millis(),
            n as f64 / elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(0.999),
            pct(1.0),
            if n > 0 { client_cpu_us as f64 / n as f64 } else { 0.0 }
        );
    });
}
