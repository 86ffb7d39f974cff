//! Several real `gateway serve` processes on one PostgreSQL database: every change (revocation,
//! suspension, policy, plugin upload, chaos rule) reaches every instance through the change
//! feed, with a writer whose clock is 10 s behind; chaos rules outlive a restart; the rate
//! limit is one for the whole cluster; killing an instance costs the others nothing; and a
//! SIGTERM drain loses no request.

use crate::common::cluster::{wait_until, Cluster, Instance, InstanceEnv};
use crate::common::{metric_value, plugin_decision, redis_url, wasm_base64, Backend, TestDatabase};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// Every scenario ends by itself; this only turns a hang into a failure.
const TEST_BOUND: Duration = Duration::from_secs(180);

/// Waits until `instance` says `token` is inactive for `reason`.
async fn until_refused(instance: &Instance, token: &str, reason: &str) {
    wait_until(
        &format!("{} refusing the token ({reason})", instance.base),
        || async { instance.introspect(token).await["reason"] == reason },
    )
    .await;
}

async fn changes_reach_every_instance_whatever_the_writers_clock() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut cluster = Cluster::start(3, &database.url, &InstanceEnv::default()).await;
    // The writer's clock is 10 s behind the others'.
    let dir = cluster.dir.path().join("writer");
    let skewed = InstanceEnv::default().with("GATEWAY_TEST_CLOCK_SKEW_MS", -10_000);
    cluster.instances[0] = Instance::start(&database.url, &dir, &skewed).await;
    let writer = &cluster[0];

    let (agent, _) = writer.create_agent("fleet", "scraper").await;
    let (token, token_id) = writer.mint(&agent).await;
    for i in 1..3 {
        assert_eq!(cluster[i].search(&token).await.0, StatusCode::OK);
    }
    let (status, _) = writer
        .admin(
            Method::POST,
            &format!("/api/admin/tokens/{token_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 1..3 {
        until_refused(&cluster[i], &token, "revoked").await;
        let (status, body) = cluster[i].search(&token).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::FORBIDDEN, &json!("token_revoked"))
        );
    }

    let (token2, _) = writer.mint(&agent).await;
    let (status, _) = writer
        .admin(
            Method::PATCH,
            &format!("/api/agents/{agent}"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 1..3 {
        until_refused(&cluster[i], &token2, "revoked").await;
    }

    // A policy and a plugin upload made on one instance are live on all.
    let (status, body) = writer
        .admin(
            Method::POST,
            "/api/policies",
            Some(
                json!({"name": "fleet", "agentId": agent, "spec": {"scopes": ["serpapi:search"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let policy = body["id"].clone();
    let (status, body) = writer
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(
                json!({"wasm_base64": wasm_base64("target/plugin-fixtures", "deny-all"),
                        "binding": {"tools": ["*"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for i in 1..3 {
        let instance = &cluster[i];
        wait_until("the policy on every instance", || async {
            let (_, merged) = instance
                .admin(Method::GET, &format!("/api/policies/merged/{agent}"), None)
                .await;
            merged["sourcePolicies"]
                .as_array()
                .is_some_and(|sources| sources.contains(&policy))
        })
        .await;
        wait_until("the uploaded plugin on every instance", || async {
            plugin_decision(instance).await["code"] == "deny_all"
        })
        .await;
    }

    // A chaos rule set on one instance applies on all, and outlives a restart.
    let rule = json!({"tool": "serpapi", "mode": "500", "pct": 100});
    let (status, body) = writer
        .admin(Method::POST, "/api/admin/chaos/tool", Some(rule))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for i in 1..3 {
        let instance = &cluster[i];
        wait_until("the chaos rule on every instance", || async {
            chaos_rules(instance).await == 1
        })
        .await;
    }
    let dir = cluster.dir.path().join("restarted");
    cluster.instances[1] = Instance::start(&database.url, &dir, &InstanceEnv::default()).await;
    assert_eq!(
        chaos_rules(&cluster[1]).await,
        1,
        "the rule outlives a restart"
    );
    let (status, _) = cluster[2]
        .admin(Method::DELETE, "/api/admin/chaos/tool/serpapi", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 0..2 {
        let instance = &cluster[i];
        wait_until("the cleared rule on every instance", || async {
            chaos_rules(instance).await == 0
        })
        .await;
    }

    // Every instance has applied the same feed position.
    let newest = feed_position(&cluster[2]).await;
    assert!(newest > 0.0);
    for i in 0..3 {
        let instance = &cluster[i];
        wait_until("every instance at the newest feed position", || async {
            feed_position(instance).await >= newest
        })
        .await;
    }
}

/// How many chaos rules `instance` applies.
async fn chaos_rules(instance: &Instance) -> usize {
    instance
        .admin(Method::GET, "/api/admin/chaos", None)
        .await
        .1["activeChaos"]
        .as_array()
        .map_or(0, Vec::len)
}

/// The change-feed position `instance` has applied.
async fn feed_position(instance: &Instance) -> f64 {
    metric_value(&instance.metrics().await, "gateway_change_feed_position")
}

async fn killing_one_instance_under_load_costs_the_others_nothing() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut cluster = Cluster::start(3, &database.url, &InstanceEnv::default()).await;
    let (agent, _) = cluster[0].create_agent("steady", "scraper").await;
    let (token, _) = cluster[0].mint(&agent).await;
    let mut failures = Vec::new();
    for round in 0..3 {
        if round == 1 {
            cluster[0].kill();
        }
        for i in 1..3 {
            for _ in 0..20 {
                let (status, body) = cluster[i].search(&token).await;
                if status != StatusCode::OK {
                    failures.push((round, i, status, body));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

async fn the_rate_limit_is_one_for_the_whole_cluster() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let prefix = format!("gwcluster:{}:", uuid::Uuid::new_v4().simple());
    // Two a minute: a unit comes back only after 30 s, far longer than the nine requests
    // take, so the count does not depend on their pace. A generous Redis deadline keeps a
    // loaded machine from sending a check to the per-instance fallback.
    let env = InstanceEnv::default()
        .with("REDIS_URL", redis_url())
        .with("REDIS_KEY_PREFIX", prefix)
        .with("REDIS_TIMEOUT_MS", 5_000)
        .with("RATE_LIMIT_PER_AGENT", 2)
        .with("RATE_LIMIT_PER_AGENT_TOOL", 0)
        .with("CACHE_ENABLED", "off");
    let cluster = Cluster::start(3, &database.url, &env).await;
    let (agent, _) = cluster[0].create_agent("limited", "scraper").await;
    let (token, _) = cluster[0].mint(&agent).await;
    let mut allowed = 0;
    for n in 0..9 {
        match cluster[n % 3].search(&token).await.0 {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Per-instance limits would allow 6 (two on each).
    assert_eq!(allowed, 2, "one limit for the three instances");
}

async fn a_sigterm_drain_loses_no_request_of_a_client_that_watches_ready() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let env = InstanceEnv::default().with("SHUTDOWN_GRACE_MS", 2_000);
    let mut cluster = Cluster::start(2, &database.url, &env).await;
    let (agent, _) = cluster[0].create_agent("drained", "scraper").await;
    let (token, _) = cluster[0].mint(&agent).await;
    let (mut served, mut failed) = (0u32, Vec::new());
    for n in 0..10_000 {
        if n == 20 {
            cluster[0].terminate();
        }
        let ready = cluster[0].client.get(cluster[0].url("/ready")).send().await;
        if ready.map_or(true, |r| r.status() == StatusCode::SERVICE_UNAVAILABLE) {
            break;
        }
        match cluster[0].search(&token).await {
            (StatusCode::OK, _) => served += 1,
            other => failed.push(other),
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        cluster[0].exited().await,
        Some(0),
        "{}",
        cluster[0].log_text()
    );
    // Every request it acknowledged has its audit row.
    let (status, logs) = cluster[1]
        .admin(Method::GET, "/api/proxy/logs?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logs["total"], served, "{logs}");
}

on_postgres_within!(
    super::TEST_BOUND;
    changes_reach_every_instance_whatever_the_writers_clock,
        killing_one_instance_under_load_costs_the_others_nothing,
        the_rate_limit_is_one_for_the_whole_cluster,
        a_sigterm_drain_loses_no_request_of_a_client_that_watches_ready,
);
