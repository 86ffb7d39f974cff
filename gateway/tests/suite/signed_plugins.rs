//! Signed plugins with `PLUGIN_SIGNATURES=required`: a plugin file or upload is loaded only
//! with a valid signature from a trusted key; each way a signature can fail to vouch (none,
//! an unknown key, another file's, one flipped byte) is refused with its reason, and the
//! live set stays.

use crate::common::cluster::wait_until;
use crate::common::{
    fixture_bytes, plugin_decision, secrets, settings, Backend, TestDatabase, TestGateway,
    SIGNING_SECRET,
};
use base64::Engine;
use ed25519_dalek::SigningKey;
use gateway::metrics::Metrics;
use gateway::plugins::counters::Counters;
use gateway::plugins::registry::PluginRegistry;
use gateway::plugins::signing::{self, SignatureMode, SignaturePolicy};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;

fn trusted_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn trusted_keys() -> String {
    signing::public_key_text(&trusted_key().verifying_key())
}

/// A signature file's JSON for `bytes` of plugin `deny-all` 1.0.0, by `key`.
fn signature(key: &SigningKey, bytes: &[u8]) -> String {
    serde_json::to_string(&signing::sign(
        key,
        "deny-all",
        "1.0.0",
        bytes,
        Default::default(),
    ))
    .unwrap()
}

fn flipped(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    bytes
}

/// plugins.toml binding deny-all.wasm to every tool.
const DENY_ALL_BINDING: &str = "[[binding]]\nplugin = \"deny-all.wasm\"\ntools = [\"*\"]\n";

/// A registry of the plugin files in `dir` that loads only signed ones.
fn requiring_signatures(dir: &std::path::Path) -> Arc<PluginRegistry> {
    Arc::new(
        PluginRegistry::new(
            dir.to_path_buf(),
            crate::common::plugin_engine(),
            Counters::local(),
            Arc::new(Metrics::new()),
        )
        .with_signatures(SignaturePolicy::new(&trusted_keys(), SignatureMode::Required).unwrap()),
    )
}

#[tokio::test]
async fn a_plugin_file_loads_only_with_a_trusted_signature_of_its_own_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let deny_all = fixture_bytes("deny-all");
    std::fs::write(dir.path().join("deny-all.wasm"), &deny_all).unwrap();
    std::fs::write(dir.path().join("plugins.toml"), DENY_ALL_BINDING).unwrap();
    let registry = requiring_signatures(dir.path());
    let sig_path = dir.path().join("deny-all.wasm.sig");
    let stranger = SigningKey::from_bytes(&[7; 32]);
    for (case, sig, expected) in [
        ("unsigned", None, "not signed"),
        (
            "an unknown key",
            Some(signature(&stranger, &deny_all)),
            "not in PLUGIN_TRUSTED_KEYS",
        ),
        (
            "another file's signature",
            Some(signature(&trusted_key(), &fixture_bytes("quota-thief"))),
            "another file",
        ),
    ] {
        match &sig {
            Some(text) => std::fs::write(&sig_path, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(&sig_path);
            }
        }
        let error = registry.reload().await.expect_err(case).to_string();
        assert!(error.contains(expected), "{case}: {error}");
        assert!(registry.current().bindings.is_empty(), "{case}");
    }

    std::fs::write(&sig_path, signature(&trusted_key(), &deny_all)).unwrap();
    registry.reload().await.expect("a valid signature loads");
    let live = registry.current();
    assert_eq!(live.bindings[0].name, "deny-all");

    // One flipped byte under the same signature: refused, and the signed set stays live.
    std::fs::write(dir.path().join("deny-all.wasm"), flipped(&deny_all)).unwrap();
    let error = registry.reload().await.unwrap_err().to_string();
    assert!(error.contains("another file"), "{error}");
    assert!(Arc::ptr_eq(&live, &registry.current()));

    // A binding may pin the component's digest: another file is refused.
    std::fs::write(dir.path().join("deny-all.wasm"), &deny_all).unwrap();
    std::fs::write(
        dir.path().join("plugins.toml"),
        format!(
            "[[binding]]\nplugin = \"deny-all.wasm\"\ntools = [\"*\"]\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let error = registry.reload().await.unwrap_err().to_string();
    assert!(error.contains("the binding pins"), "{error}");
    assert!(Arc::ptr_eq(&live, &registry.current()));
}

/// A signature copied after its plugin (as `cp x.wasm x.wasm.sig dir/` does) is picked up
/// by the watcher: no manual reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_copied_after_its_plugin_makes_it_live() {
    let dir = tempfile::tempdir().unwrap();
    let deny_all = fixture_bytes("deny-all");
    let registry = requiring_signatures(dir.path());
    registry.reload().await.unwrap();
    let (_watcher, _task) = gateway::plugins::watch::spawn(Arc::clone(&registry)).unwrap();
    std::fs::write(dir.path().join("deny-all.wasm"), &deny_all).unwrap();
    std::fs::write(dir.path().join("plugins.toml"), DENY_ALL_BINDING).unwrap();
    wait_until("the unsigned plugin is refused", || async {
        registry
            .last_error()
            .is_some_and(|e| format!("{e:?}").contains("not signed"))
    })
    .await;
    assert!(registry.current().bindings.is_empty());

    std::fs::write(
        dir.path().join("deny-all.wasm.sig"),
        signature(&trusted_key(), &deny_all),
    )
    .unwrap();
    wait_until("the signed plugin is live", || async {
        !registry.current().bindings.is_empty()
    })
    .await;
    assert_eq!(registry.current().bindings[0].name, "deny-all");
}

async fn an_upload_loads_only_with_a_trusted_signature_of_its_own_bytes(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = settings(&database.url, database.data_dir());
    settings.plugin_signatures = Some(SignatureMode::Required);
    settings.plugin_trusted_keys = trusted_keys();
    let gw = TestGateway::start_with(settings, secrets(SIGNING_SECRET)).await;
    let deny_all = fixture_bytes("deny-all");
    let upload = |wasm: &[u8], signature: Option<String>| {
        let mut body = json!({
            "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
            "binding": {"tools": ["*"]},
        });
        if let Some(signature) = signature {
            body["signature"] = serde_json::from_str(&signature).unwrap();
        }
        let gw = &gw;
        async move {
            gw.admin(Method::PUT, "/api/admin/plugins/guard", Some(body))
                .await
        }
    };
    let stranger = SigningKey::from_bytes(&[7; 32]);
    for (case, wasm, sig, expected) in [
        ("unsigned", deny_all.clone(), None, "not signed"),
        (
            "an unknown key",
            deny_all.clone(),
            Some(signature(&stranger, &deny_all)),
            "not in PLUGIN_TRUSTED_KEYS",
        ),
        (
            "another file's signature",
            deny_all.clone(),
            Some(signature(&trusted_key(), &fixture_bytes("quota-thief"))),
            "another file",
        ),
        (
            "one flipped byte",
            flipped(&deny_all),
            Some(signature(&trusted_key(), &deny_all)),
            "another file",
        ),
    ] {
        let (status, body) = upload(&wasm, sig).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {body}");
        assert!(body.to_string().contains(expected), "{case}: {body}");
    }
    assert_eq!(
        plugin_decision(&gw).await["decision"],
        "allow",
        "nothing refused went live"
    );

    let (status, body) = upload(&deny_all, Some(signature(&trusted_key(), &deny_all))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(plugin_decision(&gw).await["code"], "deny_all");
}

crate::on_both_backends!(an_upload_loads_only_with_a_trusted_signature_of_its_own_bytes);
