//! The chaos rules that the `chaos` plugin applies, changed at runtime through the admin API
//! (and seeded by `FF_CHAOS=on`). Stored in the database (shared by every instance, kept
//! across restarts) and held in memory as the JSON configuration the plugin reads, reloaded
//! from the change feed.

use crate::plugins::plugin_config::PluginConfig;
use crate::store::{Store, StoreError};
use parking_lot::Mutex;
use std::collections::BTreeMap;

use gateway_wire::ChaosRule;

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
