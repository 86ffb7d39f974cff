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

on_both_backends!(
    management_routes_require_the_admin_key,
    health_and_metrics_are_open
);
