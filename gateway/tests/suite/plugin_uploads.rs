//! Plugins uploaded through the admin API: stored with versions, live at once, rolled back,
//! deleted, and picked up by every gateway sharing the database.

use crate::common::{
    secrets, settings, Backend, Fixture, TestDatabase, TestGateway, SIGNING_SECRET,
};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

fn wasm_base64(dir: &str, name: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make plugins`)", path.display()));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn decision(gw: &TestGateway) -> Value {
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/plugins/evaluate",
            Some(json!({"agent_role": "scraper", "tool": "serpapi", "action": "search", "params": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["policy"].clone()
}

async fn upload(gw: &TestGateway, name: &str, wasm: String, binding: Value) -> (StatusCode, Value) {
    gw.admin(
        Method::PUT,
        &format!("/api/admin/plugins/{name}"),
        Some(json!({"wasm_base64": wasm, "binding": binding})),
    )
    .await
}

async fn upload_goes_live_rolls_back_and_deletes(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    assert_eq!(
        decision(gw).await["decision"],
        "allow",
        "no plugin: nothing denies"
    );

    let (status, body) = upload(
        gw,
        "guard",
        wasm_base64("target/plugin-fixtures", "deny-all"),
        json!({"tools": ["serpapi"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(decision(gw).await["code"], "deny_all");

    let binding =
        json!({"tools": ["*"], "config": {"scopes": ["serpapi:search"]}, "timeout_ms": 100});
    let (status, body) = upload(
        gw,
        "guard",
        wasm_base64("policies-wasm", "spec-policy"),
        binding,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(decision(gw).await["decision"], "allow");

    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    assert_eq!(listed["plugins"][0]["source"], "upload");
    assert_eq!(listed["plugins"][0]["upload_version"], 2);

    let (status, body) = gw
        .admin(Method::POST, "/api/admin/plugins/guard/rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(decision(gw).await["code"], "deny_all");
    let (status, body) = gw
        .admin(Method::POST, "/api/admin/plugins/guard/rollback", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_previous_version"))
    );

    let (status, _) = gw
        .admin(Method::DELETE, "/api/admin/plugins/guard", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(decision(gw).await["decision"], "allow");
    let (status, _) = gw
        .admin(Method::DELETE, "/api/admin/plugins/guard", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn invalid_uploads_change_nothing(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"not wasm");
    let (status, body) = upload(gw, "guard", garbage, json!({"tools": ["*"]})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("plugin_invalid"))
    );
    let deny_all = wasm_base64("target/plugin-fixtures", "deny-all");
    for (name, binding) in [
        ("guard", json!({"tools": []})),
        ("guard", json!({"tools": ["*"], "colour": 1})),
        ("Bad Name", json!({"tools": ["*"]})),
        ("guard", json!({"tools": ["*"], "world": "chaos"})),
    ] {
        let (status, body) = upload(gw, name, deny_all.clone(), binding.clone()).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{name} {binding}: {status} {body}"
        );
    }
    let (status, body) = upload(gw, "guard", "%%%".into(), json!({"tools": ["*"]})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_failed"))
    );
    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    assert_eq!(listed["plugins"].as_array().unwrap().len(), 0);
}

async fn every_instance_on_the_database_converges_on_an_upload(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let a = TestGateway::start_with(
        settings(&database.url, database.data_dir()),
        secrets(SIGNING_SECRET),
    )
    .await;
    let b = TestGateway::start_with(
        settings(&database.url, database.data_dir()),
        secrets(SIGNING_SECRET),
    )
    .await;
    let (status, body) = upload(
        &a,
        "guard",
        wasm_base64("target/plugin-fixtures", "deny-all"),
        json!({"tools": ["*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // B's background sync (every second) picks it up; wait on the condition, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while decision(&b).await["code"] != "deny_all" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "instance B never loaded the upload: {:?}",
            b.state.plugins.last_error()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.admin(Method::DELETE, "/api/admin/plugins/guard", None)
        .await;
    b.state.change_feed.catch_up().await.unwrap();
    assert_eq!(decision(&b).await["decision"], "allow");
    a.stop().await;
    b.stop().await;
}

on_both_backends!(
    upload_goes_live_rolls_back_and_deletes,
    invalid_uploads_change_nothing,
    every_instance_on_the_database_converges_on_an_upload,
);
