//! A binding's shadow candidate: a second policy judged on a share of live calls, off the
//! response path (a task of its own, after the live answer is known), with the live
//! binding's configuration and read-only counters. It never delays, changes or fails an
//! answer; whether it agrees is counted in `gateway_plugin_shadow_evaluations_total`.

use super::super::plugin::{CallLimits, Invoker, Plugin};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Most shadow calls of one binding running at once; a sampled call past them is skipped
/// (counted as `skipped`), so a slow candidate cannot pile up work.
const SHADOW_CALLS_AT_ONCE: usize = 32;

/// A candidate and the share of calls it judges.
pub struct Shadow {
    /// The candidate, with the live binding's limits.
    pub invoker: Invoker,
    /// Percent of calls judged, 0–100.
    percent: f64,
    /// Its calls running now.
    pub(super) running: Arc<Semaphore>,
}

impl Shadow {
    /// A candidate judging `percent` of the calls.
    pub fn new(plugin: Arc<Plugin>, limits: CallLimits, percent: f64) -> Self {
        Self {
            invoker: Invoker::new(plugin, limits, true, super::MAX_IDLE_INSTANCES),
            percent: percent.clamp(0.0, 100.0),
            running: Arc::new(Semaphore::new(SHADOW_CALLS_AT_ONCE)),
        }
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
    fn a_share_of_seeds_is_sampled() {
        let taken = |percent: f64| (0..10_000u64).filter(|s| sampled(percent, *s)).count();
        assert_eq!(taken(10.0), 1_000);
        assert_eq!(taken(0.0), 0);
        assert_eq!(taken(100.0), 10_000);
        assert_eq!(taken(0.5), 50);
    }
}
