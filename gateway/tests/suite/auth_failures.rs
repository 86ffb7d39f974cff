//! One client failing to authenticate over and over: past its limit its failures are
//! refused at once (429), without an audit row each, while its own valid requests and other
//! clients are served as before.

use crate::common::{
    read, secrets, settings, Backend, TestDatabase, TestGateway, ADMIN_KEY, SIGNING_SECRET,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::net::IpAddr;

const LIMIT: u32 = 5;

fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap()
}

async fn a_client_past_its_failures_is_refused_quietly_and_others_are_not(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut s = settings(&database.url, database.data_dir());
    s.auth_failures_per_minute = LIMIT;
    let gw = TestGateway::start_with(s, secrets(SIGNING_SECRET)).await;
    let attacker = client_from([127, 0, 0, 1]);
    let bystander = client_from([127, 0, 0, 3]);
    let forged = |client: &reqwest::Client| {
        client
            .post(gw.url("/api/proxy-request"))
            .json(&json!({"agent_token": "not-a-token", "tool": "serpapi", "action": "search", "params": {"q": "x"}}))
            .send()
    };
    let mut codes = Vec::new();
    for _ in 0..20 {
        let (status, body) = read(forged(&attacker).await.unwrap()).await;
        codes.push((
            status,
            body["code"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let allowed = codes
        .iter()
        .filter(|(s, c)| *s == StatusCode::FORBIDDEN && c == "invalid_token")
        .count();
    let limited = codes
        .iter()
        .filter(|(s, c)| *s == StatusCode::TOO_MANY_REQUESTS && c == "too_many_auth_failures")
        .count();
    assert_eq!(
        (allowed, limited),
        (LIMIT as usize, 20 - LIMIT as usize),
        "{codes:?}"
    );
    // Other kinds of failure from the same address share its limit...
    let wrong_key = attacker
        .get(gw.url("/api/agents"))
        .bearer_auth("not-the-admin-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(wrong_key.headers().contains_key("retry-after"));
    // ...its valid requests are served...
    let (status, logs) = gw
        .admin(Method::GET, "/api/proxy/logs?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    // ...and only the failures within the limit were audited one by one.
    assert_eq!(logs["total"], LIMIT, "{logs}");
    // Another client has a limit of its own.
    let (status, body) = read(forged(&bystander).await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_token"))
    );
    let own_key = bystander
        .get(gw.url("/api/agents"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(own_key.status(), StatusCode::OK);
    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("gateway_auth_failures_limited_total {}", 20 - LIMIT + 1)),
        "{metrics}"
    );
    gw.stop().await;
}

on_both_backends!(a_client_past_its_failures_is_refused_quietly_and_others_are_not);
