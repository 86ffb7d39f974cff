//! Plugins uploaded through the admin API: stored with versions, live at once, rolled back,
//! deleted, and picked up by every gateway sharing the database.

use crate::common::{
    plugin_decision as decision, secrets, settings, wasm_base64, Backend, Fixture, TestDatabase,
    TestGateway, SIGNING_SECRET,
};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

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
    let (status, body) = gw
        .admin(Method::POST, "/api/admin/plugins/nobody/rollback", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("plugin_not_found")),
        "a plugin never uploaded is not found, not in conflict"
    );
    // Version 2 was rolled back: its number is never handed out again.
    let (status, body) = upload(
        gw,
        "guard",
        wasm_base64("target/plugin-fixtures", "deny-all"),
        json!({"tools": ["*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 3);

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
    // B's change feed picks it up; wait on the condition, bounded.
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

/// An upload's sample request runs before anything is stored: a version that fails it is
/// refused with the failure, one that answers is stored and its answer returned.
async fn an_upload_must_answer_its_sample_request(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let sample =
        json!({"agent_role": "scraper", "tool": "serpapi", "action": "search", "params": {}});
    let upload_with_sample = |fixture: &'static str| {
        gw.admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(
                json!({"wasm_base64": wasm_base64("target/plugin-fixtures", fixture),
                        "binding": {"tools": ["*"]}, "sample": sample.clone()}),
            ),
        )
    };
    let (status, body) = upload_with_sample("always-trap").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["details"][0].as_str().unwrap_or_default();
    assert!(detail.contains("sample request failed: trap"), "{body}");
    assert!(detail.contains("always-trap refuses to evaluate"), "{body}");
    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    assert_eq!(
        listed["plugins"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );

    let (status, body) = upload_with_sample("deny-all").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["sample"]["code"], "deny_all", "{body}");
    assert_eq!(body["version"], 1);
}

/// Uploads that cannot be read are an error the change feed retries, not a silent "nothing
/// changed" that would leave this instance on its old plugin set.
async fn unreadable_uploads_are_reported_to_the_caller(backend: Backend) {
    use sqlx::Connection;
    let f = Fixture::start(backend).await;
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    let statement = rename("plugin_uploads", "plugin_uploads_away");
    match backend {
        Backend::Sqlite => {
            let mut admin = sqlx::SqliteConnection::connect(&f.database.url)
                .await
                .unwrap();
            sqlx::query(&statement).execute(&mut admin).await.unwrap();
        }
        Backend::Postgres => {
            let mut admin = sqlx::PgConnection::connect(&f.database.url).await.unwrap();
            sqlx::query(&statement).execute(&mut admin).await.unwrap();
        }
    }
    assert!(f.gateway.state.plugins.sync_uploads().await.is_err());
    assert!(
        f.gateway.state.change_feed.catch_up().await.is_ok(),
        "no change is pending"
    );
}

/// On SQLite the audit writer holds the write lock many times a second under proxy load: an
/// upload (a read, then writes, in one transaction) must wait for it, never fail with
/// `database is locked`.
async fn uploads_during_proxy_load_wait_for_the_write_lock(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("busy", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..16)
        .map(|n| {
            let (client, url, token, stop) = (
                gw.client.clone(),
                gw.url("/api/proxy-request"),
                token.clone(),
                std::sync::Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut sent = 0u32;
                // Bounded: the uploads below end it far sooner.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && sent < 20_000 {
                    let body = json!({"agent_token": token, "tool": "serpapi", "action": "search",
                                      "params": {"q": format!("load {n} {sent}")}});
                    let _ = client.post(&url).json(&body).send().await;
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let deny_all = wasm_base64("target/plugin-fixtures", "deny-all");
    let mut refused = Vec::new();
    for _ in 0..10 {
        let (status, body) =
            upload(gw, "guard", deny_all.clone(), json!({"tools": ["openai"]})).await;
        if status != StatusCode::CREATED {
            refused.push((status, body));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for task in load {
        sent += task.await.unwrap();
    }
    assert!(sent > 0, "the load ran");
    assert!(refused.is_empty(), "{refused:?}");
}

on_both_backends!(
    upload_goes_live_rolls_back_and_deletes,
    invalid_uploads_change_nothing,
    every_instance_on_the_database_converges_on_an_upload,
    uploads_during_proxy_load_wait_for_the_write_lock,
    unreadable_uploads_are_reported_to_the_caller,
    an_upload_must_answer_its_sample_request,
);
