//! Every management route refuses callers without the admin key.

use crate::common::{read, Backend, Fixture};
use reqwest::{Method, StatusCode};

const MANAGEMENT_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/create-agent"),
    ("GET", "/api/agents"),
    ("GET", "/api/agents/00000000-0000-4000-8000-000000000000"),
    ("PATCH", "/api/agents/00000000-0000-4000-8000-000000000000"),
    ("GET", "/api/admin/tokens"),
    ("POST", "/api/admin/tokens/introspect"),
    (
        "POST",
        "/api/admin/tokens/00000000-0000-4000-8000-000000000000/revoke",
    ),
    ("POST", "/api/generate-token"),
];

async fn management_routes_require_the_admin_key(backend: Backend) {
    let f = Fixture::start(backend).await;
    for (method, path) in MANAGEMENT_ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for auth in [
            None,
            Some("Bearer wrong-key-wrong-key-wrong-key"),
            Some("Basic abc"),
            Some("Bearer "),
        ] {
            let mut req = f
                .gateway
                .client
                .request(method.clone(), f.gateway.url(path))
                .header("content-type", "application/json")
                .body("{}");
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            let (status, body) = read(req.send().await.unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(body["code"], "unauthorized", "{method} {path}");
            assert!(body["error"].is_string());
        }
    }
}

async fn health_and_metrics_are_open(backend: Backend) {
    let f = Fixture::start(backend).await;
    for path in ["/health", "/api/health", "/ready", "/metrics"] {
        let status = f
            .gateway
            .client
            .get(f.gateway.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

/// With `METRICS_BEARER_TOKEN` set, `/metrics` answers only that bearer token; the health
/// routes stay open, and the admin key is not the metrics token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ask_for_their_token_when_one_is_set() {
    let database = crate::common::TestDatabase::create(Backend::Sqlite).await;
    let mut secrets = crate::common::secrets(crate::common::SIGNING_SECRET);
    let token = "metrics-token-for-prometheus-0001";
    secrets.metrics_token = Some(token.to_string().into());
    let gw = crate::common::TestGateway::start_with(
        crate::common::settings(&database.url, database.data_dir()),
        secrets,
    )
    .await;
    let get = |path: &str, bearer: Option<&str>| {
        let mut request = gw.client.get(gw.url(path));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    for bearer in [
        None,
        Some("wrong-token-wrong-token-0000"),
        Some(crate::common::ADMIN_KEY),
    ] {
        let (status, body) = get("/metrics", bearer).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bearer:?}: {body}");
        assert_eq!(body["code"], "unauthorized");
        assert!(!body.to_string().contains(token));
    }
    let response = gw
        .client
        .get(gw.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("gateway_requests_total"));
    for path in ["/health", "/ready"] {
        assert_eq!(get(path, None).await.0, StatusCode::OK, "{path}");
    }
}

on_both_backends!(
    management_routes_require_the_admin_key,
    health_and_metrics_are_open
);
