//! The compiled echo backend of `eppkit bench` (`--backend native`): the same answers as the
//! Node echo backend (harness/backends/echo-backend.ts) where a bench or a verdict relies on them
//! — status 200 (or `x-echo-status`), `x-inference-pod` / `x-inference-port` identity headers,
//! `X-Echo-Set-Header`, `x-echo-delay-ms`, a JSON echo of what was received (method, path, query,
//! headers, body size and sha256) — at a fraction of the CPU, so the plane under test, not the
//! backend, is what a bench measures. One thread (tokio current_thread), HTTP/1.1 keep-alive.
//!
//!   eppkit-echo-backend [--listen 127.0.0.2:0] [--name bench]
//! Prints `listening on http://<ip:port>` when ready (the Node backend's ready line).

use eppkit_bench_tools::json_str;
use ring::digest;
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

struct Identity {
    name: String,
    port: u16,
    /// `{"name":..,"ip":..,"port":..,"address":..}`, built once.
    json: String,
}

fn usage(msg: &str) -> ! {
    eprintln!("eppkit-echo-backend: {msg}\nusage: eppkit-echo-backend [--listen host:port] [--name NAME]");
    std::process::exit(2);
}

fn main() {
    let mut listen = "127.0.0.2:0".to_owned();
    let mut name = "pod-a".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or_else(|| usage("--listen needs host:port")),
            "--name" => name = args.next().unwrap_or_else(|| usage("--name needs a value")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::bind(&listen).await.unwrap_or_else(|e| usage(&format!("cannot listen on {listen}: {e}")));
        let addr = listener.local_addr().expect("local addr");
        let ip = addr.ip().to_string();
        let address = addr.to_string();
        let mut json = String::new();
        json.push_str("{\"name\":");
        json_str(&mut json, &name);
        json.push_str(",\"ip\":");
        json_str(&mut json, &ip);
        let _ = write!(json, ",\"port\":{},\"address\":", addr.port());
        json_str(&mut json, &address);
        json.push('}');
        let id = Rc::new(Identity { name, port: addr.port(), json });
        println!("listening on http://{address}");
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            let _ = sock.set_nodelay(true);
            let id = id.clone();
            tokio::task::spawn_local(async move {
                let _ = Conn::new(sock).serve(&id).await;
            });
        }
    });
}

/// One request's head, owned (the parse borrows the read buffer).
#[derive(Default)]
struct Head {
    method: String,
    path: String,
    raw_query: String,
    /// `"name":"value",...` (lower-case names, repeats joined with ", "), ready to embed.
    headers_json: String,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
    status: Option<u16>,
    delay_ms: Option<u64>,
    reset: bool,
    set_headers: Vec<(String, String)>,
}

struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are buf[lo..hi].
    lo: usize,
    hi: usize,
    out: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;

/// Model requests served since start, every connection (eppkit_echo_requests_total).
static SERVED: AtomicU64 = AtomicU64::new(0);

impl Conn {
    fn new(sock: TcpStream) -> Self {
        Conn { sock, buf: vec![0; 16 * 1024], lo: 0, hi: 0, out: Vec::with_capacity(4096) }
    }

