//! Live mode against upstream servers started on 127.0.0.1 by each test: credentials,
//! success, retries, timeouts, the breaker opening, probing and closing, and the SSRF
//! guard of `http_fetch`.

use crate::common::{read, secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET};
use axum::extract::{Query, State};
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use gateway::config::{Settings, UpstreamMode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// What the fake search upstream answers: the first `failures` calls get `failure_status`
/// (or hang, when it is 0), later ones succeed.
pub(crate) struct Upstream {
    pub(crate) calls: AtomicU32,
    failures: AtomicU32,
    failure_status: u16,
}

async fn search(
    State(up): State<Arc<Upstream>>,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let call = up.calls.fetch_add(1, Ordering::SeqCst);
    if call < up.failures.load(Ordering::SeqCst) {
        if up.failure_status == 0 {
            std::future::pending::<()>().await;
        }
        return AxumStatus::from_u16(up.failure_status)
            .unwrap()
            .into_response();
    }
    Json(json!({"organic_results": [{"title": "live"}], "q": query.get("q"), "key_seen": query.get("api_key")}))
        .into_response()
}

/// About 1 MB of JSON that takes ~12 times its size as a parsed tree.
fn json_bomb() -> String {
    format!("[{}[]]", "[],".repeat(333_333))
}

pub(crate) async fn start_upstream(failures: u32, failure_status: u16) -> (String, Arc<Upstream>) {
    let up = Arc::new(Upstream {
        calls: AtomicU32::new(0),
        failures: AtomicU32::new(failures),
        failure_status,
    });
    let app = Router::new()
        .route("/search", get(search))
        .route("/page", get(|| async { "<h1>fetched</h1>" }))
        .route("/fail", get(|| async { AxumStatus::INTERNAL_SERVER_ERROR }))
        .route(
            "/to",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                (AxumStatus::FOUND, [("location", q["l"].clone())])
            }),
        )
        .route("/big", get(|| async { "b".repeat(4096) }))
        .route(
            "/bomb",
            get(|| async { ([("content-type", "application/json")], json_bomb()) }),
        )
        .with_state(Arc::clone(&up));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, up)
}

pub(crate) struct Live {
    pub(crate) gw: TestGateway,
    pub(crate) token: String,
    _database: TestDatabase,
}

