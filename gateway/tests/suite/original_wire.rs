//! Compatibility with the original gateway's clients, written from its specification
//! (`original-gateway.md`, sections 1.2 to 1.4), not from any client's code: tokens minted
//! with action-scoped permissions, proxy requests that carry `token_id` and
//! `proof_payload`, and every refusal counted, each answer checked for its status and
//! envelope.

use crate::common::{metric_value, proxy, wasm_base64, Backend, Fixture, TestGateway};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn mint(
    gw: &TestGateway,
    agent: &str,
    tools: &[&str],
    permissions: &[&str],
) -> (StatusCode, Value) {
    gw.admin(
        Method::POST,
        "/api/generate-token",
        Some(json!({"agent_id": agent, "tools": tools, "permissions": permissions, "ttl_minutes": 30})),
    )
    .await
}

fn call(token: &str, tool: &str, action: &str, params: Value) -> Value {
    json!({"agent_token": token, "tool": tool, "action": action, "params": params})
}

fn search(token: &str) -> Value {
    call(token, "serpapi", "search", json!({"q": "rust"}))
}

/// An error answer: the status, `{error, code}` with the given code, and the message.
fn assert_refused(answer: (StatusCode, Value), status: StatusCode, code: &str, error: &str) {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["error"], error, "{body}");
}

