//! Health, readiness and metrics.

use crate::common::cluster::{wait_until, Instance, InstanceEnv};
use crate::common::{proxy, Backend, Fixture};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Fails unless each of `lines` is a whole line of the metrics `text`.
fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in\n{text}"
        );
    }
}

async fn metrics_count_creations_issues_and_validations(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let (token, _) = f.gateway.mint(&agent).await;
    f.gateway.introspect(&token).await;
    f.gateway.introspect("garbage").await;
    let response = f
        .gateway
        .client
        .get(f.gateway.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert_lines(
        &text,
        &[
            "gateway_agent_creations_total 1",
            "gateway_token_generations_total 1",
            "gateway_token_validations_total{result=\"valid\"} 1",
            "gateway_token_validations_total{result=\"malformed\"} 1",
            "gateway_http_requests_total{code=\"201\",route=\"/api/create-agent\"} 1",
        ],
    );
    assert!(text.contains("gateway_http_request_duration_seconds_bucket{route=\"/api/admin/tokens/introspect\",le=\"0.0001\"}"));
    assert!(text.contains("process_resident_memory_bytes"));
    let build_info = format!(
        "gateway_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert_lines(&text, &[&build_info, "gateway_audit_queue_depth 0"]);
    assert!(text.contains("gateway_database_connections{state=\"in_use\"}"));
    assert!(!text.contains(&agent), "no agent id in any label");
}

async fn ready_reports_each_dependency(backend: Backend) {
    let f = Fixture::start(backend).await;
    let response = f
        .gateway
        .client
        .get(f.gateway.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["redis"], "not_configured");

    f.gateway.state.store.close().await;
    let response = f
        .gateway
        .client
        .get(f.gateway.url("/ready"))
        .send()
        .await
        .unwrap();
    // Degraded, not unready: proxying goes on from memory.
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["failing"], serde_json::json!(["database"]));
}

async fn health_reports_version_and_uptime(backend: Backend) {
    let f = Fixture::start(backend).await;
    let body: serde_json::Value = f
        .gateway
        .client
        .get(f.gateway.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime"].as_f64().unwrap() >= 0.0);
}

/// The layers every request passes: a request id on every answer (kept when the client sent
/// a valid one), the route counted by its template or as `unmatched`, and the upload route's
/// own body limit above the default one.
async fn every_answer_passes_the_common_layers(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let generated = gw.client.get(gw.url("/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a generated uuid: {id}");
    let kept = gw
        .client
        .get(gw.url("/no-such-route"))
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), StatusCode::NOT_FOUND);
    assert_eq!(kept.headers()["x-request-id"], "client-chosen-id");

    // 2 MiB: over the default limit, under the upload route's own.
    let upload = gw
        .client
        .put(gw.url("/api/admin/plugins/big"))
        .bearer_auth(crate::common::ADMIN_KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(
        upload.status(),
        StatusCode::BAD_REQUEST,
        "read, then refused as JSON"
    );

    assert_lines(
        &gw.metrics().await,
        &[
            "gateway_http_requests_total{code=\"200\",route=\"/health\"} 1",
            "gateway_http_requests_total{code=\"404\",route=\"unmatched\"} 1",
            "gateway_http_requests_total{code=\"400\",route=\"/api/admin/plugins/{name}\"} 1",
        ],
    );
}

/// The access line of a proxy call names it as its audit row does: one correlation id in
/// the log (also the span's `request_id`), the `X-Correlation-ID` answer header and the
/// audit row's `corrId`, with the agent, tool, action, status and, for a refusal, its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_line_names_the_call_as_its_audit_row_does() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("gw.db").display());
    let gw = Instance::start(
        &database,
        dir.path(),
        &InstanceEnv::default().with("LOG_FORMAT", "json"),
    )
    .await;
    let (agent, _) = gw.create_agent("logged", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    let call = |token: String| {
        let body = json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}});
        let api = &gw.api;
        async move {
            let (status, headers, _) = proxy(api, body).await;
            (
                status,
                headers["x-correlation-id"].to_str().unwrap().to_string(),
            )
        }
    };
    let (status, allowed) = call(token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = call("forged".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, logs) = gw.admin(Method::GET, "/api/proxy/logs?limit=2", None).await;
    let audited: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["corrId"].as_str().unwrap())
        .collect();
    assert!(audited.contains(&allowed.as_str()), "{logs}");

    let line_of = |id: &str| {
        let needle = format!("\"correlation_id\":\"{id}\"");
        gw.log_text()
            .lines()
            .find(|l| l.contains(&needle))
            .map(str::to_string)
    };
    wait_until("both access lines written", || async {
        line_of(&allowed).is_some() && line_of(&refused).is_some()
    })
    .await;
    let line = line_of(&allowed).unwrap();
    for field in [
        format!("\"request_id\":\"{allowed}\""),
        format!("\"agent\":\"{agent}\""),
        "\"tool\":\"serpapi\"".to_string(),
        "\"action\":\"search\"".to_string(),
        "\"status\":200".to_string(),
    ] {
        assert!(line.contains(&field), "{field} not in {line}");
    }
    let line = line_of(&refused).unwrap();
    assert!(
        line.contains("\"status\":403") && line.contains("\"code\":\"invalid_token\""),
        "{line}"
    );
    assert!(
        !line.contains("forged"),
        "a presented token never reaches the log: {line}"
    );
}

on_both_backends!(
    metrics_count_creations_issues_and_validations,
    ready_reports_each_dependency,
    health_reports_version_and_uptime,
    every_answer_passes_the_common_layers,
);

/// Series a rate or an alert reads exist at zero before their first event, so the first
/// interval of each is never lost: a retry, a binding's evaluations, each refusal, each
/// Redis fallback, each database error kind, each replicated copy's age, each pruning
/// reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_exist_at_zero_before_their_first_event() {
    let f = Fixture::with_default_plugins(Backend::Sqlite).await;
    let text = f.gateway.metrics().await;
    assert_lines(
        &text,
        &[
            r#"gateway_retries_total{action="search",reason="timeout",tool="serpapi"} 0"#,
            r#"gateway_retries_total{action="chat",reason="5xx",tool="openai"} 0"#,
            r#"gateway_plugin_evaluations_total{outcome="allow",plugin="spec-policy"} 0"#,
            r#"gateway_plugin_evaluations_total{outcome="fault",plugin="chaos"} 0"#,
            r#"gateway_refusals_total{code="permission_not_granted",stage="claims"} 0"#,
            r#"gateway_refusals_total{code="rate_limited",stage="rate_limit"} 0"#,
            r#"gateway_redis_fallbacks_total{reason="timeout",use="rate_limit"} 0"#,
            r#"gateway_audit_pruned_rows_total{reason="rows"} 0"#,
        ],
    );
    // Sending mail is not idempotent: never retried, so no series for it.
    assert!(
        !text.contains(r#"gateway_retries_total{action="send""#),
        "{text}"
    );
    // Process-wide (other tests in this process may have counted) or time-valued: present.
    for series in [
        r#"gateway_database_errors_total{kind="unavailable"} "#,
        r#"gateway_replicated_state_age_seconds{state="policies"} "#,
    ] {
        assert!(
            text.contains(series),
            "{series} missing in
{text}"
        );
    }
}
