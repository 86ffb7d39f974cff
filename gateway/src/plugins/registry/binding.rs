//! A plugin bound to tools and roles ([`Binding`], with its limits, configuration, failure
//! mode, call slots and metric series) and one generation of them ([`PluginSet`]).

use super::super::call_slots::CallSlots;
use super::super::manifest::{BindingSpec, ConfigSource, FailMode};
use super::super::plugin_config::PluginConfig;
use super::super::{Invoker, Plugin, World};
use super::outcomes::ReloadError;
use super::MAX_IDLE_INSTANCES;
use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, OnceLock};

/// Where a binding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `plugins.toml` and a file in the plugin directory.
    File,
    /// The admin API (stored in the database), with its version.
    Upload(i64),
}

/// A plugin bound to tools and roles.
pub struct Binding {
    /// Binding name.
    pub name: String,
    /// The name as handed to each call's context (shared, not re-allocated per call).
    pub(super) label: Arc<str>,
    /// Its metric series, resolved on first use.
    pub(super) series: OnceLock<BindingSeries>,
    /// Where it comes from.
    pub source: Source,
    /// Its `plugins.toml` entry.
    pub spec: BindingSpec,
    /// The plugin, with this binding's limits.
    pub invoker: Invoker,
    /// Static configuration: one JSON document.
    pub config: PluginConfig,
    /// What a failure does.
    pub fail: FailMode,
    /// Its calls running now (at most `CALLS_AT_ONCE`).
    pub(super) slots: CallSlots,
    /// Its failures, kept across reloads that keep the same component in it.
    pub(super) health: Arc<Health>,
    /// The candidate judged beside it on a share of live calls, if any.
    pub shadow: Option<super::Shadow>,
    /// The version its signature vouched for, when one did.
    pub signed_version: Option<String>,
}

impl Binding {
    /// The configuration of one call: the dynamic source the binding names, else its static
    /// configuration.
    pub(super) fn config(
        &self,
        policies: Option<&PluginConfig>,
        chaos_rules: Option<&PluginConfig>,
    ) -> PluginConfig {
        let dynamic = match self.spec.config_from {
            Some(ConfigSource::Policies) => {
                Some(policies.cloned().unwrap_or_else(PluginConfig::none))
            }
            Some(ConfigSource::ChaosRules) => chaos_rules.cloned(),
            None => None,
        };
        dynamic.unwrap_or_else(|| self.config.clone())
    }

    /// Binds `plugin` as `spec` says: checks the declared world and applies the defaults
    /// (policies fail closed, chaos fails open; stateless plugins' instances are reused).
    pub(super) fn new(
        spec: BindingSpec,
        plugin: Arc<Plugin>,
        source: Source,
    ) -> Result<Self, ReloadError> {
        if let Some(pinned) = &spec.sha256 {
            if !pinned.eq_ignore_ascii_case(&plugin.sha256) {
                return Err(ReloadError::Pinned {
                    binding: spec.name(),
                    pinned: pinned.clone(),
                    actual: plugin.sha256.clone(),
                });
            }
        }
        if let Some(expected) = spec.world {
            if expected != plugin.world {
                return Err(ReloadError::WorldMismatch {
                    binding: spec.name(),
                    expected: expected.as_str(),
                    actual: plugin.world.as_str(),
                });
            }
        }
        let fail = spec.fail_mode(plugin.world);
        Ok(Self {
            name: spec.name(),
            label: Arc::from(spec.name()),
            series: OnceLock::new(),
            source,
            config: PluginConfig::single(&spec.config_json()),
            invoker: Invoker::new(
                plugin,
                spec.limits(),
                spec.reuse.unwrap_or(true),
                MAX_IDLE_INSTANCES,
            ),
            fail,
            spec,
            slots: CallSlots::default(),
            health: Arc::default(),
            shadow: None,
            signed_version: None,
        })
    }

    /// The plugin's world.
    pub fn world(&self) -> World {
        self.invoker.plugin.world
    }
}

/// What the quarantine rule reads of a binding: kept by a reload that binds the same
/// component under the same name and source, so that a reload in the middle of a streak
/// (the change feed's, another upload's) neither forgets it nor quarantines twice.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// Calls that failed in a row (overload aside); a success resets it.
    pub(super) failures_in_a_row: AtomicU32,
    /// The agents and the start of the current streak of failures (read on failures only).
    pub(super) streak: Mutex<FailureStreak>,
    /// Set once this uploaded version has been quarantined.
    pub(super) quarantined: AtomicBool,
}

impl Binding {
    /// Takes over the health of `previous` when it is the same component bound under the
    /// same name from the same source.
    pub(super) fn keep_health_of(&mut self, previous: &PluginSet) {
        if let Some(before) = previous.binding(&self.name) {
            if before.source == self.source
                && before.invoker.plugin.sha256 == self.invoker.plugin.sha256
            {
                self.health = Arc::clone(&before.health);
            }
        }
    }
}

/// A streak of failed calls of one binding: when it started and which agents' calls failed
/// in it (at most [`super::QUARANTINE_DISTINCT_AGENTS`] are remembered: that many is all the
/// rule asks).
#[derive(Debug, Default)]
pub(super) struct FailureStreak {
    started_ms: i64,
    agents: Vec<String>,
}

