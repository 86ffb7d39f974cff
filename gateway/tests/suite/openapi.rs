//! The OpenAPI document agrees with the router (both come from one route table, in
//! `gateway/src/api/mod.rs`): every documented operation is served with the security it
//! documents, each request example is accepted as well-formed by its
//! route, and the `/docs` page and its assets are served from the binary.

use crate::common::{Backend, Fixture, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

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

async fn call_anonymously(f: &Fixture, method: &str, path: &str) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let request = f
        .gateway
        .client
        .request(method, f.gateway.url(&concrete(path)));
    crate::common::read(request.send().await.unwrap()).await
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
    // The security each operation documents is the one it enforces: an operation that
    // takes the admin key refuses a caller without it, an open one never asks for a key.
    for (method, path) in &operations {
        let security = &doc["paths"][path][method]["security"];
        let admin_only = security == &serde_json::json!([{"admin_key": []}]);
        let (status, body) = call_anonymously(&f, method, path).await;
        if admin_only {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            let listed = &doc["paths"][path][method]["responses"]["401"]["description"];
            assert!(
                listed.as_str().is_some_and(|d| d.contains("unauthorized")),
                "{method} {path} answers 401 unauthorized without documenting it: {listed}"
            );
        } else if security.is_null() {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
    let proxy = &doc["paths"]["/api/proxy-request"]["post"]["responses"];
    for (status, code) in [
        ("429", "too_many_auth_failures"),
        ("504", "upstream_timeout"),
        ("503", "store_unavailable"),
    ] {
        assert!(
            proxy[status]["description"]
                .as_str()
                .is_some_and(|d| d.contains(code)),
            "{status} {code}: {proxy}"
        );
    }
    let mut ids = BTreeSet::new();
    for (method, path) in &operations {
        let id = doc["paths"][path][method]["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
    }
    assert!(
        ids.contains("plugins_shadow_get") && ids.contains("proxy_call"),
        "{ids:?}"
    );
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

/// The schema the document gives for `method path` answering `status` (its own, else the
/// operation's `default`), made strict: an
/// object may hold no property its schema does not name, so an answer with a field the
/// document leaves out fails as surely as one missing a required field.
fn response_validator(doc: &Value, method: &str, path: &str, status: u16) -> jsonschema::Validator {
    let responses = &doc["paths"][path][method]["responses"];
    let response = match &responses[status.to_string()] {
        Value::Null => &responses["default"],
        own => own,
    };
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no JSON schema for {status}: {responses}"
    );
    let mut root =
        serde_json::json!({ "components": doc["components"].clone(), "allOf": [schema] });
    forbid_unnamed_properties(&mut root);
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: the schema does not compile: {e}"))
}

/// Adds `unevaluatedProperties: false` to every object schema that names its properties
/// (it sees through the `allOf` that flattened structs become), except the parts of such an
/// `allOf`: each part sees only its own properties, so the whole is what must be closed.
fn forbid_unnamed_properties(root: &mut Value) {
    let mut parts = BTreeSet::new();
    collect_all_of_parts(root, &mut parts);
    close_objects(root, &parts, "#", false);
}

/// The `$ref`s that appear as parts of an `allOf`.
fn collect_all_of_parts(value: &Value, parts: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(all)) = map.get("allOf") {
                parts.extend(
                    all.iter()
                        .filter_map(|p| p["$ref"].as_str().map(String::from)),
                );
            }
            map.values().for_each(|v| collect_all_of_parts(v, parts));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_all_of_parts(v, parts)),
        _ => {}
    }
}

