//! A binding's shadow candidate: a second policy judged on a share of live calls, off the
//! response path (a task of its own, after the live answer is known), with the live
//! binding's configuration and read-only counters. It never delays, changes or fails an
//! answer; whether it agrees is counted in `gateway_plugin_shadow_evaluations_total`. Every
//! shadow call of the process draws on one [`ShadowBudget`] (slots and CPU time), so that
//! a hostile candidate cannot take the live calls' CPU.

use super::super::{CallLimits, Invoker, Plugin};
use crate::metrics::Metrics;
use parking_lot::Mutex;
use prometheus::IntCounter;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest a shadow call may run (CPU), whatever its binding allows: a candidate is judged
/// on typical calls, and one that needs more is reported as failing (`error`), not given
/// the live workers' time.
pub const SHADOW_TIMEOUT: Duration = Duration::from_millis(2);
/// Most shadow calls running at once in this process, every binding together.
pub const SHADOW_CALLS_AT_ONCE: usize = 2;
/// The share of one CPU the shadow calls of this process may use, as time per second of
/// wall time: 50 ms a second is 5 % of one core (2.5 % of a 2-core machine).
pub const SHADOW_BUDGET_PER_SECOND: Duration = Duration::from_millis(50);

/// A candidate and the share of calls it judges.
pub struct Shadow {
    /// The candidate, with the live binding's memory cap and [`SHADOW_TIMEOUT`] at most.
    pub invoker: Invoker,
    /// Percent of calls judged, 0–100.
    percent: f64,
    /// Its binding's series of `gateway_plugin_shadow_evaluations_total`, looked up once
    /// (a look-up by label hashes the labels and locks the family, on every sampled call).
    series: OnceLock<ShadowSeries>,
}

/// The outcomes of a binding's shadow calls, as counters.
#[derive(Clone)]
pub(super) struct ShadowSeries {
    pub(super) agree: IntCounter,
    pub(super) disagree: IntCounter,
    pub(super) error: IntCounter,
    pub(super) skipped: IntCounter,
}

impl Shadow {
    /// A candidate judging `percent` of the calls.
    pub fn new(plugin: Arc<Plugin>, limits: CallLimits, percent: f64) -> Self {
        let limits = CallLimits {
            timeout: limits.timeout.min(SHADOW_TIMEOUT),
            ..limits
        };
        Self {
            invoker: Invoker::new(plugin, limits, true, super::MAX_IDLE_INSTANCES),
            percent: percent.clamp(0.0, 100.0),
            series: OnceLock::new(),
        }
    }

    /// The outcome counters of the shadow of `binding`.
    pub(super) fn series(&self, metrics: &Metrics, binding: &str) -> &ShadowSeries {
        self.series.get_or_init(|| {
            let outcome = |label: &str| {
                metrics
                    .plugin_shadow_evaluations
                    .with_label_values(&[binding, label])
            };
            ShadowSeries {
                agree: outcome("agree"),
                disagree: outcome("disagree"),
                error: outcome("error"),
                skipped: outcome("skipped"),
            }
        })
    }

    /// Percent of calls judged.
    pub fn percent(&self) -> f64 {
        self.percent
    }

    /// Whether the call with `seed` is judged (from its seed: the same call, the same
    /// answer).
    pub fn samples(&self, seed: u64) -> bool {
        sampled(self.percent, seed)
    }
}

/// What every shadow call of the process shares, so that candidates, however hostile
/// (looping, trapping, growing memory), cost live traffic a bounded share of the CPU: at
/// most [`SHADOW_CALLS_AT_ONCE`] calls at once, and [`SHADOW_BUDGET_PER_SECOND`] of their
/// time (each call is charged the time it took, waits included) in a token bucket holding
/// at most one second's worth. A sampled call that finds no slot or no budget is skipped,
/// never queued.
pub struct ShadowBudget {
    running: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Time left to spend, µs (negative: overspent by the last calls).
    available_us: i64,
    refilled_at: Instant,
}

impl Default for ShadowBudget {
    fn default() -> Self {
        Self {
            running: Arc::new(Semaphore::new(SHADOW_CALLS_AT_ONCE)),
            bucket: Mutex::new(Bucket {
                available_us: SHADOW_BUDGET_PER_SECOND.as_micros() as i64,
                refilled_at: Instant::now(),
            }),
        }
    }
}

impl ShadowBudget {
    /// A slot for one shadow call, when one is free and time is left; `None`: skip it.
    pub fn try_start(&self) -> Option<OwnedSemaphorePermit> {
        if !self.has_time(Instant::now()) {
            return None;
        }
        Arc::clone(&self.running).try_acquire_owned().ok()
    }

    /// Charges a finished shadow call's time.
    pub fn charge(&self, spent: Duration) {
        self.bucket.lock().available_us -= spent.as_micros().min(i64::MAX as u128) as i64;
    }

    fn has_time(&self, now: Instant) -> bool {
        let mut bucket = self.bucket.lock();
        let per_second = SHADOW_BUDGET_PER_SECOND.as_micros() as i64;
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        let earned = (elapsed.as_micros() as i64).saturating_mul(per_second) / 1_000_000;
        if earned > 0 {
            bucket.available_us = bucket.available_us.saturating_add(earned).min(per_second);
            bucket.refilled_at = now;
        }
        bucket.available_us > 0
    }
}

/// Whether `percent` of calls takes in the one with `seed`.
fn sampled(percent: f64, seed: u64) -> bool {
    ((seed % 10_000) as f64) < percent * 100.0
}

/// What a policy said of a call, as the shadow comparison sees it: allow (with or without a
/// filter), a denial's code, or no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Denied with this code.
    Deny(String),
    /// Failed to answer.
    Failed,
}

impl Verdict {
    /// As stored: `allow`, `deny` or `error`, and a denial's code.
    pub fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Verdict::Allow => ("allow", None),
            Verdict::Deny(code) => ("deny", Some(code.clone())),
            Verdict::Failed => ("error", None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_runs_out_and_refills_with_time() {
        let budget = ShadowBudget::default();
        let first = budget
            .try_start()
            .expect("a fresh budget has time and slots");
        let second = budget.try_start().expect("two slots");
        assert!(budget.try_start().is_none(), "no third slot");
        drop((first, second));
        budget.charge(SHADOW_BUDGET_PER_SECOND * 2);
        assert!(budget.try_start().is_none(), "overspent: skipped");
        let later = Instant::now() + Duration::from_secs(3);
        assert!(budget.has_time(later), "refilled after a few seconds");
    }

    #[test]
    fn a_share_of_seeds_is_sampled() {
        let taken = |percent: f64| (0..10_000u64).filter(|s| sampled(percent, *s)).count();
        assert_eq!(taken(10.0), 1_000);
        assert_eq!(taken(0.0), 0);
        assert_eq!(taken(100.0), 10_000);
        assert_eq!(taken(0.5), 50);
    }
}
