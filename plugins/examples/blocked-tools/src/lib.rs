//! Example: `blocked-tools` denies every call of the tools its configuration lists
//! (`{"blocked_tools": ["gmail_send"]}`) with code `tool_blocked`. `python/app.py` is the
//! same policy in Python; a test checks that both decide alike.

use gateway_sdk::{Decision, Host, PluginInfo, Policy, Request};
use serde::Deserialize;

/// The plugin.
pub struct BlockedTools;

/// What the configuration documents say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tools no call may use.
    #[serde(default)]
    pub blocked_tools: Vec<String>,
}

impl Policy for BlockedTools {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new("blocked-tools", "1.0.0", true)
    }

    fn configure(documents: &[String]) -> Result<Config, Vec<String>> {
        let mut merged = Config::default();
        for document in documents {
            let config: Config =
                serde_json::from_str(document).map_err(|e| vec![format!("config: {e}")])?;
            merged.blocked_tools.extend(config.blocked_tools);
        }
        Ok(merged)
    }

    fn evaluate(_host: &dyn Host, config: &Config, request: &Request) -> Decision {
        if config.blocked_tools.iter().any(|t| t == request.tool()) {
            return Decision::deny("tool_blocked", format!("{} is blocked", request.tool()));
        }
        Decision::Allow
    }
}

gateway_sdk::export_policy!(BlockedTools);
