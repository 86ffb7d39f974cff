//! `monitoring/` reads only metrics the gateway serves: every metric name in the Prometheus
//! rules and the Grafana dashboard is a family of `/metrics` after a short load of ordinary
//! traffic (a rule on a name that does not exist never fires, and says nothing), and
//! `promtool check metrics` has nothing to say of what it serves.

use crate::common::cluster::wait_until;
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

/// A real Prometheus (Debian's package, installed by `make monitoring`) scrapes a gateway
/// every second with the repository's rules: the gateway is up, the recording rules evaluate,
/// and every query of the dashboard answers with data. Skipped, saying so, where the
/// `prometheus` binary is not installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_answers_the_dashboards_queries() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: prometheus is not installed (make monitoring installs it)");
        return;
    }
    let f = Fixture::with_default_plugins(Backend::Sqlite).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("scraped", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    let search =
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}});

    let dir = tempfile::tempdir().unwrap();
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../monitoring/rules");
    let target = gw
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}/gateway-recording.yml\n  - {}/gateway-alerts.yml\n\
             scrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules.display(),
            rules.display()
        ),
    )
    .unwrap();
    let port = testkit::free_port();
    let _prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus runs");
    let client = reqwest::Client::new();
    let query = |expr: String| {
        let client = client.clone();
        async move {
            let answer: serde_json::Value = match client
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", expr)])
                .send()
                .await
            {
                Ok(response) => response.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            answer
        }
    };
    // Traffic while Prometheus scrapes, until it has seen the requests counted.
    wait_until("Prometheus scraping the gateway's requests", || async {
        proxy(gw, search.clone()).await;
        let answer = query("sum(gateway_requests_total{job=\"gateway\"})".into()).await;
        answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v >= 3.0)
    })
    .await;
    wait_until("a recording rule evaluated", || async {
        let answer = query("tool:gateway_requests:rate5m".into()).await;
        !answer["data"]["result"]
            .as_array()
            .is_none_or(Vec::is_empty)
    })
    .await;
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../monitoring/grafana/gateway-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut silent = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$job", ".*");
            let answer = query(expr.clone()).await;
            if answer["status"] != "success"
                || answer["data"]["result"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
            {
                silent.push(format!("{}: {expr}: {answer}", panel["title"]));
            }
        }
    }
    assert!(
        silent.is_empty(),
        "queries without data:\n{}",
        silent.join("\n")
    );
}
