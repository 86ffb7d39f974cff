//! Policies API, the default plugins evaluating them, chaos rules at runtime and the plugin
//! admin API, over HTTP against SQLite and PostgreSQL.

use crate::common::{
    metric_value, proxy, secrets, settings, wasm_base64, Backend, Fixture, TestDatabase,
    TestGateway, SIGNING_SECRET,
};
use gateway::config::Environment;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// 2026-01-05 (a Monday) 12:00 UTC: inside every default schedule but the engager's.
const MONDAY_NOON_UTC: u64 = 1_767_614_400_000;

async fn evaluate(
    f: &Fixture,
    agent: &str,
    role: &str,
    tool: &str,
    action: &str,
    params: Value,
) -> Value {
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/admin/plugins/evaluate",
            Some(
                json!({"agent_id": agent, "agent_role": role, "tool": tool, "action": action,
                        "params": params, "now_ms": MONDAY_NOON_UTC, "seed": 1}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn default_role_policies_are_seeded_and_enforced(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let (status, policies) = f.gateway.admin(Method::GET, "/api/policies", None).await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<&str> = policies
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["scraper", "enricher", "engager"]);

    let (agent, _) = f.gateway.create_agent("s", "scraper").await;
    let allowed = evaluate(
        &f,
        &agent,
        "scraper",
        "serpapi",
        "search",
        json!({"q": "rust"}),
    )
    .await;
    assert_eq!(allowed["policy"]["decision"], "allow", "{allowed}");
    let denied = evaluate(&f, &agent, "scraper", "gmail_send", "send", json!({})).await;
    assert_eq!(denied["policy"]["code"], "scope_not_allowed");
    let lookalike = evaluate(
        &f,
        &agent,
        "scraper",
        "http_fetch",
        "get",
        json!({"url": "https://evilgoogle.com"}),
    )
    .await;
    assert_eq!(lookalike["policy"]["code"], "domain_not_allowed");
    let unknown_role = evaluate(&f, &agent, "nobody", "serpapi", "search", json!({})).await;
    assert_eq!(
        unknown_role["policy"]["code"], "scope_not_allowed",
        "no policy denies everything"
    );
}

async fn the_dry_run_consumes_no_quota(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let (agent, _) = f.gateway.create_agent("s", "scraper").await;
    let quota = json!({"scopes": ["serpapi:search"],
                       "quotas": [{"action": "serpapi:search", "limit": 1, "window": "1h",
                                   "resetStrategy": "fixed"}]});
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/policies",
            Some(json!({"name": "one a day", "agentId": agent, "spec": quota})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A quota of one: a dry run that consumed would deny the second ask.
    for ask in 0..3 {
        let asked = evaluate(
            &f,
            &agent,
            "scraper",
            "serpapi",
            "search",
            json!({"q": "x"}),
        )
        .await;
        assert_eq!(asked["policy"]["decision"], "allow", "ask {ask}: {asked}");
    }
}

async fn a_failing_response_filter_is_audited_as_a_policy_failure(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let s = settings(&database.url, database.data_dir());
    std::fs::create_dir_all(&s.plugins_dir).unwrap();
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugin-fixtures/broken-filter.wasm");
    std::fs::copy(fixture, s.plugins_dir.join("broken-filter.wasm")).expect("run `make plugins`");
    std::fs::write(
        s.plugins_dir.join("plugins.toml"),
        "[[binding]]\nplugin = \"broken-filter.wasm\"\ntools = [\"serpapi\"]\n",
    )
    .unwrap();
    let gw = TestGateway::start_with(s, secrets(SIGNING_SECRET)).await;
    let (agent, _) = gw.create_agent("filtered", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    let (status, _, body) = proxy(
        &gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}}),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("policy_error"))
    );
    let (_, logs) = gw.admin(Method::GET, "/api/proxy/logs?limit=1", None).await;
    assert_eq!(logs["logs"][0]["policyDecision"], "error", "{logs}");
    let (_, decisions) = gw
        .admin(
            Method::GET,
            &format!("/api/policy-logs?agentId={agent}"),
            None,
        )
        .await;
    let decisions: Vec<&str> = decisions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert!(decisions.contains(&"error"), "{decisions:?}");
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "gateway_policy_denials_total{action=\"search\",code=\"policy_error\",tool=\"serpapi\"}"
        ),
        1.0,
        "{metrics}"
    );
}

