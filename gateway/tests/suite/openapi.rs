//! The OpenAPI document agrees with the router: every documented operation is served, every
//! route of the router is documented, each request example is accepted as well-formed by its
//! route, and the `/docs` page and its assets are served from the binary.

use crate::common::{Backend, Fixture, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

/// Routes of the router that are not API operations: the document itself and its page.
const NOT_OPERATIONS: &[&str] = &["/api/openapi.json"];

async fn document(f: &Fixture) -> Value {
    let response = f
        .gateway
        .client
        .get(f.gateway.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// (method, path template) of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                found.push((method.to_string(), path.clone()));
            }
        }
    }
    found
}

/// The path templates the router registers, read off `gateway/src/api/mod.rs`.
fn routed_paths() -> BTreeSet<String> {
    let source = include_str!("../../src/api/mod.rs");
    let mut paths = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        if let Some(rest) = chunk.strip_prefix('"') {
            paths.insert(rest[..rest.find('"').unwrap()].to_string());
        } else if chunk.starts_with("tokens::GENERATE_TOKEN_PATH") {
            paths.insert(gateway::api::tokens::GENERATE_TOKEN_PATH.to_string());
        } else {
            panic!(
                "a route whose path is not a literal: {}",
                &chunk[..40.min(chunk.len())]
            );
        }
    }
    paths
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether an answer is the router's own "no such route / method" rather than a handler's.
fn is_fallback(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND
            && body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Route ")))
}

async fn call(f: &Fixture, method: &str, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = f
        .gateway
        .client
        .request(method, f.gateway.url(&concrete(path)))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(body);
    }
    crate::common::read(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_router_agree() {
    let f = Fixture::start(Backend::Sqlite).await;
    let doc = document(&f).await;
    assert_eq!(
        doc["openapi"].as_str().map(|v| &v[..3]),
        Some("3.1"),
        "{doc}"
    );
    let operations = operations(&doc);
    for (method, path) in &operations {
        let (status, body) = call(&f, method, path, None).await;
        assert!(
            !is_fallback(status, &body),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
    let documented: BTreeSet<String> = operations.iter().map(|(_, p)| p.clone()).collect();
    for path in routed_paths() {
        if NOT_OPERATIONS.contains(&path.as_str()) {
            continue;
        }
        assert!(
            documented.contains(&path),
            "{path} is served but not documented"
        );
    }
    for scheme in ["admin_key", "agent_token", "agent_signature"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"]["properties"]["code"].is_object());
    let agents = &doc["paths"]["/api/agents/{id}"]["get"];
    assert_eq!(agents["parameters"][0]["name"], "id", "{agents}");
    assert_eq!(agents["security"][0]["admin_key"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_example_is_well_formed_for_its_route() {
    let f = Fixture::start(Backend::Sqlite).await;
    let doc = document(&f).await;
    let mut tried = 0;
    for (method, path) in operations(&doc) {
        let example =
            &doc["paths"][&path][&method]["requestBody"]["content"]["application/json"]["example"];
        if example.is_null() {
            continue;
        }
        tried += 1;
        let (status, body) = call(&f, &method, &path, Some(example)).await;
        assert!(
            !matches!(status.as_u16(), 400 | 413 | 415 | 422),
            "{method} {path}: its example is refused: {status} {body}"
        );
    }
    assert!(tried >= 8, "only {tried} examples");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_and_its_assets_come_from_the_binary() {
    let f = Fixture::start(Backend::Sqlite).await;
    let page = f
        .gateway
        .client
        .get(f.gateway.url("/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/openapi.json"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from the network: {html}"
    );
    let slashed = f
        .gateway
        .client
        .get(f.gateway.url("/docs/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(slashed.contains("\"/docs/swagger-ui.css\""), "{slashed}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let response = f
            .gateway
            .client
            .get(f.gateway.url(asset))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 10_000, "{asset}");
    }
}

/// Headless Chromium (Debian's package; `make test` installs it) opens `/docs` and the page
/// lists every documented path. Skipped, saying so, where Chromium is not installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_lists_every_operation_in_a_browser() {
    let Some(browser) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok()
    }) else {
        eprintln!("skipped: Chromium is not installed (make browser installs it)");
        return;
    };
    let f = Fixture::start(Backend::Sqlite).await;
    let doc = document(&f).await;
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            // Lets the page's scripts fetch the document and render before the DOM is read.
            "--virtual-time-budget=15000",
            "--dump-dom",
            &f.gateway.url("/docs"),
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("the browser runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    let listed: BTreeSet<&str> = dom
        .split("data-path=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, documented, "the page as rendered:\n{dom}");
}
