//! Shutdown as a load balancer needs it: `/ready` turns 503 at once while the gateway keeps
//! accepting and serving for the grace period; then requests in flight get at most the drain
//! time.

use crate::common::{secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET};
use crate::proxy_live::{live, start_upstream};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Every test here ends by itself; this only turns a hang into a failure.
const TEST_BOUND: Duration = Duration::from_secs(60);

async fn ready_turns_503_at_once_and_the_gateway_serves_through_the_grace() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut s = settings(&database.url, database.data_dir());
    s.server.shutdown_grace_ms = 600_000;
    let mut gw = TestGateway::start_with(s, secrets(SIGNING_SECRET)).await;
    let ready = gw.client.get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    gw.request_shutdown();
    loop {
        let ready = gw.client.get(gw.url("/ready")).send().await.unwrap();
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = ready.json().await.unwrap();
            assert_eq!(body["draining"], true, "{body}");
            break;
        }
    }
    // A new connection is still accepted and served, management calls included.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let health = fresh.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (agent, _) = gw.create_agent("late", "scraper").await;
    assert!(!agent.is_empty());
    // The gateway is dropped with its grace unspent; the test's runtime ends it.
}

async fn requests_still_running_after_the_drain_time_are_cut_off() {
    // The first search of the upstream hangs.
    let (upstream, up) = start_upstream(1, 0).await;
    let mut l = live(&upstream, |s| {
        s.proxy.http_fetch_allow_private = true;
        s.proxy.request_deadline_ms = 120_000;
        s.server.shutdown_drain_ms = 200;
    })
    .await;
    let hanging = {
        let (client, url, token) = (
            l.gw.client.clone(),
            l.gw.url("/api/proxy-request"),
            l.token.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"agent_token": token, "tool": "http_fetch", "action": "get",
                              "params": {"url": format!("{upstream}/search?q=x"), "timeout": 30000}}))
                .send()
                .await
        })
    };
    while up.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The fetch would hang until its own 30 s timeout: the drain's 200 ms end it first (the
    // bound below only turns a drain that waits for the fetch into a failure).
    l.gw.request_shutdown();
    let stopped = tokio::time::timeout(Duration::from_secs(10), l.gw.stopped()).await;
    assert!(
        stopped.is_ok(),
        "the drain waited for the request in flight"
    );
    assert!(
        hanging.await.unwrap().is_err(),
        "the hanging request was cut off"
    );
}

on_sqlite_within!(
    super::TEST_BOUND;
    ready_turns_503_at_once_and_the_gateway_serves_through_the_grace,
    requests_still_running_after_the_drain_time_are_cut_off,
);
