//! `chaos`: the gateway's default chaos plugin.
//!
//! Configuration: `{"rules": {"<tool>" | "*": {"mode", "pct", "min_ms", "max_ms"}}}`, where
//! `mode` is `timeout`, `500`, `jitter` (a delay of `min_ms`–`max_ms`) or `mock503` (that
//! delay, then 503). The rule of the request's tool wins over `"*"`. Whether a call is hit,
//! and the delay, come from the request's seed: the same seed always gives the same fault.

use gateway_sdk::{Chaos, Fault, Host, PluginInfo, Request};
use serde::Deserialize;
use std::collections::HashMap;

/// The plugin.
pub struct ChaosRules;

/// The configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Rules by tool name, `"*"` for every tool.
    pub rules: HashMap<String, Rule>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Rule {
    /// `timeout`, `500`, `jitter` or `mock503`.
    pub mode: String,
    /// Share of calls hit, 0–100.
    pub pct: f64,
    /// Shortest delay (jitter, mock503), ms.
    #[serde(default = "default_min_ms")]
    pub min_ms: u32,
    /// Longest delay (jitter, mock503), ms.
    #[serde(default = "default_max_ms")]
    pub max_ms: u32,
}

fn default_min_ms() -> u32 {
    300
}

fn default_max_ms() -> u32 {
    1500
}

/// SplitMix64: a well-mixed 64-bit value from the seed and a stream number.
fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed.wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The fault `rule` gives a request with `seed`.
pub fn fault_for(rule: &Rule, seed: u64) -> Fault {
    let roll = (mix(seed, 1) % 10_000) as f64 / 100.0;
    if roll >= rule.pct.clamp(0.0, 100.0) {
        return Fault::None;
    }
    let (lo, hi) = (rule.min_ms.min(rule.max_ms), rule.min_ms.max(rule.max_ms));
    let delay = lo + (mix(seed, 2) % u64::from(hi - lo + 1)) as u32;
    match rule.mode.as_str() {
        "timeout" => Fault::Timeout,
        "500" => Fault::Error {
            status: 500,
            message: "Chaos: simulated 500 error".into(),
        },
        "jitter" => Fault::Delay { ms: delay },
        "mock503" => Fault::DelayThenError {
            ms: delay,
            status: 503,
            message: "mock 503".into(),
        },
        _ => Fault::None,
    }
}

impl Chaos for ChaosRules {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new("chaos", env!("CARGO_PKG_VERSION"), true)
    }

    /// The rules of every document, later documents' rules winning per tool.
    fn configure(documents: &[String]) -> Result<Config, Vec<String>> {
        let mut merged = Config::default();
        for document in documents {
            let config: Config = serde_json::from_str(document)
                .map_err(|e| vec![format!("invalid chaos configuration: {e}")])?;
            merged.rules.extend(config.rules);
        }
        Ok(merged)
    }

    fn inject(_host: &dyn Host, config: &Config, request: &Request) -> Fault {
        match config
            .rules
            .get(request.tool())
            .or_else(|| config.rules.get("*"))
        {
            Some(rule) => fault_for(rule, request.seed()),
            None => Fault::None,
        }
    }
}

gateway_sdk::export_chaos!(ChaosRules);

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_sdk::testing::ChaosHarness;
    use gateway_sdk::RequestFields;

    fn rule(mode: &str, pct: f64) -> Rule {
        Rule {
            mode: mode.into(),
            pct,
            min_ms: 300,
            max_ms: 1500,
        }
    }

    #[test]
    fn same_seed_gives_same_fault() {
        for seed in 0..100 {
            assert_eq!(
                fault_for(&rule("mock503", 50.0), seed),
                fault_for(&rule("mock503", 50.0), seed)
            );
        }
    }

    #[test]
    fn hit_rate_follows_pct_and_delays_stay_in_range() {
        let hits = (0..10_000u64)
            .filter(|s| match fault_for(&rule("mock503", 20.0), *s) {
                Fault::DelayThenError { ms, status, .. } => {
                    assert!((300..=1500).contains(&ms));
                    assert_eq!(status, 503);
                    true
                }
                Fault::None => false,
                other => panic!("{other:?}"),
            })
            .count();
        assert!(
            (1800..=2200).contains(&hits),
            "{hits} hits of 10000 at 20 %"
        );
        assert!((0..1000).all(|s| fault_for(&rule("500", 0.0), s) == Fault::None));
        assert!((0..1000).all(|s| fault_for(&rule("timeout", 100.0), s) == Fault::Timeout));
    }

    #[test]
    fn tool_rule_wins_over_wildcard_and_bad_config_injects_nothing() {
        let config = serde_json::json!({"rules": {"*": {"mode": "timeout", "pct": 100},
                                                  "serpapi": {"mode": "500", "pct": 100}}});
        let harness = ChaosHarness::<ChaosRules>::new(&[&config.to_string()]);
        let mut request = RequestFields {
            tool: "serpapi".into(),
            ..RequestFields::default()
        };
        assert!(matches!(
            harness.inject(&request.clone().into()),
            Fault::Error { status: 500, .. }
        ));
        request.tool = "openai".into();
        assert_eq!(harness.inject(&request.clone().into()), Fault::Timeout);
        let broken = ChaosHarness::<ChaosRules>::new(&["nope"]);
        assert_eq!(broken.inject(&request.into()), Fault::None);
        assert_eq!(broken.host.logs().len(), 1, "the problem is logged");
    }
}
