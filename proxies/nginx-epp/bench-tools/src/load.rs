//! The executor of eppkit's compiled load clients: the same rules as core/load-executor.ts (when
//! iterations start, which of them count, what a hang at window close becomes) and the same
//! tally (core/load-tally.ts), so `eppkit bench` merges a compiled client's result exactly like a
//! Node worker's. The protocol (an HTTP/1.1 request, an ext_proc stream) is the caller's `fire`.
//! One thread (tokio current_thread + LocalSet): a few µs per iteration, far below the servers'.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::precise_timer::ScheduleSleeper;

/// Error kind of an iteration still in flight when the window (plus grace) closed.
pub const IN_FLIGHT_AT_CLOSE: &str = "timeout (in flight at window close)";
/// The burst executor starts a burst this often (when the previous one is over).
pub const BURST_INTERVAL: Duration = Duration::from_millis(1000);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Executor {
    ConstantVus,
    ConstantArrivalRate,
    Burst,
}

impl Executor {
    pub fn parse(s: &str) -> Option<Executor> {
        match s {
            "constant-vus" => Some(Executor::ConstantVus),
            "constant-arrival-rate" => Some(Executor::ConstantArrivalRate),
            "burst" => Some(Executor::Burst),
            _ => None,
        }
    }
}

pub struct Plan {
    pub executor: Executor,
    /// Virtual users, the most in flight (arrival rate), or iterations per burst.
    pub slots: usize,
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// The protocol's per-iteration timeout: bounds the wait at window close (at most 5 s).
    pub timeout: Duration,
    pub max_iterations: Option<u64>,
}

/// One iteration's outcome: answered (status when the protocol has one), or no answer, by kind.
pub enum Outcome {
    Answered { status: Option<u16>, bytes: u64, done_at: Option<Instant> },
    Error(String),
}

pub type Fire = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Outcome>>>>;

/// Latencies in µs at 3 significant digits, bucketed as an HDR histogram (2048 sub-buckets,
/// unit 1 µs) buckets them, so the values recorded into eppkit's HDR histogram land unchanged.
#[derive(Default)]
pub struct Histogram {
    counts: HashMap<u64, u64>,
}

impl Histogram {
    pub fn record_us(&mut self, us: u64) {
        let v = us.clamp(1, 300_000_000);
        let bits = 64 - v.leading_zeros();
        let shift = bits.saturating_sub(11);
        *self.counts.entry((v >> shift) << shift).or_insert(0) += 1;
    }
    /// `[[µs, count], ...]` in ascending order.
    pub fn to_json(&self) -> String {
        let sorted: BTreeMap<_, _> = self.counts.iter().collect();
        let mut s = String::from("[");
        for (i, (v, c)) in sorted.iter().enumerate() {
            let _ = write!(s, "{}[{v},{c}]", if i > 0 { "," } else { "" });
        }
        s.push(']');
        s
    }
}

#[derive(Default)]
pub struct Tally {
    pub hist: Histogram,
    pub requests: u64,
    pub status_codes: BTreeMap<u16, u64>,
    pub non2xx: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub dropped: u64,
    pub bytes: u64,
    pub elapsed_ms: f64,
    pub in_flight_at_close: u64,
    pub iterations: u64,
    /// CPU of this process over the window (µs) and as a fraction of one core.
    pub cpu_us: u64,
    pub cpu: f64,
}

impl Tally {
    fn error(&mut self, kind: &str) {
        self.errors += 1;
        *self.error_kinds.entry(kind.to_owned()).or_insert(0) += 1;
    }
    /// The tally as core/load-tally.ts's Tally, with the histogram as `[µs, count]` pairs.
    pub fn to_json(&self) -> String {
        let codes: Vec<String> = self.status_codes.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let kinds: Vec<String> = self
            .error_kinds
            .iter()
            .map(|(k, v)| {
                let mut s = String::new();
                crate::json_str(&mut s, k);
                format!("{s}:{v}")
            })
            .collect();
        format!(
            "{{\"histogram\":{},\"requests\":{},\"statusCodes\":{{{}}},\"non2xx\":{},\"errors\":{},\"errorKinds\":{{{}}},\"dropped\":{},\"bytes\":{},\"elapsedMs\":{:.1},\"inFlightAtClose\":{},\"iterations\":{},\"cpuUs\":{},\"cpu\":{:.4},\"pid\":{},\"rssBytes\":{}}}",
            self.hist.to_json(),
            self.requests,
            codes.join(","),
            self.non2xx,
            self.errors,
            kinds.join(","),
            self.dropped,
            self.bytes,
            self.elapsed_ms,
            self.in_flight_at_close,
            self.iterations,
            self.cpu_us,
            self.cpu,
            std::process::id(),
            rss_bytes()
        )
    }
}

