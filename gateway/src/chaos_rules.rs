//! The chaos rules that the `chaos` plugin applies, changed at runtime through the admin API
//! (and seeded by `FF_CHAOS=on`). Stored in the database (shared by every instance, kept
//! across restarts) and held in memory as the JSON configuration the plugin reads, reloaded
//! from the change feed.

use crate::plugins::plugin_config::PluginConfig;
use crate::store::{Store, StoreError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest delay a rule may ask for, ms.
const MAX_DELAY_MS: u32 = 60_000;

/// One rule, as the plugin reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// The rules by tool (`"*"` for every tool), as last loaded from the database.
#[derive(Default)]
pub struct ChaosRules {
    rules: Mutex<BTreeMap<String, ChaosRule>>,
    config: Mutex<Option<PluginConfig>>,
    /// A local change's reload and the change feed's take turns.
    loading: crate::refresh::Turns,
}

impl ChaosRules {
    /// Writes the `FF_CHAOS=on` rule for every tool, unless a `*` rule is already stored.
    pub async fn seed_feature_flag(store: &Store) -> Result<(), StoreError> {
        store
            .put_chaos_rule("*", &ChaosRule::feature_flag_default(), true)
            .await
    }

    /// Reloads the rules from the database.
    pub async fn load(&self, store: &Store) -> Result<(), StoreError> {
        let _turn = self.loading.take().await;
        let stored: BTreeMap<String, ChaosRule> = store.chaos_rules().await?.into_iter().collect();
        let mut rules = self.rules.lock();
        if *rules != stored || self.config.lock().is_none() {
            *rules = stored;
            self.publish(&rules);
        }
        Ok(())
    }

    /// The rules now, as `[[tool, rule], …]` (the original's `activeChaos` shape).
    pub fn active(&self) -> Vec<(String, ChaosRule)> {
        self.rules
            .lock()
            .iter()
            .map(|(t, r)| (t.clone(), r.clone()))
            .collect()
    }

    /// True when no rule is set (chaos is off).
    pub fn is_empty(&self) -> bool {
        self.rules.lock().is_empty()
    }

    /// The plugin configuration for the current rules.
    pub fn config(&self) -> PluginConfig {
        self.config
            .lock()
            .clone()
            .unwrap_or_else(|| PluginConfig::single(r#"{"rules":{}}"#))
    }

    fn publish(&self, rules: &BTreeMap<String, ChaosRule>) {
        let json = serde_json::json!({ "rules": rules }).to_string();
        *self.config.lock() = Some(PluginConfig::single(&json));
    }
}
