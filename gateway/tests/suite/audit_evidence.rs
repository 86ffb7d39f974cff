//! What the audit log keeps whatever callers do: an anonymous client's junk is limited per
//! address and pruned before any agent's row, and sampling never drops a call that changed
//! something.

use crate::audit_log::request_row;
use crate::common::{
    metric_value, proxy, secrets, settings, Backend, Fixture, TestDatabase, TestGateway,
    SIGNING_SECRET,
};
use gateway::config::Environment;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The attack: 5,000 unauthenticated `{}` bodies from one address, against a row bound
/// smaller than what they would write. Past the address's failure limit they are answered
/// 429 without a row; the rows they did write are pruned first; the agent's row stays.
async fn anonymous_junk_is_limited_and_never_evicts_an_agents_row(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("witness", "tester").await;
    let (token, _) = gw.mint(&agent).await;
    let (status, _, body) = proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "evidence"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let url = gw.url("/api/proxy-request");
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (gw.client.clone(), url.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::with_capacity(625);
                for _ in 0..625 {
                    let answer = client.post(&url).json(&json!({})).send().await.unwrap();
                    statuses.push(answer.status());
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for sender in senders {
        statuses.extend(sender.await.unwrap());
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused + limited, 5_000);
    // The limit's burst (60), and what it refills while the flood lasts (one a second).
    assert!(refused < 120, "{refused} answered with a row of their own");

    let (status, logs) = gw
        .admin(Method::GET, "/api/proxy/logs?limit=1000", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let written = logs["total"].as_i64().unwrap();
    assert_eq!(
        written,
        refused as i64 + 1,
        "one row per answered refusal, and the agent's"
    );
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "gateway_refusals_total{code=\"too_many_auth_failures\",stage=\"token\"}"
        ),
        limited as f64
    );

    // A bound below what was written: every anonymous row goes before the agent's.
    let bounds = gateway::audit::Bounds {
        retention: None,
        max_rows: Some(10),
    };
    let store = &gw.state.store;
    gateway::audit::pruning::pass(store, bounds, &gw.state.metrics)
        .await
        .unwrap();
    let kept = store.list_request_logs(100).await.unwrap();
    assert_eq!(kept.len(), 10);
    assert!(
        kept.iter()
            .any(|r| r.agent_id.as_deref() == Some(agent.as_str())),
        "the agent's row was pruned: {kept:?}"
    );
}

/// Anonymous rows go first even when they are the newest: 10 authenticated rows an hour
/// old and 3,000 anonymous ones after them, bound to 1,000, keep all 10 and the newest 990
/// anonymous rows.
async fn the_row_bound_prunes_anonymous_rows_first(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (store, metrics) = (&f.gateway.state.store, &f.gateway.state.metrics);
    let start = gateway::clock::Clock::SYSTEM.now_ms() - 3_600_000;
    let mut rows: Vec<_> = (0..3_010).map(|n| request_row(n, start + n)).collect();
    for row in &mut rows[10..] {
        row.agent_id = None;
    }
    store.insert_audit_batch(&rows, &[]).await.unwrap();
    let bounds = gateway::audit::Bounds {
        retention: None,
        max_rows: Some(1_000),
    };
    let outcome = gateway::audit::pruning::pass(store, bounds, metrics)
        .await
        .unwrap();
    assert_eq!(outcome.by_rows, 2_010);
    let kept = store.list_request_logs(1_000).await.unwrap();
    assert_eq!(kept.len(), 1_000);
    assert_eq!(kept.iter().filter(|r| r.agent_id.is_some()).count(), 10);
    assert_eq!(kept.first().map(|r| r.id.as_str()), Some("r03009"));
    assert_eq!(kept.last().map(|r| r.id.as_str()), Some("r00000"));
}

/// Sampling never leaves out a call that changed something: at a rate no draw meets, every
/// `gmail_send.send` (a `write` action) is written, while the reads beside it are not.
async fn sampling_keeps_every_sent_mail(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = settings(&database.url, database.data_dir());
    settings.environment = Environment::Development;
    settings.proxy.audit_sample_allowed = 1e-15;
    let gw = TestGateway::start_with(settings, secrets(SIGNING_SECRET)).await;
    let (agent, _) = gw.create_agent("mailer", "tester").await;
    let token = gw
        .mint_scoped(&agent, &["gmail_send"], &["read", "write"])
        .await;
    for n in 0..10 {
        let send = json!({"agent_token": token, "tool": "gmail_send", "action": "send",
                          "params": {"to": "a@b.co", "subject": format!("s{n}"), "text": "t"}});
        let (status, _, body) = proxy(&gw, send).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let profile =
            json!({"agent_token": token, "tool": "gmail_send", "action": "profile", "params": {}});
        let (status, _, body) = proxy(&gw, profile).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = gw
        .admin(Method::GET, "/api/proxy/logs?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["logs"].as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["send"; 10], "{rows:?}");
    assert!(rows.iter().all(|r| r["sampleRate"] == 1.0), "{rows:?}");
}

/// The attack: a rogue agent sends the victim's correlation id. Listing by correlation id
/// needs the agent, and the victim's listing holds the victim's call only; every row has an
/// id of the gateway's own.
async fn another_agents_rows_never_join_a_correlation_id(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (victim, _) = gw.create_agent("victim", "tester").await;
    let (rogue, _) = gw.create_agent("rogue", "tester").await;
    let call = |token: &str| {
        let body = json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}});
        gw.client
            .post(gw.url("/api/proxy-request"))
            .header("x-correlation-id", "case-42")
            .json(&body)
            .send()
    };
    let (victim_token, _) = gw.mint(&victim).await;
    let (rogue_token, _) = gw.mint(&rogue).await;
    assert_eq!(call(&victim_token).await.unwrap().status(), StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(call(&rogue_token).await.unwrap().status(), StatusCode::OK);
    }
    let (status, body) = gw
        .admin(Method::GET, "/api/proxy/logs?corrId=case-42", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let path = format!("/api/proxy/logs?corrId=case-42&agentId={victim}");
    let (status, body) = gw.admin(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["logs"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["agentId"], victim.as_str());
    let (_, all) = gw
        .admin(Method::GET, "/api/proxy/logs?limit=10", None)
        .await;
    let ids: std::collections::HashSet<&str> = all["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "a server-made id per row: {all}");
}

on_both_backends!(
    another_agents_rows_never_join_a_correlation_id,
    anonymous_junk_is_limited_and_never_evicts_an_agents_row,
    the_row_bound_prunes_anonymous_rows_first,
    sampling_keeps_every_sent_mail,
);