/// Closes the object schemas under `value`; `part` says `value` is itself a part of an
/// `allOf` (left open: its whole is closed instead).
fn close_objects(value: &mut Value, parts: &BTreeSet<String>, pointer: &str, part: bool) {
    match value {
        Value::Object(map) => {
            let names_properties = map.contains_key("properties") || map.contains_key("allOf");
            if names_properties
                && !part
                && !parts.contains(pointer)
                && !map.contains_key("additionalProperties")
            {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            for (key, child) in map.iter_mut() {
                let pointer = format!("{pointer}/{key}");
                if key == "allOf" {
                    if let Value::Array(items) = child {
                        for (i, item) in items.iter_mut().enumerate() {
                            close_objects(item, parts, &format!("{pointer}/{i}"), true);
                        }
                    }
                } else {
                    close_objects(child, parts, &pointer, false);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                close_objects(child, parts, &format!("{pointer}/{i}"), false);
            }
        }
        _ => {}
    }
}

/// Calls each operation for real, as a user would in a walkthrough, and checks each answer
/// against the schema the document gives for its status; every documented success that has
/// a JSON body is checked at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_its_documented_schema() {
    use serde_json::json;
    // Development: the chaos routes answer (production refuses them).
    let f = Fixture::with_default_plugins_and(Backend::Sqlite, |s| {
        s.environment = gateway::config::Environment::Development
    })
    .await;
    let gw = &f.gateway;
    let doc = document(&f).await;
    let mut checked: BTreeSet<(String, String)> = BTreeSet::new();
    let mut check = |method: &str, template: &str, status: StatusCode, body: &Value| {
        let validator = response_validator(&doc, method, template, status.as_u16());
        let problems: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            problems.is_empty(),
            "{method} {template} answered {status} with a body its schema refuses:\n{}\n{body:#}",
            problems.join("\n")
        );
        checked.insert((method.to_string(), template.to_string()));
    };
    macro_rules! step {
        ($method:ident, $template:expr, $path:expr, $body:expr, $status:expr) => {{
            let (status, body) = gw.admin(Method::$method, &$path, $body).await;
            assert_eq!(status, $status, "{} {}: {body}", stringify!($method), $path);
            check(
                &stringify!($method).to_lowercase(),
                $template,
                status,
                &body,
            );
            body
        }};
    }

    for path in ["/health", "/api/health", "/ready"] {
        step!(GET, path, path, None, StatusCode::OK);
    }
    let created = step!(GET, "/api/agents", "/api/agents", None, StatusCode::OK);
    assert!(created["agents"].is_array());
    let agent = step!(
        POST,
        "/api/create-agent",
        "/api/create-agent",
        Some(json!({"name": "scout", "created_by": "ops", "role": crate::common::ANY_HOUR_ROLE})),
        StatusCode::CREATED
    );
    let agent_id = agent["agent_id"].as_str().unwrap().to_string();
    step!(
        GET,
        "/api/agents/{id}",
        format!("/api/agents/{agent_id}"),
        None,
        StatusCode::OK
    );
    step!(
        PATCH,
        "/api/agents/{id}",
        format!("/api/agents/{agent_id}"),
        Some(
            json!({"max_scope": {"tools": ["serpapi"], "permissions": ["read"], "max_ttl_minutes": 30}})
        ),
        StatusCode::OK
    );
    let minted = step!(
        POST,
        "/api/generate-token",
        "/api/generate-token",
        Some(
            json!({"agent_id": agent_id, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 15})
        ),
        StatusCode::CREATED
    );
    let token = minted["agent_token"].as_str().unwrap().to_string();
    let token_id = minted["token_id"].as_str().unwrap().to_string();
    step!(
        POST,
        "/api/admin/tokens/introspect",
        "/api/admin/tokens/introspect",
        Some(json!({"agent_token": token})),
        StatusCode::OK
    );
    step!(
        POST,
        "/api/admin/tokens/introspect",
        "/api/admin/tokens/introspect",
        Some(json!({"agent_token": "gw1.not-a-token"})),
        StatusCode::OK
    );
    step!(
        GET,
        "/api/admin/tokens",
        "/api/admin/tokens",
        None,
        StatusCode::OK
    );

    gw.allow_any_hour_role().await;
    let (status, _, body) = crate::common::proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi",
        "action": "search", "params": {"q": "rust"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    check("post", "/api/proxy-request", status, &body);
    step!(
        GET,
        "/api/proxy/status",
        "/api/proxy/status",
        None,
        StatusCode::OK
    );
    step!(
        GET,
        "/api/proxy/logs",
        "/api/proxy/logs",
        None,
        StatusCode::OK
    );
    step!(
        POST,
        "/api/admin/tokens/{token_id}/revoke",
        format!("/api/admin/tokens/{token_id}/revoke"),
        None,
        StatusCode::OK
    );

    let policy = step!(
        POST,
        "/api/policies",
        "/api/policies",
        Some(
            json!({"name": "scout-scopes", "role": crate::common::ANY_HOUR_ROLE, "spec": {"scopes": ["serpapi:search"]}})
        ),
        StatusCode::CREATED
    );
    let policy_id = policy["id"].as_str().unwrap().to_string();
    step!(GET, "/api/policies", "/api/policies", None, StatusCode::OK);
    step!(
        GET,
        "/api/policies/{id}",
        format!("/api/policies/{policy_id}"),
        None,
        StatusCode::OK
    );
    step!(
        PATCH,
        "/api/policies/{id}",
        format!("/api/policies/{policy_id}"),
        Some(json!({"description": "searches only"})),
        StatusCode::OK
    );
    step!(
        GET,
        "/api/policies/merged/{agent_id}",
        format!("/api/policies/merged/{agent_id}"),
        None,
        StatusCode::OK
    );
    step!(
        GET,
        "/api/policy-logs",
        "/api/policy-logs",
        None,
        StatusCode::OK
    );

    let stored = step!(
        POST,
        "/api/admin/creds/set",
        "/api/admin/creds/set",
        Some(json!({"tool": "serpapi", "version": "v2", "credential": "sk-example"})),
        StatusCode::CREATED
    );
    let credential = stored["id"].as_str().unwrap().to_string();
    step!(
        POST,
        "/api/admin/creds/activate",
        "/api/admin/creds/activate",
        Some(json!({"id": credential})),
        StatusCode::OK
    );
    step!(
        GET,
        "/api/admin/creds",
        "/api/admin/creds",
        None,
        StatusCode::OK
    );
    step!(
        GET,
        "/api/admin/creds/{key}",
        "/api/admin/creds/serpapi",
        None,
        StatusCode::OK
    );
    step!(
        GET,
        "/api/admin/creds/{tool}/versions",
        "/api/admin/creds/serpapi/versions",
        None,
        StatusCode::OK
    );
    step!(
        DELETE,
        "/api/admin/creds/{key}",
        format!("/api/admin/creds/{credential}"),
        None,
        StatusCode::OK
    );

    step!(
        POST,
        "/api/admin/chaos/tool",
        "/api/admin/chaos/tool",
        Some(json!({"tool": "serpapi", "mode": "jitter", "pct": 10})),
        StatusCode::OK
    );
    step!(
        GET,
        "/api/admin/chaos",
        "/api/admin/chaos",
        None,
        StatusCode::OK
    );
    step!(
        DELETE,
        "/api/admin/chaos/tool/{tool}",
        "/api/admin/chaos/tool/serpapi",
        None,
        StatusCode::OK
    );

    step!(
        GET,
        "/api/admin/plugins",
        "/api/admin/plugins",
        None,
        StatusCode::OK
    );
    step!(
        POST,
        "/api/admin/plugins/reload",
        "/api/admin/plugins/reload",
        None,
        StatusCode::OK
    );
    step!(
        POST,
        "/api/admin/plugins/evaluate",
        "/api/admin/plugins/evaluate",
        Some(json!({"agent_role": "scraper", "tool": "serpapi", "action": "search", "params": {}})),
        StatusCode::OK
    );
    let deny_all = crate::common::wasm_base64("target/plugin-fixtures", "deny-all");
    let spec_policy = crate::common::wasm_base64("policies-wasm", "spec-policy");
    let binding = json!({"tools": ["serpapi"], "config": {"scopes": ["serpapi:search"]}});
    step!(
        PUT,
        "/api/admin/plugins/{name}",
        "/api/admin/plugins/guard",
        Some(json!({"wasm_base64": spec_policy, "binding": binding})),
        StatusCode::CREATED
    );
    step!(
        PUT,
        "/api/admin/plugins/{name}",
        "/api/admin/plugins/guard",
        Some(json!({"wasm_base64": spec_policy, "binding": binding,
            "sample": {"agent_role": "scraper", "tool": "serpapi", "action": "search"}})),
        StatusCode::CREATED
    );
    step!(
        POST,
        "/api/admin/plugins/{name}/rollback",
        "/api/admin/plugins/guard/rollback",
        None,
        StatusCode::OK
    );
    step!(
        PUT,
        "/api/admin/plugins/{name}/shadow",
        "/api/admin/plugins/guard/shadow",
        Some(json!({"wasm_base64": deny_all, "percent": 100})),
        StatusCode::CREATED
    );
    step!(
        GET,
        "/api/admin/plugins/{name}/shadow",
        "/api/admin/plugins/guard/shadow",
        None,
        StatusCode::OK
    );
    step!(
        POST,
        "/api/admin/plugins/{name}/shadow/promote",
        "/api/admin/plugins/guard/shadow/promote",
        None,
        StatusCode::OK
    );

    step!(
        GET,
        "/api/agents/{id}",
        "/api/agents/unknown",
        None,
        StatusCode::NOT_FOUND
    );
    step!(
        POST,
        "/api/generate-token",
        "/api/generate-token",
        Some(json!({"agent_id": agent_id})),
        StatusCode::BAD_REQUEST
    );

    let mut unchecked = Vec::new();
    for (method, path) in operations(&doc) {
        let responses = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap();
        let has_json_success = responses.iter().any(|(status, response)| {
            status.starts_with('2') && response["content"]["application/json"].is_object()
        });
        if has_json_success && !checked.contains(&(method.clone(), path.clone())) {
            unchecked.push(format!("{method} {path}"));
        }
    }
    assert!(
        unchecked.is_empty(),
        "documented successes never checked: {unchecked:?}"
    );
}
