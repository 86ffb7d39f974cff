//! A rogue agent against the proxy, in live mode against upstreams on 127.0.0.1: the
//! failures it causes itself stay its own, what it makes the gateway fetch stays within the
//! memory bounds, and a redirect cannot lead it past its domain policy.

use crate::common::{Backend, Fixture};
use crate::proxy_live::{call, live, start_upstream};
use gateway::config::UpstreamMode;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn failures_an_agent_causes_leave_other_destinations_flowing() {
    let (failing, _a) = start_upstream(0, 500).await;
    let (healthy, _b) = start_upstream(0, 500).await;
    let attacker = live(&failing, |s| {
        s.proxy.http_fetch_allow_private = true;
        s.proxy.breaker_consecutive_failures = 3;
        s.proxy.breaker_open_ms = 3_600_000;
        s.proxy.cache_enabled = false;
    })
    .await;
    // Bodies over the caller's own maxSize: the call's fault, never the destination's.
    for _ in 0..6 {
        let (status, body) = call(
            &attacker,
            "http_fetch",
            "get",
            json!({"url": format!("{healthy}/big"), "maxSize": 10}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["code"], "upstream_answer_too_large", "{body}");
    }
    // 5xx at an address the attacker chose: that destination's breaker opens.
    for _ in 0..3 {
        let (status, body) = call(
            &attacker,
            "http_fetch",
            "get",
            json!({"url": format!("{failing}/fail")}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    }
    let (status, body) = call(
        &attacker,
        "http_fetch",
        "get",
        json!({"url": format!("{failing}/page")}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "breaker_open");

    // Another agent's fetches elsewhere are untouched.
    let gw = &attacker.gw;
    let (victim, _) = gw.create_agent("victim", "tester").await;
    let token = gw.mint_scoped(&victim, &["http_fetch"], &["read"]).await;
    let response = gw
        .client
        .post(gw.url("/api/proxy-request"))
        .json(
            &json!({"agent_token": token, "tool": "http_fetch", "action": "get",
                      "params": {"url": format!("{healthy}/page")}}),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = crate::common::read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"], "<h1>fetched</h1>");
}

async fn fetched_json_bombs_and_the_cache_stay_within_their_bounds() {
    let (upstream, _up) = start_upstream(0, 500).await;
    let cache_bytes: u64 = 8 << 20;
    let l = live(&upstream, |s| {
        s.proxy.http_fetch_allow_private = true;
        s.proxy.cache_max_bytes = cache_bytes;
    })
    .await;
    for i in 0..24 {
        let (status, body) = call(
            &l,
            "http_fetch",
            "get",
            json!({"url": format!("{upstream}/bomb?i={i}")}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", body["code"]);
        // Handed back as text: no tree ~12 times the body's size was built.
        let text = body["data"]["data"]
            .as_str()
            .expect("the bomb comes back as text");
        assert!(text.len() > 900_000);
    }
    let held = l.gw.state.proxy.cache.weighed_bytes().await;
    assert!(held > 0 && held <= cache_bytes, "cache holds {held} bytes");
}

async fn a_redirect_to_a_blocked_domain_is_refused_at_the_hop() {
    let (upstream, _up) = start_upstream(0, 500).await;
    let port = upstream.rsplit(':').next().unwrap().to_string();
    let f = Fixture::with_default_plugins_and(Backend::Sqlite, |s| {
        s.proxy.upstream_mode = UpstreamMode::Live;
        s.proxy.http_fetch_allow_private = true;
        s.proxy.cache_enabled = false;
    })
    .await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("redirected", "tester").await;
    let spec = json!({"scopes": ["http_fetch:get"],
                      "guards": {"allowedDomains": ["127.0.0.1"], "blockedDomains": ["localhost"]}});
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/policies",
            Some(json!({"name": "fetch-local", "agentId": agent, "spec": spec})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = gw.mint_scoped(&agent, &["http_fetch"], &["read"]).await;
    let fetch = |url: String| {
        let token = token.clone();
        async move {
            let (status, _, body) = crate::common::proxy(
                gw,
                json!({"agent_token": token, "tool": "http_fetch", "action": "get", "params": {"url": url}}),
            )
            .await;
            (status, body)
        }
    };
    // A hop within the allowed domain is followed.
    let (status, body) = fetch(format!("{upstream}/to?l=/page")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"], "<h1>fetched</h1>");
    // A hop to a blocked domain is refused, naming the hop.
    let blocked = format!("http://localhost:{port}/page");
    let (status, body) = fetch(format!("{upstream}/to?l={blocked}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "policy_denied", "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("redirect to {blocked}")),
        "{reason}"
    );
    // Straight to it: refused as well, without any hop.
    let (status, body) = fetch(blocked).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "policy_denied", "{body}");
}

async fn line_breaks_of_every_kind_never_reach_a_mail_header() {
    let f = Fixture::start(Backend::Sqlite).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("mailer", "engager").await;
    let token = gw
        .mint_scoped(&agent, &["gmail_send"], &["read", "write"])
        .await;
    for separator in ["\r\n", "\u{b}", "\u{c}", "\u{85}", "\u{2028}", "\u{2029}"] {
        for field in ["cc", "bcc", "subject"] {
            let mut params = json!({"to": "a@example.com", "subject": "s", "text": "t"});
            params[field] = json!(format!("x@example.com{separator}Bcc: victim@example.com"));
            let (status, _, body) = crate::common::proxy(
                gw,
                json!({"agent_token": token, "tool": "gmail_send", "action": "send", "params": params}),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{field} {separator:?}: {body}"
            );
            assert_eq!(body["code"], "invalid_params", "{body}");
        }
    }
}

async fn one_agent_cannot_take_every_slot_of_a_tool() {
    // The first 100 searches of `slow` hang until the request's deadline.
    let (slow, _up) = start_upstream(100, 0).await;
    let (healthy, _) = start_upstream(0, 500).await;
    let attacker = std::sync::Arc::new(
        live(&slow, |s| {
            s.proxy.http_fetch_allow_private = true;
            s.proxy.cache_enabled = false;
            s.proxy.bulkhead_concurrency = 4;
            s.proxy.bulkhead_queue = 0;
            s.proxy.bulkhead_per_agent = 2;
            s.proxy.request_deadline_ms = 5_000;
        })
        .await,
    );
    let hanging: Vec<_> = (0..4)
        .map(|_| {
            let (attacker, url) = (
                std::sync::Arc::clone(&attacker),
                format!("{slow}/search?q=x"),
            );
            tokio::spawn(
                async move { call(&attacker, "http_fetch", "get", json!({"url": url})).await },
            )
        })
        .collect();
    // Two of the attacker's fetches hang in the upstream; the other two are refused at once
    // (without a share they would take the tool's last two slots).
    let mut pending = hanging;
    for _ in 0..2 {
        let ((status, body), rest) = first_finished(pending).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["code"], "agent_calls_in_flight", "{body}");
        pending = rest;
    }
    // Another agent still finds slots of the tool free.
    let gw = &attacker.gw;
    let (victim, _) = gw.create_agent("patient", "tester").await;
    let token = gw.mint_scoped(&victim, &["http_fetch"], &["read"]).await;
    let (status, _, body) = crate::common::proxy(
        gw,
        json!({"agent_token": token, "tool": "http_fetch", "action": "get",
               "params": {"url": format!("{healthy}/page")}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for handle in pending {
        let (status, body) = handle.await.unwrap();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    }
}

/// The output of the first of `handles` to finish, and the others.
async fn first_finished<T>(
    mut handles: Vec<tokio::task::JoinHandle<T>>,
) -> (T, Vec<tokio::task::JoinHandle<T>>) {
    use std::future::Future;
    let (index, output) = std::future::poll_fn(|cx| {
        for (i, handle) in handles.iter_mut().enumerate() {
            if let std::task::Poll::Ready(output) = std::pin::Pin::new(handle).poll(cx) {
                return std::task::Poll::Ready((i, output.expect("the call task")));
            }
        }
        std::task::Poll::Pending
    })
    .await;
    drop(handles.remove(index));
    (output, handles)
}

on_sqlite!(
    failures_an_agent_causes_leave_other_destinations_flowing,
    fetched_json_bombs_and_the_cache_stay_within_their_bounds,
    a_redirect_to_a_blocked_domain_is_refused_at_the_hop,
    line_breaks_of_every_kind_never_reach_a_mail_header,
    one_agent_cannot_take_every_slot_of_a_tool,
);
