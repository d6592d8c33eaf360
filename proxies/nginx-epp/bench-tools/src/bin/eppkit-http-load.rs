//! The compiled HTTP load client of `eppkit bench` (`--http-client native`, the default when
//! built): the request of eppkit's Node load workers (harness/bench/load-worker.ts: method, path,
//! headers, body) over HTTP/1.1 keep-alive connections, on the executor every eppkit load client
//! shares (src/load.rs = core/load-executor.ts), printing the same tally as one JSON line. A Node
//! worker costs 36–55 µs of CPU per request; this one thread a few, so on a 2-core machine the
//! plane under test, not the load generator, gets the CPU.
//!
//!   eppkit-http-load --url http://127.0.0.1:8080/bench [--method GET|POST] [--header 'k: v']...
//!       [--body-file F] [--executor constant-vus|constant-arrival-rate|burst] [--connections N]
//!       [--rate R] [--warmup-ms W] [--duration-ms D] [--timeout-ms T]
//! Exits when its stdin closes (the bench that started it went away).

use bytes::{Buf, BytesMut};
use eppkit_bench_tools::load::{self, Executor, Outcome, Plan};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn usage(msg: &str) -> ! {
    eprintln!("eppkit-http-load: {msg}\nusage: eppkit-http-load --url http://host:port/path [--method M] [--header 'k: v']... [--body-file F] [--executor constant-vus|constant-arrival-rate|burst] [--connections N] [--rate R] [--warmup-ms W] [--duration-ms D] [--timeout-ms T]");
    std::process::exit(2);
}

struct Target {
    /// host:port to connect to, and the Host header.
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> Target {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| usage(&format!("--url {url}: only http:// URLs")));
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let has_port = if auth.starts_with('[') { auth.contains("]:") } else { auth.contains(':') };
    let authority = if has_port { auth.to_owned() } else { format!("{auth}:80") };
    Target { authority, path: path.to_owned() }
}

/// A connection error's name as Node's load workers report it (the error's code), so reports and
/// verdicts read the same whichever client ran.
fn kind(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "ECONNREFUSED".into(),
        ConnectionReset | UnexpectedEof => "ECONNRESET".into(),
        BrokenPipe => "EPIPE".into(),
        ConnectionAborted => "ECONNABORTED".into(),
        TimedOut => "ETIMEDOUT".into(),
        AddrNotAvailable => "EADDRNOTAVAIL".into(),
        AddrInUse => "EADDRINUSE".into(),
        _ => e.raw_os_error().map_or_else(|| e.to_string(), |n| format!("errno {n}")),
    }
}

struct Conn {
    sock: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Reads more bytes; the peer closing here (mid-answer) is a reset, as Node's client names it.
    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        match self.sock.read_buf(&mut self.buf).await? {
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "socket hang up")),
            _ => Ok(()),
        }
    }

    /// Reads and drops the next `n` bytes of the answer.
    async fn skip(&mut self, mut n: u64) -> Result<(), String> {
        while n > 0 {
            if self.buf.is_empty() {
                self.fill().await.map_err(|e| kind(&e))?;
            }
            let take = n.min(self.buf.len() as u64);
            self.buf.advance(take as usize);
            n -= take;
        }
        Ok(())
    }

    /// Reads one response; returns (status, body bytes, connection reusable).
    async fn response(&mut self, head_request: bool) -> Result<(u16, u64, bool), String> {
        loop {
            let (status, head_len, length, chunked, close) = loop {
                let mut hs = [httparse::EMPTY_HEADER; 64];
                let mut r = httparse::Response::new(&mut hs);
                match r.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let mut length = None;
                        let mut chunked = false;
                        let mut close = r.version == Some(0);
                        for h in r.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = h.value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                                if v.contains("close") {
                                    close = true;
                                } else if v.contains("keep-alive") {
                                    close = false;
                                }
                            }
                        }
                        break (r.code.unwrap_or(0), n, length, chunked, close);
                    }
                    Ok(httparse::Status::Partial) => self.fill().await.map_err(|e| kind(&e))?,
                    Err(e) => return Err(format!("invalid HTTP response ({e})")),
                }
            };
            self.buf.advance(head_len);
            // 1xx (100 Continue, 103 Early Hints): the answer follows.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let mut bytes = 0u64;
            if head_request || status == 204 || status == 304 {
                return Ok((status, 0, !close));
            }
            if chunked {
                loop {
                    let line_end = loop {
                        if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                            break i;
                        }
                        self.fill().await.map_err(|e| kind(&e))?;
                    };
                    let line = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| "invalid chunk size".to_owned())?;
                    let size = u64::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| format!("invalid chunk size {line:?}"))?;
                    self.buf.advance(line_end + 2);
                    if size == 0 {
                        // Trailers, up to the empty line.
                        loop {
                            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                                self.buf.advance(i + 2);
                                if i == 0 {
                                    return Ok((status, bytes, !close));
                                }
                                continue;
                            }
                            self.fill().await.map_err(|e| kind(&e))?;
                        }
                    }
                    self.skip(size + 2).await?;
                    bytes += size;
                }
            }
            if let Some(n) = length {
                self.skip(n).await?;
                return Ok((status, n, !close));
            }
            // Neither length nor chunked: the body runs to the connection's end.
            loop {
                bytes += self.buf.len() as u64;
                self.buf.clear();
                match self.sock.read_buf(&mut self.buf).await {
                    Ok(0) => return Ok((status, bytes, false)),
                    Ok(_) => {}
                    Err(e) => return Err(kind(&e)),
                }
            }
        }
    }
}

