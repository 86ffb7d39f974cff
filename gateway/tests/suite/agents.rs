//! Agent creation, listing and status changes, on SQLite and PostgreSQL.

use crate::common::{Backend, Fixture};
use reqwest::{Method, StatusCode};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::json;

async fn creates_agent_whose_private_key_matches_the_stored_public_key(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/create-agent",
            Some(json!({"name": "Scraper One", "created_by": "ops", "role": "scraper"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["agent_id"].as_str().unwrap();
    let private = RsaPrivateKey::from_pkcs8_pem(body["private_key"].as_str().unwrap()).unwrap();
    let (status, stored) = f
        .gateway
        .admin(Method::GET, &format!("/api/agents/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let agent = &stored["agent"];
    let public = RsaPublicKey::from_public_key_pem(agent["publicKey"].as_str().unwrap()).unwrap();
    assert_eq!(private.to_public_key(), public);
    assert_eq!(agent["name"], "Scraper One");
    assert_eq!(agent["role"], "scraper");
    assert_eq!(agent["createdBy"], "ops");
    assert_eq!(agent["status"], "active");
    assert!(agent["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["public_key"], agent["publicKey"]);
}

async fn agent_supplying_its_own_key_gets_no_private_key(backend: Backend) {
    let f = Fixture::start(backend).await;
    let own = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = own
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/create-agent",
            Some(
                json!({"name": "byok", "created_by": "ops", "role": "enricher", "public_key": pem}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("private_key").is_none());
    assert_eq!(body["public_key"].as_str().unwrap(), pem);

    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/create-agent",
            Some(json!({"name": "bad", "created_by": "ops", "role": "enricher", "public_key": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_failed");
}

async fn lists_gets_and_suspends_agents(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (a, _) = f.gateway.create_agent("a", "scraper").await;
    let (b, _) = f.gateway.create_agent("b", "engager").await;
    let (status, body) = f.gateway.admin(Method::GET, "/api/agents", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);

    let (status, body) = f
        .gateway
        .admin(
            Method::PATCH,
            &format!("/api/agents/{a}"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["agent"]["status"], "suspended");

    let (status, body) = f
        .gateway
        .admin(
            Method::PATCH,
            &format!("/api/agents/{a}"),
            Some(json!({"status": "deleted"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_body");

    let (status, body) = f
        .gateway
        .admin(
            Method::GET,
            "/api/agents/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "agent_not_found");
    let (status, _) = f
        .gateway
        .admin(Method::GET, "/api/agents/not-a-uuid", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn rejects_invalid_agent_fields(backend: Backend) {
    let f = Fixture::start(backend).await;
    let cases = [
        (json!({"name": "x", "created_by": "ops"}), "missing_fields"),
        (
            json!({"name": "", "created_by": "ops", "role": "scraper"}),
            "missing_fields",
        ),
        (
            json!({"name": "x", "created_by": "ops", "role": "Bad Role"}),
            "validation_failed",
        ),
        (
            json!({"name": "x".repeat(129), "created_by": "ops", "role": "scraper"}),
            "validation_failed",
        ),
        (
            json!({"name": 5, "created_by": "ops", "role": "scraper"}),
            "invalid_body",
        ),
        (
            json!({"name": "x", "created_by": "ops", "role": "scraper", "colour": "red"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = f
            .gateway
            .admin(Method::POST, "/api/create-agent", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], code, "{body} -> {answer}");
    }
    let (_, body) = f.gateway.admin(Method::GET, "/api/agents", None).await;
    assert_eq!(
        body["agents"].as_array().unwrap().len(),
        0,
        "no agent created by bad input"
    );
}

on_both_backends!(
    creates_agent_whose_private_key_matches_the_stored_public_key,
    agent_supplying_its_own_key_gets_no_private_key,
    lists_gets_and_suspends_agents,
    rejects_invalid_agent_fields,
);
