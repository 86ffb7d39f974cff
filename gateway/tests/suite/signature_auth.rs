//! Agents minting their own tokens with RSA-PSS signed requests.

use crate::common::{read, Backend, Fixture};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gateway::crypto::request_signature::signing_message;
use reqwest::StatusCode;
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

pub(crate) struct Signed {
    agent_id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

pub(crate) fn sign(agent_id: &str, private_pem: &str, body: &Value, timestamp: i64) -> Signed {
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    let body = body.to_string();
    let message = signing_message(
        "POST",
        "/api/generate-token",
        &timestamp.to_string(),
        body.as_bytes(),
    );
    let signature = BlindedSigningKey::<Sha256>::new(key)
        .sign_with_rng(&mut rand::rngs::OsRng, message.as_bytes())
        .to_vec();
    Signed {
        agent_id: agent_id.to_string(),
        timestamp,
        signature: STANDARD.encode(signature),
        body,
    }
}

pub(crate) async fn send(f: &Fixture, s: &Signed) -> (StatusCode, Value) {
    let response = f
        .gateway
        .client
        .post(f.gateway.url("/api/generate-token"))
        .header("content-type", "application/json")
        .header("x-agent-id", &s.agent_id)
        .header("x-agent-timestamp", s.timestamp.to_string())
        .header("x-agent-signature", &s.signature)
        .body(s.body.clone())
        .send()
        .await
        .unwrap();
    read(response).await
}

fn token_request(agent_id: &str) -> Value {
    json!({"agent_id": agent_id, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 10})
}

async fn agent_mints_its_own_token_with_a_valid_signature(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("self-minter", "scraper").await;
    let signed = sign(
        &agent,
        &key,
        &token_request(&agent),
        chrono::Utc::now().timestamp(),
    );
    let (status, body) = send(&f, &signed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let verdict = f
        .gateway
        .introspect(body["agent_token"].as_str().unwrap())
        .await;
    assert_eq!(verdict["agent_id"], agent.as_str());
}

async fn refuses_signature_by_another_key(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let (_, other_key) = f.gateway.create_agent("b", "scraper").await;
    let signed = sign(
        &agent,
        &other_key,
        &token_request(&agent),
        chrono::Utc::now().timestamp(),
    );
    let (status, body) = send(&f, &signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_signature");
}

async fn refuses_stale_timestamp(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    let signed = sign(
        &agent,
        &key,
        &token_request(&agent),
        chrono::Utc::now().timestamp() - 301,
    );
    let (status, body) = send(&f, &signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "stale_timestamp");
}

async fn refuses_replayed_signature(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    let signed = sign(
        &agent,
        &key,
        &token_request(&agent),
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(send(&f, &signed).await.0, StatusCode::CREATED);
    let (status, body) = send(&f, &signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "replayed_signature");
}

async fn refuses_body_changed_after_signing(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    let mut signed = sign(
        &agent,
        &key,
        &token_request(&agent),
        chrono::Utc::now().timestamp(),
    );
    signed.body = signed.body.replace("\"read\"", "\"write\"");
    let (status, body) = send(&f, &signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_signature");
}

async fn agent_cannot_mint_for_another_agent(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    let (victim, _) = f.gateway.create_agent("b", "engager").await;
    let signed = sign(
        &agent,
        &key,
        &token_request(&victim),
        chrono::Utc::now().timestamp(),
    );
    let (status, body) = send(&f, &signed).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden_agent");
}

async fn garbage_signature_headers_are_refused(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    let good = sign(
        &agent,
        &key,
        &token_request(&agent),
        chrono::Utc::now().timestamp(),
    );
    let variants = [
        Signed {
            agent_id: "not-a-uuid".into(),
            ..sign(&agent, &key, &token_request(&agent), good.timestamp)
        },
        Signed {
            signature: "%%%".into(),
            ..sign(&agent, &key, &token_request(&agent), good.timestamp)
        },
        Signed {
            signature: STANDARD.encode([0u8; 256]),
            ..sign(&agent, &key, &token_request(&agent), good.timestamp)
        },
        Signed {
            agent_id: uuid::Uuid::new_v4().to_string(),
            ..sign(&agent, &key, &token_request(&agent), good.timestamp)
        },
    ];
    for v in &variants {
        let (status, body) = send(&f, v).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], "invalid_signature");
    }
}

on_both_backends!(
    agent_mints_its_own_token_with_a_valid_signature,
    refuses_signature_by_another_key,
    refuses_stale_timestamp,
    refuses_replayed_signature,
    refuses_body_changed_after_signing,
    agent_cannot_mint_for_another_agent,
    garbage_signature_headers_are_refused,
);