/// utime + stime of this process in µs (/proc, USER_HZ 100).
pub fn cpu_us() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (t(11) + t(12)) * 10_000
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0) * 1024
}

/// Exits when stdin closes: the parent (`eppkit bench`) went away, so stop loading the target.
pub fn exit_with_parent() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
}

/// When the k-th iteration of a constant arrival rate is due: `start + k / rate`, computed from
/// k (not by adding intervals), so rounding never accumulates into drift.
#[derive(Clone, Copy)]
pub struct ArrivalSchedule {
    start: Instant,
    interval_ns: f64,
}

impl ArrivalSchedule {
    pub fn new(start: Instant, rate: f64) -> ArrivalSchedule {
        ArrivalSchedule { start, interval_ns: 1e9 / rate.max(1e-9) }
    }
    pub fn at(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((k as f64 * self.interval_ns).round() as u64)
    }
}

struct State {
    tally: Tally,
    open: HashMap<u64, Instant>,
    seq: u64,
    started: u64,
    in_flight: usize,
    closed: bool,
    last_end: Option<Instant>,
}

/// Runs `fire` on the plan's schedule inside a LocalSet; only iterations whose (intended) start
/// falls in the window count, latency from the intended start (no coordinated omission).
pub async fn run(plan: Plan, fire: Fire) -> Tally {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let stop_at = measure_from + plan.duration;
    let max = plan.max_iterations.unwrap_or(u64::MAX);
    let st = Rc::new(RefCell::new(State { tally: Tally::default(), open: HashMap::new(), seq: 0, started: 0, in_flight: 0, closed: false, last_end: None }));
    let cpu_at = Rc::new(RefCell::new(None::<u64>));
    {
        let cpu_at = cpu_at.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            *cpu_at.borrow_mut() = Some(cpu_us());
        });
    }

    let account = {
        let st = st.clone();
        move |intended: Instant, o: Outcome| {
            let mut s = st.borrow_mut();
            s.tally.iterations += 1;
            if s.closed || intended < measure_from || intended >= stop_at {
                return;
            }
            let end = Instant::now();
            s.last_end = Some(s.last_end.map_or(end, |l| l.max(end)));
            match o {
                Outcome::Error(kind) => s.tally.error(&kind),
                Outcome::Answered { status, bytes, done_at } => {
                    s.tally.requests += 1;
                    s.tally.bytes += bytes;
                    if let Some(code) = status {
                        *s.tally.status_codes.entry(code).or_insert(0) += 1;
                        if !(200..=299).contains(&code) {
                            s.tally.non2xx += 1;
                        }
                    }
                    let us = done_at.unwrap_or(end).saturating_duration_since(intended).as_micros() as u64;
                    s.tally.hist.record_us(us);
                }
            }
        }
    };
    let account = Rc::new(account);
    // An iteration tracked until it ends, so one still open at window close is a timeout.
    let tracked = {
        let st = st.clone();
        let fire = fire.clone();
        let account = account.clone();
        move |intended: Instant| {
            let id = {
                let mut s = st.borrow_mut();
                s.started += 1;
                s.in_flight += 1;
                s.seq += 1;
                let id = s.seq;
                s.open.insert(id, intended);
                id
            };
            let fut = fire();
            let st = st.clone();
            let account = account.clone();
            async move {
                let o = fut.await;
                {
                    let mut s = st.borrow_mut();
                    s.in_flight -= 1;
                    s.open.remove(&id);
                }
                account(intended, o);
            }
        }
    };

    let mut tasks = Vec::new();
    match plan.executor {
        Executor::Burst => loop {
            if Instant::now() >= stop_at || st.borrow().started >= max {
                break;
            }
            let t = Instant::now();
            let n = (plan.slots as u64).min(max - st.borrow().started);
            st.borrow_mut().started += n;
            let burst: Vec<_> = (0..n)
                .map(|_| {
                    let f = fire();
                    let account = account.clone();
                    tokio::task::spawn_local(async move { account(t, f.await) })
                })
                .collect();
            for b in burst {
                let _ = b.await;
            }
            if t + BURST_INTERVAL >= stop_at {
                break;
            }
            tokio::time::sleep_until((t + BURST_INTERVAL).into()).await;
        },
        Executor::ConstantVus => {
            for _ in 0..plan.slots {
                let st = st.clone();
                let tracked = tracked.clone();
                tasks.push(tokio::task::spawn_local(async move {
                    loop {
                        {
                            let s = st.borrow();
                            if Instant::now() >= stop_at || s.closed || s.started >= max {
                                break;
                            }
                        }
                        tracked(Instant::now()).await;
                    }
                }));
            }
        }
        Executor::ConstantArrivalRate => {
            let schedule = ArrivalSchedule::new(start, plan.rate);
            // tokio's timer wakes once per ms; this one at each intended start (precise_timer.rs).
            let mut sleeper = ScheduleSleeper::new();
            let mut k = 0u64;
            'sched: loop {
                let now = Instant::now();
                loop {
                    let intended = schedule.at(k);
                    if intended >= stop_at || st.borrow().started >= max {
                        break 'sched;
                    }
                    if intended > now {
                        sleeper.sleep_until(intended).await;
                        break;
                    }
                    k += 1;
                    if st.borrow().in_flight >= plan.slots {
                        if intended >= measure_from {
                            st.borrow_mut().tally.dropped += 1;
                        }
                        continue;
                    }
                    tasks.push(tokio::task::spawn_local(tracked(intended)));
                }
            }
        }
    }
    // Wait for what is in flight, no longer than the window's end plus the grace.
    let grace = plan.timeout.min(Duration::from_secs(5));
    let close_at = stop_at + grace;
    for t in tasks {
        if tokio::time::timeout_at(close_at.into(), t).await.is_err() {
            break;
        }
    }
    let cpu_end = cpu_us();
    let mut s = st.borrow_mut();
    let open: Vec<Instant> = s.open.drain().map(|(_, v)| v).collect();
    for started in open {
        // Sent during the warm-up counts too: an iteration that blocked its slot through the
        // whole window is the plainest sign of a hang.
        if started < stop_at {
            s.tally.in_flight_at_close += 1;
            s.tally.error(IN_FLIGHT_AT_CLOSE);
        }
    }
    s.closed = true;
    let last = s.last_end.map(|e| e.saturating_duration_since(measure_from).as_secs_f64() * 1000.0).unwrap_or(0.0);
    let ended_early = s.started >= max && s.last_end.is_none_or(|e| e < stop_at);
    let elapsed = if ended_early { last } else { last.max(plan.duration.as_secs_f64() * 1000.0) };
    let mut tally = std::mem::take(&mut s.tally);
    tally.elapsed_ms = elapsed;
    let cpu0 = cpu_at.borrow().unwrap_or(cpu_end);
    tally.cpu_us = cpu_end.saturating_sub(cpu0);
    tally.cpu = if elapsed > 0.0 { tally.cpu_us as f64 / 1000.0 / elapsed } else { 0.0 };
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_schedule_is_exact_per_k_without_drift() {
        let t0 = Instant::now();
        let s = ArrivalSchedule::new(t0, 5000.0);
        for k in 0..10_000u64 {
            assert_eq!(s.at(k + 1) - s.at(k), Duration::from_micros(200));
        }
        assert_eq!(s.at(5_000_000) - t0, Duration::from_secs(1000));
        let s3 = ArrivalSchedule::new(t0, 3.0);
        assert_eq!(s3.at(3) - t0, Duration::from_secs(1));
    }

    /// The median gap between consecutive starts of one 300 ms run at 5,000/s (µs), and how many
    /// gaps were under 20 µs.
    fn median_start_gap_us() -> (u128, usize, usize) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        let starts: Rc<RefCell<Vec<Instant>>> = Rc::default();
        let fire: Fire = {
            let starts = starts.clone();
            Rc::new(move || {
                let now = Instant::now();
                starts.borrow_mut().push(now);
                Box::pin(async move { Outcome::Answered { status: None, bytes: 0, done_at: Some(now) } })
            })
        };
        let plan = Plan { executor: Executor::ConstantArrivalRate, slots: 1024, rate: 5000.0, warmup: Duration::ZERO, duration: Duration::from_millis(300), timeout: Duration::from_secs(1), max_iterations: None };
        let tally = local.block_on(&rt, run(plan, fire));
        let starts = starts.borrow();
        // Every intended start in the window either started or was dropped at the slot cap.
        assert_eq!(starts.len() as u64 + tally.dropped, 1500);
        assert_eq!(tally.requests as usize, starts.len());
        let mut gaps: Vec<u128> = starts.windows(2).map(|w| (w[1] - w[0]).as_micros()).collect();
        gaps.sort_unstable();
        (gaps[gaps.len() / 2], gaps.iter().filter(|&&g| g < 20).count(), gaps.len())
    }

    /// At 5,000/s, streams must leave one by one at their intended times, not in a burst per
    /// millisecond (tokio's timer wheel): with tokio's sleep ~4 of 5 consecutive starts were µs
    /// apart, in every run (median gap 0). A starved thread on a loaded machine also bunches
    /// starts (it wakes late), so the property is asserted on the best of three runs: the old
    /// schedule cannot pass any of them. No bound is put on lateness itself.
    #[test]
    fn constant_arrival_rate_starts_streams_one_by_one_not_per_millisecond() {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (median, bunched, n) = median_start_gap_us();
            if median >= 100 {
                return;
            }
            seen.push(format!("median gap {median} µs, {bunched} of {n} gaps under 20 µs"));
        }
        panic!("starts leave in bursts: {}", seen.join("; "));
    }
}
