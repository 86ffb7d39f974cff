//! One chaos rule as the admin API takes it and the `chaos` plugin reads it: a fault mode,
//! the share of calls it hits and its delay bounds, with the check every rule passes.

use serde::{Deserialize, Serialize};

/// Longest delay a rule may ask for, ms.
const MAX_DELAY_MS: u32 = 60_000;

/// One rule, as the plugin reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChaosRule {
    /// `timeout`, `500`, `jitter` or `mock503`.
    pub mode: String,
    /// Share of calls hit, 0–100.
    pub pct: f64,
    /// Shortest delay, ms.
    pub min_ms: u32,
    /// Longest delay, ms.
    pub max_ms: u32,
}

impl ChaosRule {
    /// The original gateway's `FF_CHAOS=on` rule: 20 % of calls held 300–1500 ms, then 503.
    pub fn feature_flag_default() -> Self {
        Self {
            mode: "mock503".into(),
            pct: 20.0,
            min_ms: 300,
            max_ms: 1500,
        }
    }

    /// Checks the rule; returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.mode.as_str(), "timeout" | "500" | "jitter" | "mock503") {
            return Err("mode must be one of timeout, 500, jitter, mock503".into());
        }
        if !(0.0..=100.0).contains(&self.pct) {
            return Err("pct must be between 0 and 100".into());
        }
        if self.min_ms > self.max_ms || self.max_ms > MAX_DELAY_MS {
            return Err("min_ms must not exceed max_ms, and max_ms at most 60000".into());
        }
        Ok(())
    }
}
