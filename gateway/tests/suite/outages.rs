//! Outages of the shared dependencies, made with servers of the test's own: a Redis killed
//! or frozen leaves proxying working (limits per instance, no cache), `/ready` degraded and
//! everything back when it returns; a PostgreSQL stopped under load leaves proxying working,
//! management calls answering 503 `store_unavailable` (counted as database errors, with the
//! replicated state's age growing until the database is back), and every acknowledged
//! request with its audit row once it is back; and the request deadline bounds a step stuck on Redis.

use crate::common::cluster::{
    wait_until, Cluster, Instance, InstanceEnv, ThrowawayPostgres, ThrowawayRedis,
};
use crate::common::metric_value;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Every scenario ends by itself; this only turns a hang into a failure.
const TEST_BOUND: Duration = Duration::from_secs(180);

async fn ready(instance: &Instance) -> (StatusCode, Value) {
    crate::common::read(
        instance
            .client
            .get(instance.url("/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Asks `instance` to create an agent; returns the answer, whatever it is.
async fn create_agent(instance: &Instance, name: &str) -> (StatusCode, Value) {
    instance
        .admin(
            Method::POST,
            "/api/create-agent",
            Some(json!({"name": name, "created_by": "tests", "role": "scraper"})),
        )
        .await
}

/// Sends `n` searches through each instance; returns the failures.
async fn searches(instances: &[&Instance], token: &str, n: usize) -> Vec<(StatusCode, Value)> {
    let mut failures = Vec::new();
    for instance in instances {
        for _ in 0..n {
            let answer = instance.search(token).await;
            if answer.0 != StatusCode::OK {
                failures.push(answer);
            }
        }
    }
    failures
}

async fn redis_killed_or_frozen_degrades_the_cluster_and_it_recovers() {
    let database = crate::common::TestDatabase::create(crate::common::Backend::Postgres).await;
    let mut redis = ThrowawayRedis::start();
    let env = InstanceEnv::default()
        .with("REDIS_URL", redis.url())
        .with("REDIS_TIMEOUT_MS", 50);
    let cluster = Cluster::start(2, &database.url, &env).await;
    let both = [&cluster[0], &cluster[1]];
    let (agent, _) = cluster[0].create_agent("degraded", "scraper").await;
    let (token, _) = cluster[0].mint(&agent).await;
    assert!(searches(&both, &token, 5).await.is_empty());
    assert_eq!(ready(&cluster[0]).await.1["status"], "ok");

    redis.kill();
    let failures = searches(&both, &token, 10).await;
    assert!(failures.is_empty(), "with Redis killed: {failures:?}");
    let (status, body) = ready(&cluster[1]).await;
    assert_eq!(status, StatusCode::OK, "degraded is still ready: {body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["failing"], json!(["redis"]), "{body}");
    let metrics = cluster[0].metrics().await;
    let fallbacks: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gateway_redis_fallbacks_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(fallbacks > 0.0, "fallbacks are counted:\n{metrics}");

    redis.restart();
    for instance in both {
        wait_until("Redis back on every instance", || async {
            ready(instance).await.1["status"] == "ok"
        })
        .await;
    }
    assert!(searches(&both, &token, 5).await.is_empty());

    redis.freeze();
    let failures = searches(&both, &token, 10).await;
    redis.thaw();
    assert!(failures.is_empty(), "with Redis frozen: {failures:?}");
}

async fn postgres_stopped_under_load_keeps_proxying_and_loses_no_audit_row() {
    let postgres = ThrowawayPostgres::start();
    let env = InstanceEnv::default();
    let cluster = Cluster::start(2, &postgres.url(), &env).await;
    let both = [&cluster[0], &cluster[1]];
    let (agent, _) = cluster[0].create_agent("audited", "scraper").await;
    let (token, _) = cluster[0].mint(&agent).await;
    // The other instance learns of the agent through the feed before the outage.
    wait_until("the agent on the second instance", || async {
        cluster[1].introspect(&token).await["active"] == true
    })
    .await;
    assert!(searches(&both, &token, 10).await.is_empty());

    postgres.stop();
    let failures = searches(&both, &token, 40).await;
    assert!(
        failures.is_empty(),
        "proxying during the outage: {failures:?}"
    );
    let (status, body) = create_agent(&cluster[0], "late").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "store_unavailable");
    let (status, body) = cluster[1]
        .admin(Method::GET, "/api/proxy/logs?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "store_unavailable");
    let unavailable = "gateway_database_errors_total{kind=\"unavailable\"}";
    let metrics = cluster[0].metrics().await;
    assert!(
        metric_value(&metrics, unavailable) > 0.0,
        "the outage is counted:\n{metrics}"
    );
    // The copies stop being refreshed: their age grows past any poll interval.
    let access_age = "gateway_replicated_state_age_seconds{state=\"access\"}";
    wait_until("the access copy ages on the second instance", || async {
        metric_value(&cluster[1].metrics().await, access_age) >= 3.0
    })
    .await;

    postgres.resume();
    wait_until("the access copy current again", || async {
        metric_value(&cluster[1].metrics().await, access_age) < 3.0
    })
    .await;
    let acknowledged = 2 * (10 + 40);
    wait_until("every acknowledged request's audit row written", || async {
        let (status, logs) = cluster[0]
            .admin(Method::GET, "/api/proxy/logs?limit=1", None)
            .await;
        status == StatusCode::OK && logs["total"] == acknowledged
    })
    .await;
    for instance in both {
        let metrics = instance.metrics().await;
        assert_eq!(metric_value(&metrics, "gateway_audit_dropped_total"), 0.0);
    }
    let (status, _) = create_agent(&cluster[0], "after").await;
    assert_eq!(status, StatusCode::CREATED, "management is back");
}

/// The request deadline covers every step, not only the upstream call: with Redis frozen and
/// allowed a long wait, the rate-limit step would hold the request far past it.
async fn the_deadline_covers_a_step_stuck_on_redis() {
    let database = crate::common::TestDatabase::create(crate::common::Backend::Postgres).await;
    let redis = ThrowawayRedis::start();
    let env = InstanceEnv::default()
        .with("REDIS_URL", redis.url())
        .with("REDIS_TIMEOUT_MS", 10_000)
        .with("REQUEST_DEADLINE_MS", 300);
    let cluster = Cluster::start(1, &database.url, &env).await;
    let (agent, _) = cluster[0].create_agent("hurried", "scraper").await;
    let (token, _) = cluster[0].mint(&agent).await;
    assert_eq!(cluster[0].search(&token).await.0, StatusCode::OK);
    redis.freeze();
    let (status, body) = cluster[0].search(&token).await;
    redis.thaw();
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::GATEWAY_TIMEOUT, &json!("deadline_exceeded")),
        "{body}"
    );
}

on_postgres_within!(
    super::TEST_BOUND;
    redis_killed_or_frozen_degrades_the_cluster_and_it_recovers,
        postgres_stopped_under_load_keeps_proxying_and_loses_no_audit_row,
    the_deadline_covers_a_step_stuck_on_redis,
);