impl FailureStreak {
    /// Notes a failure of `agent` at `now_ms`, the `in_a_row`-th without an answer between;
    /// true when the streak now meets the quarantine rule: [`super::QUARANTINE_AFTER_FAILURES`]
    /// failures in a row from [`super::QUARANTINE_DISTINCT_AGENTS`] agents within
    /// [`super::QUARANTINE_WINDOW_MS`].
    pub(super) fn fails(&mut self, agent: &str, in_a_row: u32, now_ms: i64) -> bool {
        if in_a_row == 1 || now_ms - self.started_ms > super::QUARANTINE_WINDOW_MS {
            self.started_ms = now_ms;
            self.agents.clear();
        }
        if self.agents.len() < super::QUARANTINE_DISTINCT_AGENTS
            && !self.agents.iter().any(|a| a == agent)
        {
            self.agents.push(agent.to_string());
        }
        in_a_row >= super::QUARANTINE_AFTER_FAILURES
            && self.agents.len() >= super::QUARANTINE_DISTINCT_AGENTS
    }
}

/// A binding's metric series, looked up once rather than by label on every call (a look-up
/// hashes the labels and takes the family's lock).
pub(super) struct BindingSeries {
    pub(super) duration: prometheus::Histogram,
    pub(super) allow: prometheus::IntCounter,
    pub(super) deny: prometheus::IntCounter,
    pub(super) none: prometheus::IntCounter,
    pub(super) fault: prometheus::IntCounter,
    pub(super) filtered: prometheus::IntCounter,
    pub(super) failure: prometheus::IntCounter,
}

impl BindingSeries {
    pub(super) fn new(metrics: &Metrics, name: &str) -> Self {
        let outcome = |label: &str| metrics.plugin_evaluations.with_label_values(&[name, label]);
        Self {
            duration: metrics.plugin_duration.with_label_values(&[name]),
            allow: outcome("allow"),
            deny: outcome("deny"),
            none: outcome("none"),
            fault: outcome("fault"),
            filtered: outcome("filtered"),
            failure: outcome("failure"),
        }
    }
}

/// One generation of loaded bindings.
pub struct PluginSet {
    /// Bindings in manifest order.
    pub bindings: Vec<Arc<Binding>>,
    /// When this set went live.
    pub loaded_at: DateTime<Utc>,
    /// Stored versions this instance could not load into it, and what it serves instead.
    pub skipped: Vec<super::SkippedUpload>,
}

impl PluginSet {
    pub(super) fn empty() -> Self {
        Self {
            bindings: Vec::new(),
            loaded_at: Utc::now(),
            skipped: Vec::new(),
        }
    }

    /// The binding named `name`, if the set has one.
    pub fn binding(&self, name: &str) -> Option<&Arc<Binding>> {
        self.bindings.iter().find(|b| b.name == name)
    }

    /// Bindings of `world` that apply to `tool` and `role`, in manifest order.
    pub fn applicable<'a>(
        &'a self,
        world: World,
        tool: &'a str,
        role: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Binding>> + 'a {
        self.bindings
            .iter()
            .filter(move |b| b.world() == world && b.spec.applies_to(tool, role))
    }

    /// [`PluginSet::applicable`] with each binding's index in the set.
    pub fn applicable_indexed<'a>(
        &'a self,
        world: World,
        tool: &'a str,
        role: &'a str,
    ) -> impl Iterator<Item = (usize, &'a Arc<Binding>)> + 'a {
        self.bindings
            .iter()
            .enumerate()
            .filter(move |(_, b)| b.world() == world && b.spec.applies_to(tool, role))
    }

    /// True when a binding of `world` applies to `tool` and `role`.
    pub fn binds(&self, world: World, tool: &str, role: &str) -> bool {
        self.applicable(world, tool, role).next().is_some()
    }

    /// The tools no policy binding covers, for any role.
    pub fn tools_without_policy(&self) -> Vec<crate::catalog::ToolName> {
        crate::catalog::ToolName::ALL
            .into_iter()
            .filter(|tool| {
                !self.bindings.iter().any(|b| {
                    b.world() == World::Policy
                        && b.spec.tools.iter().any(|t| t == "*" || t == tool.as_str())
                })
            })
            .collect()
    }

    /// True when some applicable policy takes its configuration from stored policies.
    pub fn needs_policy_config(&self, tool: &str, role: &str) -> bool {
        self.applicable(World::Policy, tool, role)
            .any(|b| b.spec.config_from == Some(ConfigSource::Policies))
    }
}

#[cfg(test)]
mod tests {
    use super::FailureStreak;

    #[test]
    fn one_agent_never_completes_a_streak() {
        let mut streak = FailureStreak::default();
        assert!(!(1..=50).any(|n| streak.fails("rogue", n, 1_000 + i64::from(n))));
    }

    #[test]
    fn a_streak_needs_three_agents_five_failures_and_one_minute() {
        let mut streak = FailureStreak::default();
        let agents = ["a", "b", "c", "a", "b"];
        let met: Vec<bool> = (1..=5)
            .map(|n| streak.fails(agents[n as usize - 1], n, 1_000))
            .collect();
        assert_eq!(met, [false, false, false, false, true]);

        // The same failures spread over more than the window start over.
        let mut streak = FailureStreak::default();
        let at = |n: u32| i64::from(n) * 20_000;
        let met = (1..=5).any(|n| streak.fails(agents[n as usize - 1], n, at(n)));
        assert!(
            !met,
            "failures 20 s apart never gather three agents in a minute"
        );

        // An answer between them (the count in a row starts at 1 again) resets the agents.
        let mut streak = FailureStreak::default();
        assert!(!streak.fails("a", 1, 0));
        assert!(!streak.fails("b", 2, 0));
        assert!(!streak.fails("c", 1, 0));
        assert!(!streak.fails("c", 5, 0), "only c and earlier-reset agents");
    }
}
