//! A load scenario as its TOML file describes it (`bench/scenarios/*.toml`): the arrival-rate
//! stages, the agents to set up, the weighted flows of each iteration, the probes, the chaos
//! window and the settings of the gateway the bench starts itself. Checked on load, so a typo
//! in a file is an error with its path, never a silent default.

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in the report folder's name.
    pub name: String,
    /// One line on what the scenario reproduces.
    #[serde(default)]
    pub description: String,
    /// Arrival rate over time.
    pub load: Load,
    /// Settings of the gateway that `bench load` starts when no `--target` is given.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// Agents (and their tokens) created through the API before the load starts.
    pub agents: Vec<AgentSpec>,
    /// The iteration kinds, one chosen per iteration by weight.
    pub flows: Vec<Flow>,
    /// Steps tried after the chosen flow in every iteration, each with its own probability.
    #[serde(default)]
    pub probes: Vec<Step>,
    /// A window during which chaos rules are on (set and cleared through the admin API).
    #[serde(default)]
    pub chaos: Option<ChaosWindow>,
}

/// Arrival rate: `start_rate` iterations/s, then linear stages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Iterations per second at t = 0.
    pub start_rate: f64,
    /// Each stage moves the rate linearly to `target` over `duration`.
    pub stages: Vec<Stage>,
    /// Client timeout of one request.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
}

/// One stage of the arrival rate.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Length of the stage.
    #[serde(with = "human_duration")]
    pub duration: Duration,
    /// Iterations per second at the end of the stage.
    pub target: f64,
}

/// Gateway settings for the gateway the bench starts itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Requests per minute per agent (0 = off).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_agent: u32,
    /// Requests per minute per agent and tool (0 = off).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_agent_tool: u32,
    /// How long an open breaker fast-fails (`CB_OPEN_MS`); scaled by `--time-scale`.
    #[serde(default, with = "human_duration_opt")]
    pub breaker_open: Option<Duration>,
    /// The breaker's rolling window (`CB_WINDOW_MS`); scaled by `--time-scale`.
    #[serde(default, with = "human_duration_opt")]
    pub breaker_window: Option<Duration>,
}

fn default_rate_limit() -> u32 {
    0
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            rate_limit_per_agent: default_rate_limit(),
            rate_limit_per_agent_tool: default_rate_limit(),
            breaker_open: None,
            breaker_window: None,
        }
    }
}

/// An agent the setup creates, with its token and, optionally, a policy of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Key the steps use to name the agent.
    pub key: String,
    /// Agent name sent to `/api/create-agent` (a run suffix keeps it unique).
    pub name: String,
    /// Agent role.
    pub role: String,
    /// Token `tools` claim.
    pub tools: Vec<String>,
    /// Token `permissions` claim.
    pub permissions: Vec<String>,
    /// Token lifetime, minutes (setup extends it to cover the run).
    pub ttl_minutes: u32,
    /// Scopes of a policy bound to this agent (`tool:action`); none = the role's policies.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// One kind of iteration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Name in the report.
    pub name: String,
    /// Relative weight among the flows.
    pub weight: f64,
    /// Requests, in order.
    pub steps: Vec<Step>,
}

/// One proxy request of a flow or a probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Name in the report (unique in the scenario).
    pub name: String,
    /// The agent whose token is sent.
    pub agent: String,
    /// Tool.
    pub tool: String,
    /// Action.
    pub action: String,
    /// Parameters; string values may hold `{rand}` (0–999999) and `{iteration}`.
    pub params: Value,
    /// Statuses that pass the step's check.
    pub expect: Vec<u16>,
    /// Chance that the step runs at all, 0–1 (default 1).
    #[serde(default = "one")]
    pub probability: f64,
}

fn one() -> f64 {
    1.0
}