struct Client {
    target: Target,
    request: Vec<u8>,
    head: bool,
    timeout: Duration,
    /// Idle keep-alive connections; an iteration takes one or opens one (at most `slots` exist).
    idle: RefCell<Vec<Conn>>,
}

impl Client {
    async fn iteration(self: Rc<Self>) -> Outcome {
        let c = self.clone();
        let exchange = async move {
            let reused = loop {
                let Some(conn) = c.idle.borrow_mut().pop() else { break None };
                // A connection the server closed while it sat idle (its keep-alive timeout) is
                // dropped, not used: Node's agent forgets such sockets too, and the plane did
                // nothing wrong. Readiness is tokio's cached state: no syscall while idle.
                match conn.sock.try_read(&mut [0u8; 1]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Some(conn),
                    _ => continue,
                }
            };
            let mut conn = match reused {
                Some(conn) => conn,
                None => {
                    let sock = TcpStream::connect(&c.target.authority).await.map_err(|e| kind(&e))?;
                    let _ = sock.set_nodelay(true);
                    Conn { sock, buf: BytesMut::with_capacity(16 * 1024) }
                }
            };
            conn.sock.write_all(&c.request).await.map_err(|e| kind(&e))?;
            let (status, bytes, keep) = conn.response(c.head).await?;
            if keep && conn.buf.is_empty() {
                c.idle.borrow_mut().push(conn);
            }
            Ok::<_, String>((status, bytes))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Error("timeout".into()),
            Ok(Err(k)) => Outcome::Error(k),
            Ok(Ok((status, bytes))) => Outcome::Answered { status: Some(status), bytes, done_at: None },
        }
    }
}

fn main() {
    let mut url = String::new();
    let mut method = "GET".to_owned();
    let mut headers: Vec<String> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut executor = Executor::ConstantVus;
    let mut slots = 32usize;
    let mut rate = 0f64;
    let mut warmup = Duration::from_secs(2);
    let mut duration = Duration::from_secs(10);
    let mut timeout = Duration::from_secs(10);
    let mut args = std::env::args().skip(1);
    while let Some(k) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| usage(&format!("{k} needs a value")));
        let num = |s: String| -> f64 { s.parse().unwrap_or_else(|_| usage(&format!("{k}: not a number: {s}"))) };
        let ms = |s: String| Duration::from_millis(num(s) as u64);
        match k.as_str() {
            "--url" => url = v(),
            "--method" => method = v(),
            "--header" => {
                let h = v();
                if !h.contains(':') || h.contains('\r') || h.contains('\n') {
                    usage(&format!("--header {h:?}: write 'name: value'"));
                }
                headers.push(h);
            }
            "--body-file" => {
                let f = v();
                body = std::fs::read(&f).unwrap_or_else(|e| usage(&format!("--body-file {f}: {e}")));
            }
            "--executor" => {
                let e = v();
                executor = Executor::parse(&e).unwrap_or_else(|| usage(&format!("--executor {e}: constant-vus, constant-arrival-rate or burst")));
            }
            "--connections" => slots = (num(v()) as usize).max(1),
            "--rate" => rate = num(v()),
            "--warmup-ms" => warmup = ms(v()),
            "--duration-ms" => duration = ms(v()),
            "--timeout-ms" => timeout = ms(v()),
            _ => usage(&format!("unknown argument {k}")),
        }
    }
    if url.is_empty() {
        usage("--url is required");
    }
    if executor == Executor::ConstantArrivalRate && rate <= 0.0 {
        usage("constant-arrival-rate needs --rate");
    }
    let target = parse_url(&url);
    // The request, encoded once: what Node's http client sends for the load workers' request.
    let mut request = format!("{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n", target.path, target.authority);
    for h in &headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(&body);

    load::exit_with_parent();
    let head = method.eq_ignore_ascii_case("HEAD");
    let client = Rc::new(Client { target, request, head, timeout, idle: RefCell::new(Vec::new()) });
    let plan = Plan { executor, slots, rate, warmup, duration, timeout, max_iterations: None };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let tally = local.block_on(&rt, async move {
        let c = client.clone();
        let fire: load::Fire = Rc::new(move || Box::pin(c.clone().iteration()));
        load::run(plan, fire).await
    });
    println!("{}", tally.to_json());
    // The connections and iterations still open go with the process.
    std::process::exit(0);
}
