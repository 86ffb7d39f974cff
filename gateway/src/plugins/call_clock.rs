//! A call's time budget, counted in CPU time of the thread running it rather than wall
//! time, so that a plugin call descheduled by a busy machine is not mistaken for a plugin
//! that runs too long. The epoch ticker notices a call once its wall time reaches the
//! budget; [`CallClock::within_budget`] then decides from the CPU time it really used.
//!
//! Reading a thread's CPU time is a system call (about 1 µs on these VMs, more than half of
//! the host's whole cost of a call into a live plugin instance), so a call's start reuses the
//! thread's last reading when it is under [`CPU_READING_REUSE`] old: the reading is then a
//! lower bound of the start, and a call is judged on at most that much more CPU time than it
//! used.

use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Wall time after which a call is stopped whatever its CPU time (a call that waits this
/// long is stuck, not slow).
const WALL_TIME_FACTOR: u32 = 20;

/// Wall time after which a call with `budget` is stopped whatever its CPU time: waiting in
/// guest code ([`CallClock::within_budget`]) or in the host ([`super::host_wait`]).
pub fn wall_limit(budget: Duration) -> Duration {
    budget.saturating_mul(WALL_TIME_FACTOR)
}

/// How old a thread's last CPU-time reading may be for a call's start to reuse it.
const CPU_READING_REUSE: Duration = Duration::from_millis(1);

thread_local! {
    /// This thread's last CPU-time reading and when it was taken.
    static LAST_CPU_READING: std::cell::Cell<Option<(Instant, Duration)>> =
        const { std::cell::Cell::new(None) };
}

/// The thread's CPU time at `now`, or a reading taken at most [`CPU_READING_REUSE`] earlier.
fn thread_cpu_time_near(now: Instant) -> Option<Duration> {
    if let Some((at, cpu)) = LAST_CPU_READING.get() {
        if now.saturating_duration_since(at) < CPU_READING_REUSE {
            return Some(cpu);
        }
    }
    let cpu = thread_cpu_time()?;
    LAST_CPU_READING.set(Some((now, cpu)));
    Some(cpu)
}

/// A thread and its CPU time at some moment.
type Reading = (ThreadId, Duration);

/// When the current call started, the CPU time it has used, and its budget.
///
/// A long call yields to the executor at every epoch tick (so that it never holds a
/// request-serving thread for more than a tick at a time), and may resume on another
/// thread, after other tasks ran on it. Its CPU time is therefore added up per stretch of
/// running: from its start or its last resumption ([`CallClock::yield_now`] takes a reading
/// there) to the next check, on the thread it ran on.
#[derive(Debug, Clone)]
pub struct CallClock {
    started: Instant,
    /// Where the current stretch began: the start, or the last check.
    stretch_start: Option<Reading>,
    /// Where the call last resumed after a yield; shared with the yield's future, which
    /// writes it when the call resumes. Made at the first yield.
    resumed: Option<Arc<Mutex<Option<Reading>>>>,
    used: Duration,
    budget: Duration,
}

impl CallClock {
    /// Starts timing a call with `budget`.
    pub fn start(budget: Duration) -> Self {
        let started = Instant::now();
        Self {
            started,
            stretch_start: thread_cpu_time_near(started).map(|t| (std::thread::current().id(), t)),
            resumed: None,
            used: Duration::ZERO,
            budget,
        }
    }

    /// True while the call has used less CPU time than its budget (and has not waited
    /// absurdly long). Without a CPU clock (other systems), wall time decides.
    pub fn within_budget(&mut self) -> bool {
        let wall = self.started.elapsed();
        if wall >= wall_limit(self.budget) {
            return false;
        }
        let Some(now) = thread_cpu_time() else {
            return wall < self.budget;
        };
        let here = std::thread::current().id();
        let resumed = self.resumed.as_ref().and_then(|mark| mark.lock().take());
        if let Some((thread, before)) = resumed.or(self.stretch_start) {
            if thread == here {
                self.used += now.saturating_sub(before);
            }
        }
        self.stretch_start = Some((here, now));
        LAST_CPU_READING.set(Some((Instant::now(), now)));
        self.used < self.budget
    }

    /// A future that yields to the executor once, then notes where the call resumes, so
    /// that what other tasks ran meanwhile is not charged to the call.
    pub fn yield_now(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mark = Arc::clone(self.resumed.get_or_insert_with(Default::default));
        async move {
            tokio::task::yield_now().await;
            *mark.lock() = thread_cpu_time().map(|t| (std::thread::current().id(), t));
        }
    }
}

/// CPU time used by the calling thread so far.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// CPU time is not read on other systems: wall time decides.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_call_stays_within_budget_and_a_busy_one_does_not() {
        let budget = Duration::from_millis(50);
        let mut clock = CallClock::start(budget);
        // Waiting uses no CPU time.
        std::thread::sleep(Duration::from_millis(60));
        assert!(clock.within_budget());
        // Burning CPU does: spin until this thread has used twice the budget.
        let before = thread_cpu_time().unwrap();
        let mut x = 0u64;
        while thread_cpu_time().unwrap() - before < budget * 2 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(!clock.within_budget());
    }

    fn burn(ms: u64) {
        let before = thread_cpu_time().unwrap();
        let mut x = 0u64;
        while thread_cpu_time().unwrap() - before < Duration::from_millis(ms) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[tokio::test]
    async fn cpu_time_adds_up_over_stretches_and_others_work_between_them_is_not_charged() {
        let budget = Duration::from_millis(30);
        let mut clock = CallClock::start(budget);
        burn(20);
        assert!(clock.within_budget());
        let resumed = clock.yield_now();
        // What runs on this thread between the yield and the resumption is another task's.
        burn(40);
        resumed.await;
        assert!(
            clock.within_budget(),
            "another task's time was charged to the call"
        );
        burn(20);
        assert!(
            !clock.within_budget(),
            "20 + 20 ms of its own is over a 30 ms budget"
        );
    }

    #[test]
    fn a_stretch_that_moved_threads_unannounced_is_not_charged() {
        let mut clock = CallClock::start(Duration::from_millis(30));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    burn(40);
                    assert!(clock.within_budget());
                    burn(40);
                    assert!(!clock.within_budget());
                })
                .join()
                .unwrap();
        });
    }

    #[test]
    fn a_start_reuses_a_recent_reading_and_refreshes_an_old_one() {
        let now = Instant::now();
        let first = thread_cpu_time_near(now).unwrap();
        // Within the reuse window the same reading comes back: no system call.
        assert_eq!(
            thread_cpu_time_near(now + CPU_READING_REUSE / 2),
            Some(first)
        );
        // Past it, a fresh one (this thread has run since, so it is not smaller).
        let before = thread_cpu_time().unwrap();
        let mut x = 0u64;
        while thread_cpu_time().unwrap() - before < Duration::from_millis(2) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let fresh = thread_cpu_time_near(now + CPU_READING_REUSE * 2).unwrap();
        assert!(fresh > first, "{fresh:?} after {first:?}");
    }
}