fn refusals(metrics: &str, stage: &str, code: &str) -> f64 {
    metric_value(
        metrics,
        &format!("gateway_refusals_total{{code=\"{code}\",stage=\"{stage}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_clients_wire_holds() {
    let f = Fixture::start(Backend::Sqlite).await;
    let gw = &f.gateway;

    // Every refusal counter exists at zero before the first call.
    let start = gw.metrics().await;
    for (stage, refusal) in gateway::error::Refusal::counted() {
        let (stage, code) = (stage.as_str(), refusal.code());
        let line = format!("gateway_refusals_total{{code=\"{code}\",stage=\"{stage}\"}} 0");
        assert!(start.contains(&line), "{line} missing:\n{start}");
    }

    // 1.2: a token minted with the original clients' action-scoped permissions: 201 with
    // {agent_token, token_id, expires_at, agent_name}; introspection shows them as minted.
    let (agent, _) = gw.create_agent("original-client", "integration").await;
    let scoped = ["serpapi:search", "http_fetch:get", "gmail_send:send"];
    let (status, minted) = mint(
        gw,
        &agent,
        &["serpapi", "http_fetch", "gmail_send"],
        &scoped,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    for field in ["agent_token", "token_id", "expires_at", "agent_name"] {
        assert!(minted[field].is_string(), "{field}: {minted}");
    }
    let token = minted["agent_token"].as_str().unwrap().to_string();
    let token_id = minted["token_id"].as_str().unwrap().to_string();
    let seen = gw.introspect(&token).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["permissions"], json!(scoped), "{seen}");
    let (status, every) = mint(gw, &agent, &["serpapi"], &["serpapi:*"]).await;
    assert_eq!(status, StatusCode::CREATED, "{every}");

    // An agent's maximum scope clips mints in the same vocabulary: a scraper may have
    // `read` (serpapi and http_fetch), so `serpapi:search` is within it, `serpapi:*` too
    // (every serpapi action reads), and `gmail_send:send` is not.
    let (scraper, _) = gw.create_agent("scoped-scraper", "scraper").await;
    for (permission, within) in [
        ("serpapi:search", true),
        ("serpapi:*", true),
        ("http_fetch:get", true),
    ] {
        let tool = permission.split(':').next().unwrap();
        let (status, body) = mint(gw, &scraper, &[tool], &[permission]).await;
        assert_eq!(
            status == StatusCode::CREATED,
            within,
            "{permission}: {body}"
        );
    }
    let (status, body) = mint(gw, &scraper, &["serpapi"], &["write"]).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("scope_not_allowed"))
    );

    // Forms that name nothing are refused with the valid forms.
    for bad in ["serpapi:nope", "nope:search", "admin", "serpapi:"] {
        let (status, body) = mint(gw, &agent, &["serpapi"], &[bad]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_scope", "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("<tool>:<action>"),
            "{body}"
        );
    }

    // 1.4 step 17: a covered call answers {success, data, metadata{agent_id, agent_name,
    // tool, action, response_time_ms}}.
    for token in [&token, every["agent_token"].as_str().unwrap()] {
        let (status, _, body) = proxy(gw, search(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["success"], true);
        let metadata = &body["metadata"];
        assert_eq!(metadata["agent_id"], agent.as_str());
        assert_eq!(
            (&metadata["tool"], &metadata["action"]),
            (&json!("serpapi"), &json!("search"))
        );
        assert!(metadata["agent_name"].is_string() && metadata["response_time_ms"].is_number());
    }
    // An action of a granted tool that no permission covers, and a tool not granted.
    let head = call(
        &token,
        "http_fetch",
        "head",
        json!({"url": "https://example.com"}),
    );
    let (status, _, body) = proxy(gw, head).await;
    assert_refused(
        (status, body.clone()),
        StatusCode::FORBIDDEN,
        "permission_not_granted",
        body["error"].as_str().unwrap_or_default(),
    );
    let chat = call(&token, "openai", "chat", json!({"input": "hi"}));
    let (status, _, body) = proxy(gw, chat).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("tool_not_granted"))
    );

    // 1.4 step 3: provenance. Its own id (with a payload) passes; the payload alone is
    // ignored; an id without a payload is 400; another token's id is a failed proof, and a
    // revoked one's id is refused as revoked.
    let with = |fields: Value| {
        let mut body = search(&token);
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        body
    };
    let (status, _, body) = proxy(
        gw,
        with(json!({"token_id": token_id, "proof_payload": "{}"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = proxy(gw, with(json!({"proof_payload": "anything"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = proxy(gw, with(json!({"token_id": token_id}))).await;
    assert_refused(
        (status, body),
        StatusCode::BAD_REQUEST,
        "proof_payload_required",
        "Token provenance validation requires proof_payload when token_id is provided.",
    );
    let other = every["token_id"].as_str().unwrap();
    let (status, _, body) =
        proxy(gw, with(json!({"token_id": other, "proof_payload": "{}"}))).await;
    assert_refused(
        (status, body),
        StatusCode::FORBIDDEN,
        "token_mismatch",
        "Token proof verification failed",
    );
    let (status, revoked) = gw
        .admin(
            Method::POST,
            &format!("/api/admin/tokens/{other}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let (status, _, body) =
        proxy(gw, with(json!({"token_id": other, "proof_payload": "{}"}))).await;
    assert_refused(
        (status, body),
        StatusCode::FORBIDDEN,
        "token_revoked",
        "Token has been revoked",
    );
    let (status, _, body) = proxy(gw, search(other_token(&every))).await;
    assert_refused(
        (status, body),
        StatusCode::FORBIDDEN,
        "token_revoked",
        "Token has been revoked",
    );

    // 1.4 step 10: a policy refusal is {error: "Policy denied", reason} with its code.
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(
                json!({"wasm_base64": wasm_base64("target/plugin-fixtures", "deny-all"),
                        "binding": {"tools": ["serpapi"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, body) = proxy(gw, search(&token)).await;
    assert_refused(
        (status, body.clone()),
        StatusCode::FORBIDDEN,
        "policy_denied",
        "Policy denied",
    );
    assert!(body["reason"].is_string(), "{body}");

    // Every refusal above is counted once, by stage and code.
    let metrics = gw.metrics().await;
    for (stage, code, n) in [
        ("claims", "permission_not_granted", 1.0),
        ("claims", "tool_not_granted", 1.0),
        ("token", "token_mismatch", 1.0),
        ("token", "token_revoked", 2.0),
        ("policy", "policy_denied", 1.0),
        ("rate_limit", "rate_limited", 0.0),
    ] {
        assert_eq!(
            refusals(&metrics, stage, code),
            n,
            "{stage} {code}:\n{metrics}"
        );
    }
    // The original's family keeps its meaning: policy refusals by tool and action.
    assert_eq!(
        metric_value(
            &metrics,
            "gateway_policy_denials_total{action=\"search\",code=\"deny_all\",tool=\"serpapi\"}"
        ),
        1.0,
        "{metrics}"
    );
}

fn other_token(minted: &Value) -> &str {
    minted["agent_token"].as_str().unwrap()
}
