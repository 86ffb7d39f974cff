//! A stuck policy plugin against a real server: its calls occupy only themselves, never the
//! threads that serve everything else.

use crate::common::{
    metric_value, read, secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET,
};
use gateway::plugins::call_slots::CALLS_AT_ONCE;
use gateway::plugins::manifest::MAX_TIMEOUT_MS;
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const STUCK_CALLS: usize = 200;
/// Stuck calls seen running at once that prove they do not hold the serving threads (at
/// most `CALLS_AT_ONCE` of a binding run at once).
const IN_FLIGHT_SEEN: usize = 20;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(format!("target/plugin-fixtures/{name}.wasm"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_policy_leaves_health_and_other_tools_answering() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut s = settings(&database.url, database.data_dir());
    s.proxy.rate_limit_per_agent = 0;
    s.proxy.rate_limit_per_agent_tool = 0;
    s.server.max_connections_per_client = 1_000;
    std::fs::create_dir_all(&s.plugins_dir).unwrap();
    std::fs::copy(
        fixture("loop-forever"),
        s.plugins_dir.join("loop-forever.wasm"),
    )
    .expect("run `make plugins`");
    // The plugin spins forever, at the largest budget a binding may have; only http_fetch
    // is bound to it.
    std::fs::write(
        s.plugins_dir.join("plugins.toml"),
        format!(
            "[[binding]]\nplugin = \"loop-forever.wasm\"\ntools = [\"http_fetch\"]\n\
             timeout_ms = {MAX_TIMEOUT_MS}\nreuse = false\n"
        ),
    )
    .unwrap();
    let gw = TestGateway::start_with(s, secrets(SIGNING_SECRET)).await;
    let (agent, _) = gw.create_agent("stuck", "tester").await;
    let token = gw
        .mint_scoped(&agent, &["http_fetch", "serpapi"], &["read"])
        .await;

    let finished = Arc::new(AtomicUsize::new(0));
    let stuck_client = reqwest::Client::new();
    let mut stuck = Vec::with_capacity(STUCK_CALLS);
    for _ in 0..STUCK_CALLS {
        let (client, url, token, finished) = (
            stuck_client.clone(),
            gw.url("/api/proxy-request"),
            token.clone(),
            Arc::clone(&finished),
        );
        stuck.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .json(
                    &json!({"agent_token": token, "tool": "http_fetch", "action": "get",
                              "params": {"url": "https://example.com/"}}),
                )
                .send()
                .await
                .unwrap();
            let answer = read(response).await;
            finished.fetch_add(1, Ordering::SeqCst);
            answer
        }));
    }

    // Another client is served while the stuck calls run: CPU-bound calls on two serving
    // threads can only be running by the dozen if each yields its thread (without that, at
    // most a few are: each holds a thread until it ends); and no more than a binding's slots.
    let probe = reqwest::Client::new();
    let mut most_in_flight = 0.0f64;
    while most_in_flight < IN_FLIGHT_SEEN as f64 && finished.load(Ordering::SeqCst) == 0 {
        let metrics = gw.metrics_via(&probe).await;
        most_in_flight =
            most_in_flight.max(metric_value(&metrics, "gateway_plugin_calls_in_flight"));
    }
    assert!(
        most_in_flight >= IN_FLIGHT_SEEN as f64,
        "/metrics never saw {IN_FLIGHT_SEEN} stuck calls running at once (most: {most_in_flight})"
    );
    assert!(
        most_in_flight <= CALLS_AT_ONCE as f64,
        "{most_in_flight} running"
    );
    // Health and a tool without the stuck policy are served too.
    let health = probe.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let search = probe
        .post(gw.url("/api/proxy-request"))
        .json(&json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "rust"}}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(search).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Every stuck call ends, refused: the policy failed closed (403 policy_error), or found
    // every slot of its binding taken for as long as a call may last (503 plugin_busy).
    let mut busy = 0;
    for call in stuck {
        let (status, body) = call.await.unwrap();
        match body["code"].as_str() {
            Some("policy_error") => assert_eq!(status, StatusCode::FORBIDDEN),
            Some("plugin_busy") => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
                busy += 1;
            }
            _ => panic!("{status}: {body}"),
        }
    }
    assert!(
        busy > 0,
        "200 stuck calls never found the binding's slots all taken"
    );
    gw.stop().await;
}
