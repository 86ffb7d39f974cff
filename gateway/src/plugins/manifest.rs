//! `plugins.toml`: which plugin runs for which tools and roles, with what configuration,
//! limits and failure mode.
//!
//! ```toml
//! [[binding]]
//! plugin = "spec-policy.wasm"      # a file in the plugin directory
//! tools = ["*"]                    # or a list of tool names
//! roles = []                       # empty: every role
//! config_from = "policies"         # the merged PolicySpec of the request's agent and role
//! # config = { key = "value" }     # or a static configuration (any TOML table)
//! timeout_ms = 10
//! memory_mb = 16
//! fail = "closed"                  # closed (policies' default) | open (chaos' default)
//! reuse = true                     # reuse live instances if the plugin is stateless
//! # sha256 = "…"                   # pin the component: any other file is refused
//! # shadow = "next.wasm"           # a candidate judged beside it on live calls, never enforced
//! # shadow_percent = 10            # the share of calls it judges
//! # min_version = 3                # uploads: the lowest version a quarantine may return to
//! ```
//!
//! A policy's response filter runs on the calls whose `evaluate` answered
//! `allow-and-filter`: the plugin, not the binding, says when it has work.

use super::engine::MAX_MEMORY_BYTES;
use super::invoker::CallLimits;
use crate::catalog::ToolName;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest `timeout_ms` (CPU time of one call). A policy runs on the path of every request
/// it binds: a call needing more CPU than this has no place there, and since a call is
/// stopped at 20 times its budget in wall time whatever it does, this also bounds how long
/// a stuck plugin holds a request (2 s), well inside the default `REQUEST_DEADLINE_MS`.
pub const MAX_TIMEOUT_MS: u64 = 100;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Bindings, evaluated in file order.
    #[serde(default)]
    pub binding: Vec<BindingSpec>,
}

/// Where a binding's configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigSource {
    /// The policies stored through `/api/policies`, merged for the request's agent and role.
    Policies,
    /// The chaos rules set through `/api/admin/chaos` (and `FF_CHAOS`).
    #[serde(rename = "chaos_rules")]
    ChaosRules,
}

/// What happens to a request when the plugin fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// The request is refused (403 `policy_error`).
    Closed,
    /// The plugin is skipped.
    Open,
}

/// One `[[binding]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    /// Plugin file name in the plugin directory.
    pub plugin: String,
    /// Binding name (default: the file name without `.wasm`).
    pub name: Option<String>,
    /// Expected world; checked against the file when given.
    pub world: Option<super::World>,
    /// Tools this binding applies to (`"*"` for all).
    pub tools: Vec<String>,
    /// Roles it applies to (empty: all).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Static configuration, handed to the plugin as JSON.
    pub config: Option<toml::Value>,
    /// Dynamic configuration source.
    pub config_from: Option<ConfigSource>,
    /// Call deadline in milliseconds (default 10).
    pub timeout_ms: Option<u64>,
    /// Memory cap in MiB (default 16).
    pub memory_mb: Option<u64>,
    /// Failure mode (default: closed for policies, open for chaos).
    pub fail: Option<FailMode>,
    /// Reuse live instances when the plugin is stateless (default true).
    pub reuse: Option<bool>,
    /// The component's SHA-256 (hex), when the binding pins it: another file is refused.
    pub sha256: Option<String>,
    /// A candidate policy (a file in the plugin directory) judged beside this binding on a
    /// share of live calls, off the response path: it never changes an answer, and how
    /// often it agrees is counted (`gateway_plugin_shadow_evaluations_total`).
    pub shadow: Option<String>,
    /// Percent of calls the shadow candidate also judges (default 10).
    pub shadow_percent: Option<f64>,
    /// The lowest uploaded version (its number in `GET /api/admin/plugins`) a quarantine may
    /// roll this binding back to. Without it a quarantine rolls nothing back: the failing
    /// version stays bound, failing its calls as `fail` says, and an alert is raised.
    pub min_version: Option<i64>,
    /// Lets a signed version lower than one this binding has run go live (an explicit
    /// rollback, recorded with the binding and logged); refused without it.
    pub allow_downgrade: Option<bool>,
}

/// A manifest problem, naming the binding.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML or not of the expected shape.
    #[error("plugins.toml: {0}")]
    Parse(String),
    /// A binding's values are out of range.
    #[error("plugins.toml binding {binding}: {problem}")]
    Invalid {
        /// Binding name.
        binding: String,
        /// What is wrong.
        problem: String,
    },
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        for b in &manifest.binding {
            b.check()?;
        }
        Ok(manifest)
    }
}

