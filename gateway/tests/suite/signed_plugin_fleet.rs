//! A fleet whose instances do not agree on signatures: an instance in `warn` mode stores an
//! unsigned upload. The production instances skip it and report it (serving what they
//! served), later uploads still go through, and a rollback to a version they cannot load
//! is refused with nothing changed.

use crate::common::{
    fixture_bytes, secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET,
};
use base64::Engine;
use ed25519_dalek::SigningKey;
use gateway::plugins::signing::{self, SignatureMode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

async fn instance(database: &TestDatabase, mode: SignatureMode) -> TestGateway {
    let mut settings = settings(&database.url, database.data_dir());
    settings.plugin_signatures = Some(mode);
    settings.plugin_trusted_keys = signing::public_key_text(&key().verifying_key());
    TestGateway::start_with(settings, secrets(SIGNING_SECRET)).await
}

async fn upload(
    gw: &TestGateway,
    name: &str,
    fixture_name: &str,
    signed: bool,
) -> (StatusCode, Value) {
    let bytes = fixture_bytes(fixture_name);
    let mut body = json!({
        "wasm_base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "binding": {"tools": ["serpapi"]},
    });
    if signed {
        let signature = signing::sign(&key(), "deny-all", "1.0.0", &bytes, Default::default());
        body["signature"] = serde_json::to_value(signature).unwrap();
    }
    gw.admin(
        Method::PUT,
        &format!("/api/admin/plugins/{name}"),
        Some(body),
    )
    .await
}

async fn listing(gw: &TestGateway) -> Value {
    gw.state.plugins.sync_uploads().await.unwrap();
    gw.admin(Method::GET, "/api/admin/plugins", None).await.1
}

async fn an_unsigned_upload_from_a_warn_instance_blocks_nothing(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let production = instance(&database, SignatureMode::Required).await;
    let lenient = instance(&database, SignatureMode::Warn).await;

    // Version 1, signed: live everywhere.
    let (status, body) = upload(&production, "guard", "deny-all", true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Version 2, unsigned, through the lenient instance.
    let (status, body) = upload(&lenient, "guard", "deny-all", false).await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::CREATED, &json!(2)),
        "{body}"
    );

    // Production serves version 1 and says why version 2 is not loaded.
    let listed = listing(&production).await;
    assert_eq!(listed["plugins"][0]["upload_version"], 1, "{listed}");
    let skipped = &listed["skipped_uploads"][0];
    assert_eq!(
        (&skipped["version"], &skipped["kept_version"]),
        (&json!(2), &json!(1)),
        "{listed}"
    );
    assert!(
        skipped["error"].as_str().unwrap().contains("not signed"),
        "{listed}"
    );

    // Later uploads on production still go through.
    let (status, body) = upload(&production, "other", "deny-all", true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A rollback of "other" has nothing to go back to; one of "guard" on the lenient
    // instance brings version 1 back for all.
    let (status, body) = lenient
        .admin(Method::POST, "/api/admin/plugins/guard/rollback", None)
        .await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
    assert!(listing(&production).await["skipped_uploads"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// Production's rollback to a version it cannot load (the unsigned one) answers 422, and the
/// stored versions are as they were: the answer's "nothing was changed" is true.
async fn a_rollback_that_cannot_load_changes_nothing(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let production = instance(&database, SignatureMode::Required).await;
    let lenient = instance(&database, SignatureMode::Warn).await;
    let (status, body) = upload(&lenient, "guard", "deny-all", false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = upload(&production, "guard", "deny-all", true).await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::CREATED, &json!(2)),
        "{body}"
    );

    let (status, body) = production
        .admin(Method::POST, "/api/admin/plugins/guard/rollback", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("not signed"), "{body}");
    let versions = production
        .state
        .store
        .plugin_upload_versions()
        .await
        .unwrap();
    let active: Vec<(i64, i64)> = versions.iter().map(|v| (v.version, v.active)).collect();
    assert_eq!(
        active,
        [(1, 0), (2, 1)],
        "the stored versions are as before"
    );
    assert_eq!(listing(&lenient).await["plugins"][0]["upload_version"], 2);
}

crate::on_both_backends!(
    an_unsigned_upload_from_a_warn_instance_blocks_nothing,
    a_rollback_that_cannot_load_changes_nothing,
);