    /// Reads more bytes; Ok(false) at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.lo == self.hi {
            self.lo = 0;
            self.hi = 0;
        } else if self.hi == self.buf.len() {
            if self.lo > 0 {
                self.buf.copy_within(self.lo..self.hi, 0);
                self.hi -= self.lo;
                self.lo = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        loop {
            self.sock.readable().await?;
            match self.sock.try_read(&mut self.buf[self.hi..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.hi += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        let mut at = 0;
        while at < self.out.len() {
            self.sock.writable().await?;
            match self.sock.try_write(&self.out[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        Ok(())
    }

    async fn serve(mut self, id: &Identity) -> io::Result<()> {
        loop {
            let head = match self.read_head().await? {
                Some(Ok(h)) => h,
                Some(Err(why)) => {
                    self.out.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: ");
                    self.out.extend_from_slice(why.len().to_string().as_bytes());
                    self.out.extend_from_slice(b"\r\n\r\n");
                    self.out.extend_from_slice(why.as_bytes());
                    return self.flush().await;
                }
                None => return Ok(()),
            };
            let (bytes, sha) = match self.read_body(&head).await? {
                Some(x) => x,
                None => return Ok(()),
            };
            if head.path != "/health" && head.path != "/metrics" {
                SERVED.fetch_add(1, Ordering::Relaxed);
                if let Some(ms) = head.delay_ms.filter(|ms| *ms > 0) {
                    tokio::time::sleep(Duration::from_millis(ms.min(600_000))).await;
                }
                if head.reset {
                    // SO_LINGER 0 then close: the peer sees a reset, as the Node backend's resetAndDestroy.
                    #[allow(deprecated)] // a zero linger does not block: the close sends RST at once
                    let _ = self.sock.set_linger(Some(Duration::ZERO));
                    return Ok(());
                }
            }
            self.answer(id, &head, bytes, &sha);
            self.flush().await?;
            if !head.keep_alive {
                return Ok(());
            }
        }
    }

    /// The next request head; None at a clean EOF between requests.
    async fn read_head(&mut self) -> io::Result<Option<Result<Head, String>>> {
        loop {
            if self.hi > self.lo {
                let mut hdrs = [httparse::EMPTY_HEADER; 96];
                let mut req = httparse::Request::new(&mut hdrs);
                match req.parse(&self.buf[self.lo..self.hi]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let head = head_of(&req);
                        self.lo += n;
                        return Ok(Some(head));
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.hi - self.lo > MAX_HEAD {
                            return Ok(Some(Err("request head over 64 KiB".into())));
                        }
                    }
                    Err(e) => return Ok(Some(Err(format!("bad request head: {e}")))),
                }
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Length of the next CRLF-terminated line (without the CRLF); None at EOF.
    async fn line(&mut self) -> io::Result<Option<usize>> {
        loop {
            if let Some(i) = find_crlf(&self.buf[self.lo..self.hi]) {
                return Ok(Some(i));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Hashes and consumes `left` body bytes; false at EOF.
    async fn take(&mut self, mut left: usize, ctx: &mut digest::Context) -> io::Result<bool> {
        while left > 0 {
            if self.lo == self.hi && !self.fill().await? {
                return Ok(false);
            }
            let n = left.min(self.hi - self.lo);
            ctx.update(&self.buf[self.lo..self.lo + n]);
            self.lo += n;
            left -= n;
        }
        Ok(true)
    }

    /// Consumes the body; returns its size and sha256 (hex). None when the peer went away.
    async fn read_body(&mut self, head: &Head) -> io::Result<Option<(u64, String)>> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut total = 0u64;
        if head.chunked {
            loop {
                // chunk-size [; ext] CRLF
                let Some(line_end) = self.line().await? else { return Ok(None) };
                let line = &self.buf[self.lo..self.lo + line_end];
                let hex = line.split(|b| *b == b';').next().unwrap_or(b"");
                let size = std::str::from_utf8(hex).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
                let Some(size) = size else { return Ok(None) };
                self.lo += line_end + 2;
                if size == 0 {
                    // Trailer lines until an empty one.
                    loop {
                        let Some(end) = self.line().await? else { return Ok(None) };
                        self.lo += end + 2;
                        if end == 0 {
                            break;
                        }
                    }
                    break;
                }
                if !self.take(size, &mut ctx).await? {
                    return Ok(None);
                }
                total += size as u64;
                // The CRLF after the chunk's data.
                let Some(_) = self.line().await? else { return Ok(None) };
                self.lo += 2;
            }
        } else if let Some(len) = head.content_length {
            if !self.take(len, &mut ctx).await? {
                return Ok(None);
            }
            total = len as u64;
        }
        let d = ctx.finish();
        let mut hex = String::with_capacity(64);
        for b in d.as_ref() {
            let _ = write!(hex, "{b:02x}");
        }
        Ok(Some((total, hex)))
    }

    fn answer(&mut self, id: &Identity, h: &Head, bytes: u64, sha: &str) {
        let mut body = String::with_capacity(512 + h.headers_json.len());
        let mut status = h.status.unwrap_or(200);
        let content_type;
        if h.path == "/health" {
            status = 200;
            content_type = "application/json";
            body.push_str("{\"status\":\"ok\",\"name\":");
            json_str(&mut body, &id.name);
            body.push('}');
        } else if h.path == "/metrics" {
            status = 200;
            content_type = "text/plain; version=0.0.4";
            let _ = write!(
                body,
                "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 0\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 0\n# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc 0\n# TYPE eppkit_echo_requests_total counter\neppkit_echo_requests_total {}\n",
                SERVED.load(Ordering::Relaxed)
            );
        } else {
            content_type = "application/json";
            body.push_str("{\"backend\":");
            body.push_str(&id.json);
            body.push_str(",\"request\":{\"method\":");
            json_str(&mut body, &h.method);
            body.push_str(",\"path\":");
            json_str(&mut body, &h.path);
            body.push_str(",\"query\":[");
            for (i, pair) in h.raw_query.split('&').filter(|p| !p.is_empty()).enumerate() {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if i > 0 {
                    body.push(',');
                }
                body.push('[');
                json_str(&mut body, &percent_decode(k));
                body.push(',');
                json_str(&mut body, &percent_decode(v));
                body.push(']');
            }
            body.push_str("],\"rawQuery\":");
            json_str(&mut body, &h.raw_query);
            body.push_str(",\"headers\":{");
            body.push_str(&h.headers_json);
            let _ = write!(body, "}},\"bodyBytes\":{bytes},\"bodySha256\":\"{sha}\",\"chunked\":{}}}", h.chunked);
            let model = |body: &mut String, object: &str, extra: &str| {
                let _ = write!(body, ",\"object\":\"{object}\"{extra}");
            };
            match h.path.as_str() {
                "/v1/models" => model(&mut body, "list", ",\"data\":[{\"id\":\"eppkit-echo\",\"object\":\"model\",\"owned_by\":\"eppkit\"}]"),
                "/v1/completions" => {
                    let mut served_by = String::new();
                    json_str(&mut served_by, &format!("served by {}", id.name));
                    let extra = format!(",\"id\":\"cmpl-{}\",\"model\":\"eppkit-echo\",\"choices\":[{{\"index\":0,\"text\":{served_by},\"finish_reason\":\"stop\"}}]", SERVED.load(Ordering::Relaxed));
                    model(&mut body, "text_completion", &extra);
                }
                "/v1/chat/completions" => {
                    let mut served_by = String::new();
                    json_str(&mut served_by, &format!("served by {}", id.name));
                    let extra = format!(
                        ",\"id\":\"chatcmpl-{}\",\"model\":\"eppkit-echo\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{served_by}}},\"finish_reason\":\"stop\"}}]",
                        SERVED.load(Ordering::Relaxed)
                    );
                    model(&mut body, "chat.completion", &extra);
                }
                _ => {}
            }
            if status >= 400 {
                let _ = write!(body, ",\"error\":{{\"message\":\"injected error {status}\",\"type\":\"eppkit_injected\"}}");
            }
            body.push('}');
        }
        let o = &mut self.out;
        let _ = write_bytes(o, format_args!("HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\n", reason(status)));
        if content_type == "application/json" && h.path != "/health" {
            let _ = write_bytes(o, format_args!("x-inference-pod: {}\r\nx-inference-port: {}\r\n", id.name, id.port));
            for (k, v) in &h.set_headers {
                let _ = write_bytes(o, format_args!("{k}: {v}\r\n"));
            }
        }
        if !h.keep_alive {
            o.extend_from_slice(b"connection: close\r\n");
        }
        let _ = write_bytes(o, format_args!("content-length: {}\r\n\r\n", body.len()));
        o.extend_from_slice(body.as_bytes());
    }
}

fn write_bytes(o: &mut Vec<u8>, args: std::fmt::Arguments<'_>) -> io::Result<()> {
    io::Write::write_fmt(o, args)
}

fn head_of(req: &httparse::Request<'_, '_>) -> Result<Head, String> {
    let mut h = Head { method: req.method.unwrap_or("GET").to_owned(), ..Default::default() };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    h.path = path.to_owned();
    h.raw_query = query.to_owned();
    let http10 = req.version == Some(0);
    h.keep_alive = !http10;
    // Names in arrival order, repeats joined (Node's IncomingMessage.headers shape).
    let mut seen: Vec<(String, String)> = Vec::with_capacity(req.headers.len());
    for hd in req.headers.iter() {
        let name = hd.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(hd.value).trim().to_owned();
        match name.as_str() {
            "content-length" => h.content_length = Some(value.parse().map_err(|_| format!("bad content-length {value:?}"))?),
            "transfer-encoding" => h.chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    h.keep_alive = false;
                } else if v.contains("keep-alive") {
                    h.keep_alive = true;
                }
            }
            "x-echo-status" => h.status = value.parse().ok().filter(|s| (100..=599).contains(s)),
            "x-echo-delay-ms" => h.delay_ms = value.parse().ok(),
            "x-echo-reset" => h.reset = value == "true",
            "x-echo-set-header" => {
                for pair in value.split(',') {
                    if let Some((k, v)) = pair.split_once(':') {
                        let k = k.trim();
                        if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b)) {
                            h.set_headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some(prev) = seen.iter_mut().find(|(k, _)| *k == name) {
            prev.1.push_str(", ");
            prev.1.push_str(&value);
        } else {
            seen.push((name, value));
        }
    }
    for (i, (k, v)) in seen.iter().enumerate() {
        if i > 0 {
            h.headers_json.push(',');
        }
        json_str(&mut h.headers_json, k);
        h.headers_json.push(':');
        json_str(&mut h.headers_json, v);
    }
    Ok(h)
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
