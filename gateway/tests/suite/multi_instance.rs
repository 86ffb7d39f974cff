//! Several gateways sharing one database converge on revocations, suspensions and used
//! signatures (in process; `cluster` runs real processes).

use crate::common::{read, secrets, settings, Backend, TestDatabase, TestGateway, SIGNING_SECRET};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gateway::crypto::request_signature::signing_message;
use reqwest::{Method, StatusCode};
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde_json::json;
use sha2::Sha256;

async fn pair(database: &TestDatabase) -> (TestGateway, TestGateway) {
    let first = settings(&database.url, database.data_dir());
    let second = first.clone();
    (
        TestGateway::start_with(first, secrets(SIGNING_SECRET)).await,
        TestGateway::start_with(second, secrets(SIGNING_SECRET)).await,
    )
}

async fn revocation_and_suspension_reach_other_instances(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (a, b) = pair(&database).await;
    let (agent, _) = a.create_agent("shared", "scraper").await;
    let (token, token_id) = a.mint(&agent).await;
    // B has never seen this agent: validation falls back to one look-up.
    assert_eq!(b.introspect(&token).await["active"], true);

    a.admin(
        Method::POST,
        &format!("/api/admin/tokens/{token_id}/revoke"),
        None,
    )
    .await;
    b.state.change_feed.catch_up().await.unwrap();
    assert_eq!(b.introspect(&token).await["reason"], "revoked");

    let (token2, _) = a.mint(&agent).await;
    a.admin(
        Method::PATCH,
        &format!("/api/agents/{agent}"),
        Some(json!({"status": "suspended"})),
    )
    .await;
    b.state.change_feed.catch_up().await.unwrap();
    // Suspension revokes the agent's tokens; both reach the other instance.
    assert_eq!(b.introspect(&token2).await["reason"], "revoked");
    let agent_id: uuid::Uuid = agent.parse().unwrap();
    assert_eq!(
        b.state.mirror.agent(&agent_id).map(|a| a.status),
        Some(gateway::store::agents::AgentStatus::Suspended)
    );
    a.stop().await;
    b.stop().await;
}

async fn signature_used_on_one_instance_is_refused_on_another(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    // Without Redis: the used signatures are shared through the database.
    let (a, b) = pair(&database).await;
    let (agent, key) = a.create_agent("signer", "scraper").await;
    let body =
        json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 5})
            .to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let message = signing_message("POST", "/api/generate-token", &ts, body.as_bytes());
    let signature =
        BlindedSigningKey::<Sha256>::new(rsa::RsaPrivateKey::from_pkcs8_pem(&key).unwrap())
            .sign_with_rng(&mut rand::rngs::OsRng, message.as_bytes())
            .to_vec();
    let send = |gw: &TestGateway| {
        gw.client
            .post(gw.url("/api/generate-token"))
            .header("content-type", "application/json")
            .header("x-agent-id", &agent)
            .header("x-agent-timestamp", &ts)
            .header("x-agent-signature", STANDARD.encode(&signature))
            .body(body.clone())
            .send()
    };
    assert_eq!(read(send(&a).await.unwrap()).await.0, StatusCode::CREATED);
    let (status, answer) = read(send(&b).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["code"], "replayed_signature");
    a.stop().await;
    b.stop().await;
}

on_both_backends!(
    revocation_and_suspension_reach_other_instances,
    signature_used_on_one_instance_is_refused_on_another,
);
