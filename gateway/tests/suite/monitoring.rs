//! `monitoring/` reads only metrics the gateway serves: every metric name in the Prometheus
//! rules and the Grafana dashboard is a family of `/metrics` after a short load of ordinary
//! traffic (a rule on a name that does not exist never fires, and says nothing), and
//! `promtool check metrics` has nothing to say of what it serves.

use crate::common::{proxy, Backend, Fixture};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Metric names a file mentions: words starting `gateway_` that are not part of a recording
/// rule's name (`level:metric:operation`), with a histogram's `_bucket`/`_sum`/`_count`
/// suffix taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("gateway_") && !word.contains(':'))
        .map(|word| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word)
                .to_string()
        })
        .collect()
}

/// Every file of `monitoring/` an operator loads into Prometheus or Grafana.
fn monitoring_files() -> Vec<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../monitoring");
    [
        "rules/gateway-alerts.yml",
        "rules/gateway-recording.yml",
        "grafana/gateway-dashboard.json",
    ]
    .iter()
    .map(|file| {
        let path = root.join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (path, text)
    })
    .collect()
}

/// Names of the families `/metrics` describes (`# TYPE name kind`).
fn served_families(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `promtool check metrics` finds nothing to say of `metrics` (base units, naming, help
/// texts). Skipped, saying so, where promtool is not installed (`make test` installs it).
fn lint_with_promtool(metrics: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!(
            "skipped the promtool lint: promtool is not installed (make monitoring installs it)"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}

#[test]
fn names_are_read_off_expressions_not_recording_rules() {
    let names = metric_names(
        "sum by (tool) (rate(gateway_requests_total[5m])) / tool:gateway_requests:rate5m \
         histogram_quantile(0.9, rate(gateway_plugin_duration_seconds_bucket[1m]))",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["gateway_plugin_duration_seconds", "gateway_requests_total"]
    );
}

async fn every_metric_a_rule_or_panel_reads_is_served() {
    let f = Fixture::with_default_plugins(Backend::Sqlite).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("watched", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    for body in [
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}}),
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}}),
        json!({"agent_token": token, "tool": "http_fetch", "action": "get", "params": {"url": "https://malicious-site.com/"}}),
        json!({"agent_token": "forged", "tool": "serpapi", "action": "search", "params": {}}),
    ] {
        proxy(gw, body).await;
    }
    let metrics = gw.metrics().await;
    lint_with_promtool(&metrics);
    let served = served_families(&metrics);
    let mut missing = Vec::new();
    for (path, text) in monitoring_files() {
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{}: no metric found", path.display());
        for name in names {
            if !served.contains(&name) {
                missing.push(format!("{} reads {name}", path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not served by /metrics:\n{}",
        missing.join("\n")
    );
}

crate::on_sqlite!(every_metric_a_rule_or_panel_reads_is_served);
