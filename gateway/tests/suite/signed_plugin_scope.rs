//! What a signature allows beyond "these bytes": no silent rollback to a lower signed
//! version, and no use outside the bindings, tools and failure mode it names; both for
//! uploads (on both databases) and for `plugins.toml` files.

use crate::common::{
    fixture_bytes, secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET,
};
use base64::Engine;
use ed25519_dalek::SigningKey;
use gateway::metrics::Metrics;
use gateway::plugins::counters::Counters;
use gateway::plugins::manifest::FailMode;
use gateway::plugins::registry::PluginRegistry;
use gateway::plugins::signing::{self, SignatureMode, SignaturePolicy, SignedScope};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// `deny-all`'s bytes (1.0.0 from the `deny-all` fixture, 1.0.1 from `deny-all-next`) and
/// their signature's JSON.
fn signed(version: &str, scope: SignedScope) -> (Vec<u8>, Value) {
    let bytes = fixture_bytes(if version == "1.0.0" {
        "deny-all"
    } else {
        "deny-all-next"
    });
    let file = signing::sign(&key(), "deny-all", version, &bytes, scope);
    (bytes, serde_json::to_value(file).unwrap())
}

async fn production_gateway(backend: Backend) -> (TestDatabase, TestGateway) {
    let database = TestDatabase::create(backend).await;
    let mut settings = settings(&database.url, database.data_dir());
    settings.plugin_signatures = Some(SignatureMode::Required);
    settings.plugin_trusted_keys = signing::public_key_text(&key().verifying_key());
    let gw = TestGateway::start_with(settings, secrets(SIGNING_SECRET)).await;
    (database, gw)
}

async fn upload(
    gw: &TestGateway,
    name: &str,
    (bytes, signature): (Vec<u8>, Value),
    binding: Value,
) -> (StatusCode, Value) {
    let body = json!({
        "wasm_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        "binding": binding,
        "signature": signature,
    });
    gw.admin(
        Method::PUT,
        &format!("/api/admin/plugins/{name}"),
        Some(body),
    )
    .await
}

/// The attack: 1.0.1 is live; re-uploading 1.0.0 with its genuine signature is refused
/// (409 `plugin_downgrade`), and goes live only when the binding says `allow_downgrade`.
async fn a_signed_downgrade_is_refused_unless_allowed(backend: Backend) {
    let (_db, gw) = production_gateway(backend).await;
    let binding = json!({"tools": ["*"]});
    let (status, body) = upload(
        &gw,
        "guard",
        signed("1.0.1", SignedScope::default()),
        binding.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = upload(
        &gw,
        "guard",
        signed("1.0.0", SignedScope::default()),
        binding,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("plugin_downgrade")),
        "{body}"
    );
    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    assert_eq!(
        listed["plugins"][0]["upload_version"], 1,
        "nothing changed: {listed}"
    );

    let allowed = json!({"tools": ["*"], "allow_downgrade": true});
    let (status, body) = upload(
        &gw,
        "guard",
        signed("1.0.0", SignedScope::default()),
        allowed,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);
}

/// The attack: a signature made for `mail-guard` on `gmail_send`, failing closed, reused
/// under another name, for other tools, or failing open: each refused; its own use loads.
async fn a_scoped_signature_is_refused_outside_its_scope(backend: Backend) {
    let (_db, gw) = production_gateway(backend).await;
    let scope = || SignedScope {
        bindings: vec!["mail-guard".into()],
        tools: vec!["gmail_send".into()],
        fail: Some(FailMode::Closed),
    };
    for (name, binding) in [
        ("other-guard", json!({"tools": ["gmail_send"]})),
        ("mail-guard", json!({"tools": ["*"]})),
        (
            "mail-guard",
            json!({"tools": ["gmail_send"], "fail": "open"}),
        ),
    ] {
        let (status, body) = upload(&gw, name, signed("1.0.0", scope()), binding.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name} {binding}: {body}"
        );
        assert!(
            body.to_string().contains("outside the signature's scope"),
            "{body}"
        );
    }
    let (status, body) = upload(
        &gw,
        "mail-guard",
        signed("1.0.0", scope()),
        json!({"tools": ["gmail_send"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The same rules for a `plugins.toml` file: a file binding that ran 1.0.1 does not reload
/// 1.0.0 without `allow_downgrade`, and a scoped signature holds the file binding to it.
#[tokio::test]
async fn a_plugin_file_is_held_to_its_signature_and_its_highest_version() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(
        PluginRegistry::new(
            dir.path().to_path_buf(),
            crate::common::plugin_engine(),
            Counters::local(),
            Arc::new(Metrics::new()),
        )
        .with_signatures(
            SignaturePolicy::new(
                &signing::public_key_text(&key().verifying_key()),
                SignatureMode::Required,
            )
            .unwrap(),
        ),
    );
    let put = |version: &str, scope: SignedScope, manifest: &str| {
        let (bytes, signature) = signed(version, scope);
        std::fs::write(dir.path().join("guard.wasm"), bytes).unwrap();
        std::fs::write(dir.path().join("guard.wasm.sig"), signature.to_string()).unwrap();
        std::fs::write(dir.path().join("plugins.toml"), manifest).unwrap();
    };
    let manifest = "[[binding]]\nplugin = \"guard.wasm\"\ntools = [\"*\"]\n";
    put("1.0.1", SignedScope::default(), manifest);
    registry.reload().await.unwrap();
    put("1.0.0", SignedScope::default(), manifest);
    let error = registry.reload().await.unwrap_err().to_string();
    assert!(error.contains("lower than 1.0.1"), "{error}");
    put(
        "1.0.0",
        SignedScope::default(),
        &format!("{manifest}allow_downgrade = true\n"),
    );
    registry.reload().await.unwrap();

    let scope = SignedScope {
        tools: vec!["gmail_send".into()],
        ..SignedScope::default()
    };
    put("1.0.1", scope.clone(), manifest);
    let error = registry.reload().await.unwrap_err().to_string();
    assert!(error.contains("outside the signature's scope"), "{error}");
    put(
        "1.0.1",
        scope,
        "[[binding]]\nplugin = \"guard.wasm\"\ntools = [\"gmail_send\"]\n",
    );
    registry.reload().await.unwrap();
}

crate::on_both_backends!(
    a_signed_downgrade_is_refused_unless_allowed,
    a_scoped_signature_is_refused_outside_its_scope,
);
