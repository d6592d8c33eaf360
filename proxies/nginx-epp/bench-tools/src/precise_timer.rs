//! A sleep to an absolute instant, precise to the kernel's high-resolution timers (a few µs to a
//! few tens of µs late), for the constant-arrival-rate schedule. tokio's own timer wheel has 1 ms
//! slots: at 5,000 streams/s (200 µs apart) `tokio::time::sleep_until` woke the schedule once per
//! ms, so streams left in bursts of ~5, up to 1 ms after their intended start, and since latency
//! counts from the intended start even a do-nothing server showed a p50 above 1 ms.
//!
//! A timerfd armed at the absolute CLOCK_MONOTONIC time (the clock `Instant` reads on Linux) and
//! awaited through tokio's AsyncFd: the runtime's epoll wakes when it expires, no thread spins.
//! timerfd's hrtimer is started without slack, unlike nanosleep or an epoll timeout. The only
//! `unsafe` of the crate is here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

fn monotonic_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl PreciseTimer {
    /// Must be called inside a tokio runtime with IO enabled.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: plain syscall; the returned fd is checked, then owned (closed on drop).
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd moves into the AsyncFd, which keeps it open (same fd) until dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)?;
        Ok(PreciseTimer { fd })
    }

    /// Returns at `t` or just after (never before); at once when `t` has passed.
    pub async fn sleep_until(&mut self, t: Instant) -> io::Result<()> {
        let now = Instant::now();
        if t <= now {
            return Ok(());
        }
        // Instant and CLOCK_MONOTONIC are the same clock; the offset read between the two calls
        // is tens of ns. Round up so the timer never fires before `t`.
        let at = monotonic_now() + (t - now) + Duration::from_nanos(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: at.as_secs() as libc::time_t, tv_nsec: at.subsec_nanos() as libc::c_long },
        };
        // SAFETY: valid fd and itimerspec; re-arming also resets the expiration count.
        if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                let mut ticks = 0u64;
                // SAFETY: reads 8 bytes into a u64 the call owns.
                let n = unsafe { libc::read(fd.as_raw_fd(), (&mut ticks as *mut u64).cast(), 8) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                // Stale readiness (an earlier arming that expired unread): wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

/// Sleeps with a PreciseTimer when the system has timerfd, else with tokio's 1 ms timer.
pub struct ScheduleSleeper {
    timer: Option<PreciseTimer>,
}

impl ScheduleSleeper {
    pub fn new() -> ScheduleSleeper {
        ScheduleSleeper { timer: PreciseTimer::new().ok() }
    }
    pub fn is_precise(&self) -> bool {
        self.timer.is_some()
    }
    pub async fn sleep_until(&mut self, t: Instant) {
        if let Some(timer) = self.timer.as_mut() {
            if timer.sleep_until(t).await.is_ok() {
                return;
            }
            self.timer = None;
        }
        tokio::time::sleep_until(t.into()).await;
    }
}

impl Default for ScheduleSleeper {
    fn default() -> Self {
        ScheduleSleeper::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn never_wakes_before_the_instant_and_returns_at_once_for_a_past_one() {
        rt().block_on(async {
            let mut t = PreciseTimer::new().unwrap();
            for i in 0..50u64 {
                let at = Instant::now() + Duration::from_micros(37 * (i % 7) + 1);
                t.sleep_until(at).await.unwrap();
                assert!(Instant::now() >= at);
            }
            // An instant already passed does not wait for anything (it would hang without a
            // re-arm if the timer were armed in the past and never read).
            t.sleep_until(Instant::now() - Duration::from_millis(1)).await.unwrap();
        });
    }

    #[test]
    fn a_dropped_sleep_does_not_make_the_next_one_early() {
        rt().block_on(async {
            let mut t = PreciseTimer::new().unwrap();
            // Armed, then abandoned; it expires unread and leaves the fd readable.
            let _ = tokio::time::timeout(Duration::from_micros(1), t.sleep_until(Instant::now() + Duration::from_micros(100))).await;
            std::thread::sleep(Duration::from_millis(2));
            let at = Instant::now() + Duration::from_millis(3);
            t.sleep_until(at).await.unwrap();
            assert!(Instant::now() >= at);
        });
    }
}