pub(crate) async fn live(base: &str, tweak: impl FnOnce(&mut Settings)) -> Live {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut s = settings(&database.url, database.data_dir());
    s.proxy.upstream_mode = UpstreamMode::Live;
    s.proxy.serpapi_base_url = base.to_string();
    s.proxy.retry_base_delay_ms = 1;
    s.proxy.retry_max_delay_ms = 2;
    tweak(&mut s);
    let gw = TestGateway::start_with(s, secrets(SIGNING_SECRET)).await;
    let (agent, _) = gw.create_agent("live", "tester").await;
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(json!({"agent_id": agent, "tools": ["serpapi", "http_fetch"], "permissions": ["read"], "ttl_minutes": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["agent_token"].as_str().unwrap().to_string();
    Live {
        gw,
        token,
        _database: database,
    }
}

async fn set_key(gw: &TestGateway, key: &str) {
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/creds/set",
            Some(json!({"tool": "serpapi", "version": "v1", "credential": key})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/creds/activate",
            Some(json!({"id": body["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub(crate) async fn call(l: &Live, tool: &str, action: &str, params: Value) -> (StatusCode, Value) {
    let response = l
        .gw
        .client
        .post(l.gw.url("/api/proxy-request"))
        .json(&json!({"agent_token": l.token, "tool": tool, "action": action, "params": params}))
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn metric(gw: &TestGateway, line_start: &str) -> Option<String> {
    gw.metrics()
        .await
        .lines()
        .find(|l| l.starts_with(line_start))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_search_needs_an_active_credential_and_uses_it() {
    let (base, up) = start_upstream(0, 500).await;
    let l = live(&base, |_| {}).await;
    let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "tool_not_configured");
    assert_eq!(up.calls.load(Ordering::SeqCst), 0);

    set_key(&l.gw, "sk-live-123").await;
    let (status, body) = call(&l, "serpapi", "search", json!({"query": "rust"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["q"], "rust");
    assert_eq!(body["data"]["key_seen"], "sk-live-123");

    let (status, listing) = l.gw.admin(Method::GET, "/api/admin/creds", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!listing.to_string().contains("sk-live-123"), "never listed");
    assert_eq!(listing[0]["isActive"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_until_success() {
    let (base, up) = start_upstream(2, 503).await;
    let l = live(&base, |_| {}).await;
    set_key(&l.gw, "k").await;
    let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(up.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        metric(
            &l.gw,
            r#"gateway_retries_total{action="search",reason="5xx",tool="serpapi"}"#
        )
        .await
        .as_deref(),
        Some(r#"gateway_retries_total{action="search",reason="5xx",tool="serpapi"} 2"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_as_rate_limited() {
    let (base, up) = start_upstream(1, 429).await;
    let l = live(&base, |_| {}).await;
    set_key(&l.gw, "k").await;
    let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(up.calls.load(Ordering::SeqCst), 2);
    assert!(metric(
        &l.gw,
        r#"gateway_retries_total{action="search",reason="rate_limit",tool="serpapi"} 1"#
    )
    .await
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_ends_at_the_deadline() {
    let (base, _up) = start_upstream(u32::MAX, 0).await;
    let l = live(&base, |s| s.proxy.request_deadline_ms = 300).await;
    set_key(&l.gw, "k").await;
    let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["code"], "deadline_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_fast_fails_probes_and_closes() {
    let (base, up) = start_upstream(2, 500).await;
    let l = live(&base, |s| {
        s.proxy.breaker_consecutive_failures = 2;
        s.proxy.breaker_open_ms = 3_600_000;
    })
    .await;
    set_key(&l.gw, "k").await;
    for _ in 0..2 {
        let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["details"]["upstream_status"], 500);
    }
    let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "breaker_open");
    assert_eq!(
        up.calls.load(Ordering::SeqCst),
        2,
        "an open breaker calls nobody"
    );
    assert!(metric(&l.gw, r#"gateway_breaker_state{tool="serpapi"} 2"#)
        .await
        .is_some());
    // A caller's bad request is not an upstream fault and changes nothing.
    let (status, _) = call(&l, "serpapi", "search", json!({"num": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Time passes: the breaker half-opens, one probe succeeds, and it closes.
    l.gw.state
        .proxy
        .breakers
        .get(gateway::catalog::ToolName::Serpapi)
        .end_open_period();
    let (status, body) = call(&l, "serpapi", "search", json!({"q": "x"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(metric(&l.gw, r#"gateway_breaker_state{tool="serpapi"} 0"#)
        .await
        .is_some());
    let (status, _) = call(&l, "serpapi", "search", json!({"q": "y"})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fetch_refuses_private_destinations() {
    let (base, _up) = start_upstream(0, 500).await;
    let l = live(&base, |_| {}).await;
    for url in [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b:1::7f00:1]/",
        "http://2130706433/",
        "http://localhost/",
        &format!("{base}/page"),
    ] {
        let (status, body) = call(&l, "http_fetch", "get", json!({"url": url})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {body}");
        assert_eq!(body["code"], "destination_not_allowed", "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fetch_reaches_local_servers_when_allowed() {
    let (base, _up) = start_upstream(0, 500).await;
    let l = live(&base, |s| s.proxy.http_fetch_allow_private = true).await;
    let (status, body) = call(
        &l,
        "http_fetch",
        "get",
        json!({"url": format!("{base}/page")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"], "<h1>fetched</h1>");
    assert_eq!(body["data"]["status"], 200);
}
