//! Generated input against a real gateway (proptest strategies, a fixed seed so a failure
//! replays): proxy request bodies, policy documents and `plugins.toml` files. Whatever
//! comes in, the answer is a success or a 4xx in the `{error, code}` envelope, never a
//! 5xx, and the gateway is left working.

use crate::common::{Backend, Fixture};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// `count` values of `strategy`, the same on every run.
fn samples<S: Strategy>(strategy: S, count: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("a sample").current())
        .collect()
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value for one of a request's fields: a likely one or anything.
fn field(likely: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![proptest::sample::select(likely), json_value()])
}

/// The envelope of an error answer, or the reason it is not one.
fn check_answer(status: StatusCode, body: &Value, what: &Value) {
    assert!(!status.is_server_error(), "{status} for {what}: {body}");
    if !status.is_success() {
        assert!(
            body["error"].is_string() && body["code"].is_string(),
            "{status} without the envelope for {what}: {body}"
        );
    }
}

async fn generated_proxy_bodies_get_4xx_with_the_envelope(backend: Backend) {
    let f = Fixture::with_default_plugins_and(backend, |s| s.auth_failures_per_minute = 0).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("fuzzed", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    let bodies = samples(
        (
            field(vec![json!(token), json!("gw1.x.y"), json!("")]),
            field(vec![
                json!("serpapi"),
                json!("http_fetch"),
                json!("gmail_send"),
                json!("openai"),
            ]),
            field(vec![
                json!("search"),
                json!("get"),
                json!("send"),
                json!("chat"),
            ]),
            field(vec![
                json!({"q": "rust"}),
                json!({"url": "https://example.com"}),
                json!({}),
            ]),
            field(vec![json!("research")]),
        ),
        300,
    );
    for (agent_token, tool, action, params, intent) in bodies {
        let mut body = Map::new();
        for (name, value) in [
            ("agent_token", agent_token),
            ("tool", tool),
            ("action", action),
            ("params", params),
            ("intent", intent),
        ] {
            if let Some(value) = value {
                body.insert(name.into(), value);
            }
        }
        let body = Value::Object(body);
        let (status, _, answer) = crate::common::proxy(gw, body.clone()).await;
        check_answer(status, &answer, &body);
    }
    // Still serving, and its token still works.
    let (status, _, answer) = crate::common::proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "rust"}}),
    )
    .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::FORBIDDEN,
        "{answer}"
    );
}

async fn generated_policy_documents_are_stored_or_refused(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let gw = &f.gateway;
    let guards = json!({"allowedDomains": ["example.com"], "maxRequestSize": 100});
    let specs = samples(
        prop_oneof![
            json_value(),
            (
                field(vec![json!(["serpapi:search"]), json!([])]),
                field(vec![guards]),
                field(vec![json!("x")])
            )
                .prop_map(|(scopes, guards, intent)| {
                    let mut spec = Map::new();
                    for (k, v) in [("scopes", scopes), ("guards", guards), ("intent", intent)] {
                        if let Some(v) = v {
                            spec.insert(k.into(), v);
                        }
                    }
                    Value::Object(spec)
                }),
        ],
        150,
    );
    for spec in specs {
        let body = json!({"name": "fuzzed", "role": "fuzzed-role", "spec": spec});
        let (status, answer) = gw
            .admin(Method::POST, "/api/policies", Some(body.clone()))
            .await;
        check_answer(status, &answer, &body);
    }
    let (status, answer) = gw.admin(Method::GET, "/api/policies", None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn generated_plugin_manifests_never_replace_the_live_set(backend: Backend) {
    let f = Fixture::with_default_plugins(backend).await;
    let gw = &f.gateway;
    let manifest = gw.state.config.settings.plugins_dir.join("plugins.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    let line = prop_oneof![
        Just("[[binding]]".to_string()),
        "(plugin|tools|roles|timeout_ms|memory_mb|fail|reuse|config|config_from|bogus) = (\"[a-z.*-]{0,10}\"|[0-9]{1,6}|true|\\[\\]|\\{\\})",
        ".{0,30}",
    ];
    let texts = samples(
        proptest::collection::vec(line, 0..8).prop_map(|l| l.join("\n")),
        60,
    );
    for text in texts {
        std::fs::write(&manifest, &text).unwrap();
        let (status, answer) = gw
            .admin(Method::POST, "/api/admin/plugins/reload", None)
            .await;
        check_answer(status, &answer, &json!(text));
        // A refused manifest leaves the previous set live; restore the good one after an
        // accepted one, so each case starts from the defaults.
        std::fs::write(&manifest, &good).unwrap();
        let (status, answer) = gw
            .admin(Method::POST, "/api/admin/plugins/reload", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    assert_eq!(
        listed["plugins"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
}

on_both_backends!(
    generated_proxy_bodies_get_4xx_with_the_envelope,
    generated_policy_documents_are_stored_or_refused,
    generated_plugin_manifests_never_replace_the_live_set,
);
