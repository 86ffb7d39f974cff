//! Circuit breaker per tool. Closed, it watches a rolling window of call outcomes and opens
//! on a failure ratio (once the window holds a minimum of calls) or on a run of consecutive
//! failures. Open, it fast-fails until its open time has passed; then, half-open, it admits
//! a bounded number of probes: a success closes it, a failure opens it again. Only upstream
//! faults count as failures; a caller's bad request never trips it.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Settings of every tool's breaker.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Failure ratio over the window that opens it.
    pub failure_ratio: f64,
    /// Calls the window must hold before the ratio counts.
    pub min_calls: u32,
    /// Length of the rolling window.
    pub window: Duration,
    /// Time spent open before probing.
    pub open_for: Duration,
    /// Probes admitted at once when half-open.
    pub half_open_probes: u32,
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls flow.
    Closed,
    /// Probing.
    HalfOpen,
    /// Calls fast-fail.
    Open,
}

impl State {
    /// Gauge value of `gateway_breaker_state` (0 closed, 1 half-open, 2 open).
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }

    /// Name for status pages.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half_open",
            State::Open => "open",
        }
    }
}

/// How a call through the breaker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered.
    Success,
    /// The upstream failed (timeout, unreachable, 5xx, 429).
    Failure,
    /// Neither: the request itself was at fault; the breaker learns nothing.
    Ignored,
}

struct Inner {
    state: State,
    /// Outcomes in the window: (time, failed).
    window: VecDeque<(Instant, bool)>,
    /// Failures among them (kept in step, so a call costs O(1)).
    window_failures: usize,
    consecutive_failures: u32,
    opened_at: Instant,
    probes_in_flight: u32,
}

/// One tool's breaker.
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

/// Most outcomes kept in the window (older ones only dilute the ratio).
const MAX_WINDOW_ENTRIES: usize = 4096;

/// The breaker refused the call: open, or half-open with every probe slot taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Time until the breaker probes again (zero when half-open).
    pub retry_after: Duration,
}

/// An admitted call. Dropped without an outcome (the request was cancelled, e.g. its
/// client went away), it gives its half-open probe slot back, so the breaker cannot stay
/// stuck with every slot taken.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// True when this call is a half-open probe (the breaker was open and is trying again).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Reports how the call ended; returns the breaker's state after it.
    pub fn record(mut self, outcome: Outcome) -> State {
        self.recorded = true;
        self.breaker.record(self.probe, outcome)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.probe, Outcome::Ignored);
        }
    }
}

impl Breaker {
    /// Asks to make a call, as a [`Permit`] that must be given the call's outcome.
    pub fn enter(&self) -> Result<Permit<'_>, Rejected> {
        self.admit().map(|probe| Permit {
            breaker: self,
            probe,
            recorded: false,
        })
    }

    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner {
                state: State::Closed,
                window: VecDeque::new(),
                window_failures: 0,
                consecutive_failures: 0,
                opened_at: Instant::now(),
                probes_in_flight: 0,
            }),
        }
    }

    /// Current state (an open breaker whose time is up reports half-open).
    pub fn state(&self) -> State {
        let inner = self.inner.lock();
        match inner.state {
            State::Open if inner.opened_at.elapsed() >= self.settings.open_for => State::HalfOpen,
            other => other,
        }
    }

    /// Ends an open period now, so the next call probes (an operator's nudge after fixing
    /// an upstream; tests use it instead of waiting).
    pub fn end_open_period(&self) {
        let mut inner = self.inner.lock();
        if inner.state == State::Open {
            inner.state = State::HalfOpen;
            inner.probes_in_flight = 0;
        }
    }

    /// Asks to make a call. `Ok(probe)` admits it (`probe` is true for a half-open probe);
    /// the caller must then report the outcome with [`Breaker::record`].
    pub fn admit(&self) -> Result<bool, Rejected> {
        let mut inner = self.inner.lock();
        if inner.state == State::Open {
            let elapsed = inner.opened_at.elapsed();
            if elapsed < self.settings.open_for {
                return Err(Rejected {
                    retry_after: self.settings.open_for - elapsed,
                });
            }
            inner.state = State::HalfOpen;
            inner.probes_in_flight = 0;
        }
        if inner.state == State::HalfOpen {
            if inner.probes_in_flight >= self.settings.half_open_probes {
                return Err(Rejected {
                    retry_after: Duration::ZERO,
                });
            }
            inner.probes_in_flight += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reports how an admitted call ended. Returns the state after it.
    pub fn record(&self, probe: bool, outcome: Outcome) -> State {
        let mut inner = self.inner.lock();
        let now = Instant::now();
        if probe && inner.state == State::HalfOpen {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
            match outcome {
                Outcome::Success => close(&mut inner),
                Outcome::Failure => open(&mut inner, now),
                Outcome::Ignored => {}
            }
            return inner.state;
        }
        if inner.state != State::Closed || outcome == Outcome::Ignored {
            return inner.state;
        }
        let failed = outcome == Outcome::Failure;
        inner.window.push_back((now, failed));
        inner.window_failures += usize::from(failed);
        while inner.window.len() > MAX_WINDOW_ENTRIES
            || inner
                .window
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > self.settings.window)
        {
            if let Some((_, old_failed)) = inner.window.pop_front() {
                inner.window_failures -= usize::from(old_failed);
            }
        }
        inner.consecutive_failures = if failed {
            inner.consecutive_failures + 1
        } else {
            0
        };
        let calls = inner.window.len();
        let failures = inner.window_failures;
        let ratio_trips = calls >= self.settings.min_calls as usize
            && failures as f64 >= self.settings.failure_ratio * calls as f64;
        if failed
            && (inner.consecutive_failures >= self.settings.consecutive_failures || ratio_trips)
        {
            open(&mut inner, now);
        }
        inner.state
    }
}