/// Chaos on from `from` to `until` (offsets from the start of the load).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosWindow {
    /// When the rule is set.
    #[serde(with = "human_duration")]
    pub from: Duration,
    /// When the rule is cleared.
    #[serde(with = "human_duration")]
    pub until: Duration,
    /// Body of `POST /api/admin/chaos/tool`.
    pub rule: Value,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        scenario
            .check()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(scenario)
    }

    /// Every step: the flows' and the probes'.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.flows
            .iter()
            .flat_map(|f| f.steps.iter())
            .chain(self.probes.iter())
    }

    /// Total length of the load.
    pub fn duration(&self) -> Duration {
        self.load.stages.iter().map(|s| s.duration).sum()
    }

    /// Compresses every duration by `time_scale` and multiplies every rate by `rate_scale`.
    pub fn scaled(mut self, time_scale: f64, rate_scale: f64) -> anyhow::Result<Self> {
        if !(time_scale > 0.0 && time_scale.is_finite()) {
            bail!("--time-scale must be a positive number");
        }
        if !(rate_scale > 0.0 && rate_scale.is_finite()) {
            bail!("--rate-scale must be a positive number");
        }
        let scale = |d: Duration| d.mul_f64(time_scale);
        self.load.start_rate *= rate_scale;
        for stage in &mut self.load.stages {
            stage.duration = scale(stage.duration);
            stage.target *= rate_scale;
        }
        for d in [
            &mut self.gateway.breaker_open,
            &mut self.gateway.breaker_window,
        ]
        .into_iter()
        .flatten()
        {
            *d = scale(*d);
        }
        if let Some(chaos) = &mut self.chaos {
            chaos.from = scale(chaos.from);
            chaos.until = scale(chaos.until);
        }
        Ok(self)
    }

    fn check(&self) -> anyhow::Result<()> {
        let rates =
            std::iter::once(self.load.start_rate).chain(self.load.stages.iter().map(|s| s.target));
        if rates.into_iter().any(|r| !(r >= 0.0 && r.is_finite())) {
            bail!("load: rates must be finite and not negative");
        }
        if self.load.stages.is_empty() {
            bail!("load: at least one stage");
        }
        if self.flows.is_empty()
            || self
                .flows
                .iter()
                .any(|f| f.weight.is_nan() || f.weight <= 0.0 || f.steps.is_empty())
        {
            bail!("flows: at least one, each with a positive weight and at least one step");
        }
        let agents: BTreeSet<&str> = self.agents.iter().map(|a| a.key.as_str()).collect();
        if agents.len() != self.agents.len() {
            bail!("agents: keys must be unique");
        }
        let mut names = BTreeSet::new();
        for step in self.steps() {
            if !names.insert(step.name.as_str()) {
                bail!("step {:?}: step names must be unique", step.name);
            }
            if !agents.contains(step.agent.as_str()) {
                bail!("step {:?}: unknown agent {:?}", step.name, step.agent);
            }
            if !(0.0..=1.0).contains(&step.probability) {
                bail!("step {:?}: probability must be between 0 and 1", step.name);
            }
            if step.expect.is_empty() {
                bail!("step {:?}: expect lists at least one status", step.name);
            }
        }
        if let Some(chaos) = &self.chaos {
            if chaos.from >= chaos.until || chaos.until > self.duration() {
                bail!("chaos: from must come before until, and until within the load");
            }
        }
        Ok(())
    }
}

/// Durations written the human way (`"10m"`, `"6s"`, `"1m30s"`), parsed by humantime.
mod human_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// An optional human duration.
mod human_duration_opt {
    use serde::Deserializer;
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::human_duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/journal.toml");
        Scenario::load(&path).unwrap()
    }

    #[test]
    fn journal_is_the_forty_minute_profile() {
        let s = journal();
        assert_eq!(s.duration(), Duration::from_secs(40 * 60));
        assert_eq!(s.load.start_rate, 10.0);
        let targets: Vec<f64> = s.load.stages.iter().map(|s| s.target).collect();
        assert_eq!(targets, [60.0, 60.0, 120.0, 60.0, 80.0, 0.0]);
    }

    #[test]
    fn time_scale_compresses_every_duration_and_rate_scale_every_rate() {
        let s = journal().scaled(0.05, 2.0).unwrap();
        assert_eq!(s.duration(), Duration::from_secs(120));
        assert_eq!(s.load.stages[0].duration, Duration::from_secs(30));
        assert_eq!(s.load.start_rate, 20.0);
        assert_eq!(s.load.stages[2].target, 240.0);
        assert!(journal().scaled(0.0, 1.0).is_err());
        assert!(journal().scaled(1.0, f64::NAN).is_err());
    }

    #[test]
    fn every_scenario_file_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
                seen += 1;
            }
        }
        assert!(seen >= 4, "journal, chaos, soak and spike");
    }

    #[test]
    fn a_step_naming_an_unknown_agent_is_refused() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/journal.toml"),
        )
        .unwrap()
        .replacen("agent = \"scraper\"", "agent = \"nobody\"", 1);
        let s: Scenario = toml::from_str(&text).unwrap();
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("unknown agent \"nobody\""), "{err}");
    }
}