impl BindingSpec {
    /// The binding's name.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.plugin
                .strip_suffix(".wasm")
                .unwrap_or(&self.plugin)
                .to_string()
        })
    }

    /// Checks the entry as `plugins.toml` would (file name, world, limits, configuration).
    pub fn check(&self) -> Result<(), ManifestError> {
        let invalid = |problem: String| ManifestError::Invalid {
            binding: self.name(),
            problem,
        };
        if self.plugin.contains('/')
            || self.plugin.contains("..")
            || !self.plugin.ends_with(".wasm")
        {
            return Err(invalid(
                "plugin must be a .wasm file name in the plugin directory".into(),
            ));
        }
        if self.tools.is_empty() {
            return Err(invalid("tools must name at least one tool or \"*\"".into()));
        }
        for tool in &self.tools {
            if tool != "*" && tool.parse::<ToolName>().is_err() {
                return Err(invalid(format!("unknown tool {tool:?}")));
            }
        }
        if let Some(percent) = self.shadow_percent {
            if !(0.0..=100.0).contains(&percent) {
                return Err(invalid("shadow_percent must be 0 to 100".into()));
            }
        }
        if let Some(shadow) = &self.shadow {
            if shadow.contains('/') || shadow.contains('\\') || !shadow.ends_with(".wasm") {
                return Err(invalid(
                    "shadow must be a .wasm file name in the plugin directory".into(),
                ));
            }
        }
        if let Some(pin) = &self.sha256 {
            if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("sha256 must be 64 hex digits".into()));
            }
        }
        if self.min_version.is_some_and(|v| v < 1) {
            return Err(invalid(
                "min_version must be an uploaded version, from 1".into(),
            ));
        }
        if self.config.is_some() && self.config_from.is_some() {
            return Err(invalid("give config or config_from, not both".into()));
        }
        if let Some(t) = self.timeout_ms {
            if !(1..=MAX_TIMEOUT_MS).contains(&t) {
                return Err(invalid(format!("timeout_ms must be 1 to {MAX_TIMEOUT_MS}")));
            }
        }
        if let Some(m) = self.memory_mb {
            if m == 0 || m as usize > MAX_MEMORY_BYTES >> 20 {
                return Err(invalid(format!(
                    "memory_mb must be 1 to {}",
                    MAX_MEMORY_BYTES >> 20
                )));
            }
        }
        Ok(())
    }

    /// What a failure does: `fail`, else closed for a policy and open for chaos.
    pub fn fail_mode(&self, world: super::World) -> FailMode {
        self.fail.unwrap_or(match world {
            super::World::Policy => FailMode::Closed,
            super::World::Chaos => FailMode::Open,
        })
    }

    /// The call limits of this binding.
    pub fn limits(&self) -> CallLimits {
        let default = CallLimits::default();
        CallLimits {
            timeout: self
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(default.timeout),
            memory_bytes: self
                .memory_mb
                .map(|m| (m as usize) << 20)
                .unwrap_or(default.memory_bytes),
        }
    }

    /// The static configuration as JSON text (`{}` when none).
    pub fn config_json(&self) -> String {
        self.config
            .as_ref()
            .and_then(|c| serde_json::to_string(c).ok())
            .unwrap_or_else(|| "{}".to_string())
    }

    /// True when the binding applies to `tool` and `role`.
    pub fn applies_to(&self, tool: &str, role: &str) -> bool {
        self.tools.iter().any(|t| t == "*" || t == tool)
            && (self.roles.is_empty() || self.roles.iter().any(|r| r == role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_binding_with_defaults() {
        let m = Manifest::parse(
            "[[binding]]\nplugin = \"deny-all.wasm\"\ntools = [\"serpapi\"]\nconfig = { limit = 3 }\n",
        )
        .unwrap();
        let b = &m.binding[0];
        assert_eq!(b.name(), "deny-all");
        assert_eq!(b.limits(), CallLimits::default());
        assert_eq!(b.config_json(), r#"{"limit":3}"#);
        assert!(b.applies_to("serpapi", "any"));
        assert!(!b.applies_to("openai", "any"));
    }

    #[test]
    fn rejects_bad_bindings_naming_them() {
        for bad in [
            "[[binding]]\nplugin = \"../x.wasm\"\ntools = [\"*\"]",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = []",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"teleport\"]",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\ntimeout_ms = 0",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\nmemory_mb = 4096",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\ncolour = \"red\"",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\nfilter_response = \"always\"",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\nsha256 = \"abc\"",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\nshadow = \"../y.wasm\"",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\nshadow_percent = 101",
            "[[binding]]\nplugin = \"x.wasm\"\ntools = [\"*\"]\nmin_version = 0",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad}");
        }
    }

    /// `[[binding]]` tables of known and unknown keys with values of every TOML shape.
    fn binding_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("plugin"),
            Just("tools"),
            Just("roles"),
            Just("config_from"),
            Just("config"),
            Just("timeout_ms"),
            Just("memory_mb"),
            Just("fail"),
            Just("reuse"),
            Just("filter_response"),
            Just("name"),
            Just("bogus"),
        ];
        let value = prop_oneof![
            "\"[a-z.*_-]{0,12}\"",
            "-?[0-9]{1,20}",
            Just("true".to_string()),
            Just("[]".to_string()),
            Just("[\"*\"]".to_string()),
            Just("{}".to_string()),
            Just("{ a = 1 }".to_string()),
            Just("\"spec-policy.wasm\"".to_string()),
            Just("1e400".to_string()),
        ];
        proptest::collection::vec((key, value), 0..10).prop_map(|pairs| {
            let mut text = "[[binding]]\n".to_string();
            for (k, v) in pairs {
                text.push_str(&format!("{k} = {v}\n"));
            }
            text
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// Any text, and any binding-shaped table, parses or is refused with a message:
        /// never a panic; and what parses is within the host's limits.
        #[test]
        fn any_manifest_parses_or_is_refused(text in ".{0,400}", table in binding_like()) {
            for candidate in [text, table] {
                if let Ok(manifest) = Manifest::parse(&candidate) {
                    for binding in &manifest.binding {
                        let limits = binding.limits();
                        proptest::prop_assert!(limits.timeout <= Duration::from_millis(MAX_TIMEOUT_MS));
                        proptest::prop_assert!(limits.memory_bytes <= MAX_MEMORY_BYTES);
                    }
                }
            }
        }
    }
}