fn open(inner: &mut Inner, now: Instant) {
    inner.state = State::Open;
    inner.opened_at = now;
    inner.probes_in_flight = 0;
}

fn close(inner: &mut Inner) {
    inner.state = State::Closed;
    inner.window.clear();
    inner.window_failures = 0;
    inner.consecutive_failures = 0;
    inner.probes_in_flight = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(open_for: Duration) -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            failure_ratio: 0.5,
            min_calls: 10,
            window: Duration::from_secs(60),
            open_for,
            half_open_probes: 1,
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_fast_fails() {
        let b = Breaker::new(settings(Duration::from_secs(60)));
        for _ in 0..3 {
            let probe = b.admit().unwrap();
            b.record(probe, Outcome::Failure);
        }
        assert_eq!(b.state(), State::Open);
        assert!(b.admit().is_err());
    }

    #[test]
    fn a_success_resets_the_run_of_failures() {
        let b = Breaker::new(settings(Duration::from_secs(60)));
        for outcome in [
            Outcome::Failure,
            Outcome::Failure,
            Outcome::Success,
            Outcome::Failure,
            Outcome::Failure,
        ] {
            b.record(false, outcome);
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn opens_on_the_failure_ratio_once_enough_calls() {
        let b = Breaker::new(settings(Duration::from_secs(60)));
        for i in 0..10 {
            let outcome = if i % 2 == 1 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            b.record(false, outcome);
        }
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn client_errors_never_trip_it() {
        let b = Breaker::new(settings(Duration::from_secs(60)));
        for _ in 0..100 {
            b.record(false, Outcome::Ignored);
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn half_open_admits_bounded_probes_and_closes_on_success() {
        let b = Breaker::new(settings(Duration::ZERO));
        for _ in 0..3 {
            b.record(false, Outcome::Failure);
        }
        assert_eq!(b.state(), State::HalfOpen);
        let probe = b.admit().unwrap();
        assert!(probe);
        assert!(b.admit().is_err(), "only one probe at a time");
        assert_eq!(b.record(probe, Outcome::Success), State::Closed);
        assert_eq!(b.admit(), Ok(false));
    }

    #[test]
    fn a_cancelled_probe_gives_its_slot_back() {
        let b = Breaker::new(settings(Duration::ZERO));
        for _ in 0..3 {
            b.record(false, Outcome::Failure);
        }
        let permit = b.enter().unwrap();
        assert!(b.enter().is_err(), "the probe slot is taken");
        drop(permit);
        assert_eq!(b.enter().unwrap().record(Outcome::Success), State::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let b = Breaker::new(settings(Duration::from_secs(60)));
        for _ in 0..3 {
            b.record(false, Outcome::Failure);
        }
        b.inner.lock().opened_at -= Duration::from_secs(61);
        let probe = b.admit().unwrap();
        assert_eq!(b.record(probe, Outcome::Failure), State::Open);
        assert!(b.admit().is_err());
    }
}