async fn agent_policy_extends_its_role_and_is_managed_through_the_api(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let (agent, _) = f.gateway.create_agent("s", "scraper").await;
    let spec = json!({"scopes": ["gmail_send:profile"], "ignoredKey": 1});
    let (status, created) = f
        .gateway
        .admin(
            Method::POST,
            "/api/policies",
            Some(json!({"name": "extra", "agentId": agent, "spec": spec})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created["spec"].is_string(),
        "create returns spec as a string, like the original"
    );
    assert!(
        created["spec"].as_str().unwrap().contains("ignoredKey"),
        "stored as sent: the gateway does not read inside a policy (spec-policy ignores the key)"
    );
    let id = created["id"].as_str().unwrap().to_string();
    let hash = created["specHash"].as_str().unwrap().to_string();

    let profile = evaluate(&f, &agent, "scraper", "gmail_send", "profile", json!({})).await;
    assert_eq!(profile["policy"]["decision"], "allow", "{profile}");
    let (_, merged) = f
        .gateway
        .admin(Method::GET, &format!("/api/policies/merged/{agent}"), None)
        .await;
    assert_eq!(merged["agentRole"], "scraper");
    assert_eq!(
        merged["sourcePolicies"].as_array().unwrap().last().unwrap(),
        &json!(id)
    );
    assert!(merged["mergedSpec"]["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("serpapi:search")));

    let (status, patched) = f
        .gateway
        .admin(
            Method::PATCH,
            &format!("/api/policies/{id}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["active"], false);
    let profile = evaluate(&f, &agent, "scraper", "gmail_send", "profile", json!({})).await;
    assert_eq!(
        profile["policy"]["code"], "scope_not_allowed",
        "inactive policy no longer applies"
    );

    let (_, patched) = f
        .gateway
        .admin(Method::PATCH, &format!("/api/policies/{id}"),
               Some(json!({"spec": {"scopes": ["gmail_send:profile"], "guards": {"maxRequestSize": 5}}})))
        .await;
    assert_ne!(
        patched["specHash"],
        json!(hash),
        "nested fields change the hash"
    );

    let (status, _) = f
        .gateway
        .admin(Method::DELETE, &format!("/api/policies/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = f
        .gateway
        .admin(Method::GET, &format!("/api/policies/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "policy_not_found");
}

async fn invalid_policies_are_refused_with_details(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let (agent, _) = f.gateway.create_agent("s", "scraper").await;
    let good = json!({"scopes": ["serpapi:search"]});
    let cases = [
        (
            json!({"name": "x", "spec": good}),
            StatusCode::BAD_REQUEST,
            "missing_target",
        ),
        (
            json!({"name": "x", "spec": good, "role": "r", "agentId": agent}),
            StatusCode::BAD_REQUEST,
            "ambiguous_target",
        ),
        (
            json!({"name": "x", "spec": good, "agentId": "00000000-0000-4000-8000-000000000000"}),
            StatusCode::NOT_FOUND,
            "agent_not_found",
        ),
        (
            json!({"name": "", "spec": good, "role": "r"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"name": "x", "role": "r", "spec": {"scopes": ["serpapi:fly"]}}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"name": "x", "role": "r", "spec": {"scopes": "all"}}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"name": "x", "role": "r", "spec": {"scopes": ["serpapi:search"], "schedule": {"timezone": "Moon/Base"}}}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = f
            .gateway
            .admin(Method::POST, "/api/policies", Some(body.clone()))
            .await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    // The problems are the policy plugin's own words.
    let (_, answer) = f
        .gateway
        .admin(
            Method::POST,
            "/api/policies",
            Some(json!({"name": "x", "role": "r", "spec": {"scopes": ["serpapi:fly"]}})),
        )
        .await;
    assert!(
        answer
            .to_string()
            .contains(r#"spec.scopes[0]: unknown tool:action \"serpapi:fly\""#),
        "{answer}"
    );
    let (_, all) = f.gateway.admin(Method::GET, "/api/policies", None).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "only the seeded defaults");
    let (status, logs) = f
        .gateway
        .admin(Method::GET, "/api/policy-logs?limit=10", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs.is_array());
}

async fn chaos_rules_change_at_runtime(backend: Backend) {
    let f =
        Fixture::with_default_plugins_and(backend, |s| s.environment = Environment::Development)
            .await;
    let (agent, _) = f.gateway.create_agent("s", "scraper").await;
    let before = evaluate(&f, &agent, "scraper", "serpapi", "search", json!({})).await;
    assert_eq!(before["chaos"]["fault"], "none");

    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/admin/chaos/tool",
            Some(json!({"tool": "serpapi", "mode": "500", "pct": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["activeChaos"][0][0], "serpapi");
    let during = evaluate(&f, &agent, "scraper", "serpapi", "search", json!({})).await;
    assert_eq!(
        during["chaos"],
        json!({"fault": "error", "status": 500, "message": "Chaos: simulated 500 error"})
    );
    let other_tool = evaluate(
        &f,
        &agent,
        "scraper",
        "http_fetch",
        "get",
        json!({"url": "https://google.com"}),
    )
    .await;
    assert_eq!(other_tool["chaos"]["fault"], "none");

    let (status, _) = f
        .gateway
        .admin(Method::DELETE, "/api/admin/chaos/tool/serpapi", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = evaluate(&f, &agent, "scraper", "serpapi", "search", json!({})).await;
    assert_eq!(after["chaos"]["fault"], "none");

    for bad in [
        json!({"tool": "teleport", "mode": "500", "pct": 1}),
        json!({"tool": "serpapi", "mode": "boom", "pct": 1}),
        json!({"tool": "serpapi", "mode": "500", "pct": 101}),
    ] {
        let (status, body) = f
            .gateway
            .admin(Method::POST, "/api/admin/chaos/tool", Some(bad))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("validation_failed"))
        );
    }
}

async fn chaos_changes_are_refused_in_production(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/admin/chaos/tool",
            Some(json!({"tool": "serpapi", "mode": "500", "pct": 100})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("chaos_not_allowed"))
    );
    let (status, body) = f.gateway.admin(Method::GET, "/api/admin/chaos", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"activeChaos": []})));
}

async fn plugin_admin_lists_reloads_and_reports_errors(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let (status, body) = f
        .gateway
        .admin(Method::GET, "/api/admin/plugins", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["spec-policy", "chaos"]);
    assert_eq!(body["plugins"][0]["world"], "policy");
    assert_eq!(body["plugins"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(body["plugins"][0]["reuse_instances"], true);
    assert!(body["last_error"].is_null());

    let (status, body) = f
        .gateway
        .admin(Method::POST, "/api/admin/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let dir = f.gateway.state.config.settings.plugins_dir.clone();
    std::fs::write(
        dir.join("plugins.toml"),
        "[[binding]]\nplugin = \"missing.wasm\"\ntools = [\"*\"]\n",
    )
    .unwrap();
    let (status, body) = f
        .gateway
        .admin(Method::POST, "/api/admin/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "plugin_invalid");
    let (_, listed) = f
        .gateway
        .admin(Method::GET, "/api/admin/plugins", None)
        .await;
    assert_eq!(
        listed["plugins"].as_array().unwrap().len(),
        2,
        "previous set still live"
    );
    assert!(listed["last_error"]["error"]
        .as_str()
        .unwrap()
        .contains("missing.wasm"));
}

/// spec-policy asks for its response filter (`allow-and-filter`) only when the agent's
/// policies have response rules, and then it filters: the gateway calls it exactly then.
async fn response_filter_runs_when_the_policy_has_response_rules(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("filtered", "tester").await;
    let filter_calls = || {
        gw.state
            .metrics
            .plugin_evaluations
            .with_label_values(&["spec-policy", "filtered"])
            .get()
    };
    let (status, created) = gw
        .admin(
            Method::POST,
            "/api/policies",
            Some(
                json!({"name": "search", "agentId": agent, "spec": {"scopes": ["serpapi:search"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (token, _) = gw.mint(&agent).await;
    let search = |q: &str| {
        let body = json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": q}});
        async move {
            let (status, _, body) = crate::common::proxy(gw, body).await;
            (status, body)
        }
    };

    let (status, body) = search("plain").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["results"][0]["title"], "Result 1 for plain");
    assert_eq!(filter_calls(), 0, "no response rules: no filter call");

    let path = format!("/api/policies/{}", created["id"].as_str().unwrap());
    let spec =
        json!({"scopes": ["serpapi:search"], "responseFilters": {"redactFields": ["title"]}});
    let (status, patched) = gw
        .admin(Method::PATCH, &path, Some(json!({"spec": spec})))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, body) = search("secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["results"][0]["title"], "[REDACTED]", "{body}");
    assert_eq!(
        body["data"]["results"][0]["url"],
        "https://example.com/secret/1"
    );
    assert_eq!(filter_calls(), 1);

    // Rules gone: no filter call again.
    let plain = json!({"scopes": ["serpapi:search"]});
    gw.admin(Method::PATCH, &path, Some(json!({"spec": plain})))
        .await;
    let (status, body) = search("again").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["results"][0]["title"], "Result 1 for again");
    assert_eq!(filter_calls(), 1);
}

/// Removing or emptying `plugins.toml` at runtime never turns enforcement off: the reload is
/// refused and the live set kept.
async fn a_missing_or_empty_manifest_keeps_the_live_set(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let gw = &f.gateway;
    let manifest = gw.state.config.settings.plugins_dir.join("plugins.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    for change in ["remove", "empty", "comments only"] {
        match change {
            "remove" => std::fs::remove_file(&manifest).unwrap(),
            "empty" => std::fs::write(&manifest, "").unwrap(),
            _ => std::fs::write(&manifest, "# every binding commented out\n").unwrap(),
        }
        let (status, body) = gw
            .admin(Method::POST, "/api/admin/plugins/reload", None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{change}: {body}");
        let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
        assert_eq!(
            listed["plugins"].as_array().unwrap().len(),
            2,
            "{change}: {listed}"
        );
        assert!(
            listed["last_error"]["error"]
                .as_str()
                .unwrap()
                .contains("plugins.toml is missing or binds nothing"),
            "{change}: {listed}"
        );
        // The policy still decides.
        let (agent, _) = gw.create_agent("s", "scraper").await;
        let denied = evaluate(&f, &agent, "scraper", "gmail_send", "send", json!({})).await;
        assert_eq!(denied["policy"]["code"], "scope_not_allowed", "{change}");
    }
    std::fs::write(&manifest, good).unwrap();
    let (status, body) = gw
        .admin(Method::POST, "/api/admin/plugins/reload", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// In production, a start where a tool has no policy plugin bound is refused, naming the
/// tools; development starts (and warns).
async fn production_refuses_to_start_with_a_tool_no_policy_covers(backend: Backend) {
    use crate::common::{install_default_plugins, secrets, settings, TestDatabase, SIGNING_SECRET};
    use gateway::config::{Config, Environment};
    let database = TestDatabase::create(backend).await;
    let start = |tweak: &dyn Fn(&mut gateway::config::Settings)| {
        let mut s = settings(&database.url, database.data_dir());
        s.policy_bindings_required = true;
        tweak(&mut s);
        gateway::app::build(
            Config {
                settings: s,
                secrets: secrets(SIGNING_SECRET),
            },
            crate::common::host(),
        )
    };
    // No plugin directory at all.
    let refused = start(&|s| s.plugins_dir = s.data_dir.join("nowhere")).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(
        message.contains("no policy plugin is bound to serpapi, openai, gmail_send, http_fetch"),
        "{message}"
    );
    // A manifest that binds one tool only.
    let partial = database.data_dir().join("partial");
    install_default_plugins(&partial);
    std::fs::write(
        partial.join("plugins.toml"),
        "[[binding]]\nplugin = \"spec-policy.wasm\"\ntools = [\"serpapi\"]\nconfig_from = \"policies\"\n",
    )
    .unwrap();
    let refused = start(&|s| s.plugins_dir = partial.clone()).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(
        message.contains("bound to openai, gmail_send, http_fetch"),
        "{message}"
    );
    assert!(message.contains("POLICY_BINDINGS_REQUIRED"), "{message}");
    // Development starts all the same; so does production with every tool covered.
    assert!(start(&|s| {
        s.plugins_dir = partial.clone();
        s.environment = Environment::Development;
    })
    .await
    .is_ok());
    let full = database.data_dir().join("full");
    install_default_plugins(&full);
    assert!(start(&|s| s.plugins_dir = full.clone()).await.is_ok());
}

/// A newer policy plugin, uploaded to the running gateway, brings a policy field the gateway
/// has never heard of: policies using it are validated by the plugin, stored as sent, and
/// enforced. No gateway rebuild, no restart.
async fn a_newer_policy_plugin_adds_a_policy_field_at_runtime(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let gw = &f.gateway;
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/spec-policy-plus",
            Some(json!({
                "wasm_base64": wasm_base64("target/plugin-fixtures", "spec-policy-plus"),
                "binding": {"tools": ["*"], "config_from": "policies", "world": "policy"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (agent, _) = gw.create_agent("blocked-bot", "tester").await;
    let policy = |denied: Value| {
        json!({"name": "plus", "agentId": agent,
               "spec": {"scopes": ["serpapi:search"], "deniedAgentNames": denied}})
    };

    let (status, answer) = gw
        .admin(Method::POST, "/api/policies", Some(policy(json!("all"))))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer.to_string().contains("spec.deniedAgentNames"),
        "{answer}"
    );

    let (status, created) = gw
        .admin(
            Method::POST,
            "/api/policies",
            Some(policy(json!(["blocked-bot"]))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["spec"]
        .as_str()
        .unwrap()
        .contains("deniedAgentNames"));

    let (token, _) = gw.mint(&agent).await;
    let body =
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}});
    let (status, _, answer) = crate::common::proxy(gw, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["rule"], "agent_name_denied", "{answer}");
}

on_both_backends!(
    a_newer_policy_plugin_adds_a_policy_field_at_runtime,
    a_failing_response_filter_is_audited_as_a_policy_failure,
    the_dry_run_consumes_no_quota,
    production_refuses_to_start_with_a_tool_no_policy_covers,
    a_missing_or_empty_manifest_keeps_the_live_set,
    default_role_policies_are_seeded_and_enforced,
    agent_policy_extends_its_role_and_is_managed_through_the_api,
    invalid_policies_are_refused_with_details,
    chaos_rules_change_at_runtime,
    chaos_changes_are_refused_in_production,
    plugin_admin_lists_reloads_and_reports_errors,
    response_filter_runs_when_the_policy_has_response_rules,
);
