//! The parameters the OpenAPI document promises for each tool action are the parameters
//! the pipeline accepts: requests generated from the served document itself (a valid
//! object per action, then each field left out, set to `null`, and given every value its
//! schema draws a line at) are sent to a real gateway, and the server refuses a call with
//! `invalid_params` exactly when the document's schema refuses its `params`.

use crate::common::{Backend, Fixture, TestDatabase, TestGateway, SIGNING_SECRET};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

/// `schema` with its `$ref`s into `#/components/schemas` followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// (tool, action, params schema) of every alternative of the proxy request body.
fn actions(doc: &Value) -> Vec<(String, String, Value)> {
    let body = &doc["paths"]["/api/proxy-request"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let body = resolve(doc, body);
    body["oneOf"]
        .as_array()
        .expect("the body is one alternative per action")
        .iter()
        .map(|alternative| {
            let p = &alternative["properties"];
            (
                p["tool"]["enum"][0].as_str().unwrap().to_string(),
                p["action"]["enum"][0].as_str().unwrap().to_string(),
                p["params"].clone(),
            )
        })
        .collect()
}

/// The object schemas an `allOf` (or a plain object schema) is made of.
fn parts(schema: &Value) -> Vec<&Value> {
    match schema["allOf"].as_array() {
        Some(all) => all.iter().collect(),
        None => vec![schema],
    }
}

/// The non-null alternative of an optional field's `anyOf`, or the schema itself.
fn non_null(schema: &Value) -> &Value {
    schema["anyOf"]
        .as_array()
        .and_then(|any| any.iter().find(|s| s["type"] != "null"))
        .unwrap_or(schema)
}

/// A value the schema accepts.
fn valid(schema: &Value) -> Value {
    let schema = non_null(schema);
    if let Some(words) = schema["enum"].as_array() {
        return words[0].clone();
    }
    match schema["type"].as_str() {
        Some("string") => match (schema["format"].as_str(), schema["minLength"].as_u64()) {
            (Some("email"), _) => json!("agent@example.com"),
            (Some("uri"), _) => json!("https://example.com/page"),
            (_, min) => json!("x".repeat(min.unwrap_or(1) as usize)),
        },
        Some("integer") | Some("number") => schema["minimum"].clone(),
        Some("array") => {
            let count = schema["minItems"].as_u64().unwrap_or(1).max(1) as usize;
            Value::Array(vec![valid(&schema["items"]); count])
        }
        Some("object") if schema["additionalProperties"].is_object() => json!({"k": "v"}),
        _ => valid_object(schema),
    }
}

/// An object holding every required field (for an `anyOf` of requirements, the first).
fn valid_object(schema: &Value) -> Value {
    let mut object = Map::new();
    for part in parts(schema) {
        for name in part["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            object.insert(name.into(), valid(&part["properties"][name]));
        }
        if let Some(first) = part["anyOf"].as_array().and_then(|any| any.first()) {
            let name = first["required"][0].as_str().unwrap();
            object.insert(name.into(), valid(&first["properties"][name]));
        }
    }
    Value::Object(object)
}

/// Values on and over each line the schema draws, and of the wrong type.
fn edges(schema: &Value) -> Vec<Value> {
    let schema = non_null(schema);
    let mut out = vec![json!(true), json!([]), json!({})];
    match schema["type"].as_str() {
        Some("string") => {
            out.push(json!(7));
            out.push(json!(""));
            if let Some(max) = schema["maxLength"].as_u64() {
                out.push(json!("é".repeat(max as usize)));
                out.push(json!("é".repeat(max as usize + 1)));
            }
            if schema["enum"].is_array() {
                out.push(json!("none-of-these"));
            }
            if schema["pattern"].is_string() {
                for text in [
                    "a\r\nBcc: x@y.zz",
                    "line\u{2028}break",
                    "ftp://example.com",
                    "no-at-sign",
                    "a@b",
                    "a@.b.c",
                    "a @b.cc",
                    "HTTPS://example.com",
                ] {
                    out.push(json!(text));
                }
            }
        }
        Some("integer") | Some("number") => {
            out.push(json!("5"));
            out.push(json!(1.5));
            for bound in ["minimum", "maximum"] {
                if let Some(n) = schema[bound].as_i64() {
                    out.push(json!(n));
                    out.push(json!(n as f64));
                    out.push(json!(n.saturating_sub(1)));
                    out.push(json!(n.saturating_add(1)));
                }
                if let Some(f) = schema[bound].as_f64().filter(|_| schema[bound].is_f64()) {
                    out.push(json!(f - 0.5));
                    out.push(json!(f + 0.5));
                }
            }
        }
        Some("array") => {
            let item = valid(&schema["items"]);
            if let Some(max) = schema["maxItems"].as_u64() {
                out.push(Value::Array(vec![item.clone(); max as usize]));
                out.push(Value::Array(vec![item.clone(); max as usize + 1]));
            }
            // One broken field in the first item.
            for (name, field) in schema["items"]["properties"]
                .as_object()
                .into_iter()
                .flatten()
            {
                for bad in edges(field) {
                    let mut broken = item.clone();
                    broken[name] = bad;
                    out.push(json!([broken]));
                }
                let mut without = item.clone();
                without.as_object_mut().unwrap().remove(name);
                out.push(json!([without]));
            }
            out.push(json!(["not an object"]));
        }
        Some("object") => {
            out.push(json!({"k": 1}));
            out.push(json!({"k": null}));
            out.push(json!("text"));
        }
        _ => {}
    }
    out
}

/// Every `params` object the schema's fields generate: the valid one, then each field
/// absent, `null`, valid on its own, and at each of its edges.
fn cases(schema: &Value) -> Vec<Value> {
    let base = valid(schema);
    let mut out = vec![base.clone(), json!({})];
    for part in parts(schema) {
        for (name, field) in part["properties"].as_object().into_iter().flatten() {
            let mut without = base.clone();
            without.as_object_mut().unwrap().remove(name);
            out.push(without);
            for value in [json!(null), valid(field)].into_iter().chain(edges(field)) {
                let mut with = base.clone();
                with[name] = value;
                out.push(with);
            }
        }
    }
    out
}

async fn the_document_says_which_params_are_refused() {
    // Refused parameters come before the token is checked, so they count as anonymous
    // failures: this test makes hundreds on purpose.
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut settings = crate::common::settings(&database.url, database.data_dir());
    settings.auth_failures_per_minute = 0;
    let gateway = TestGateway::start_with(settings, crate::common::secrets(SIGNING_SECRET)).await;
    let f = Fixture { gateway, database };
    let gw = &f.gateway;
    let doc: Value = gw
        .client
        .get(gw.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (agent, _) = gw.create_agent("schema-walker", "scraper").await;
    let tools = ["serpapi", "openai", "gmail_send", "http_fetch"];
    let scope = json!({"max_scope": {"tools": tools, "permissions": ["read", "write"], "max_ttl_minutes": 30}});
    let (status, body) = gw
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/agents/{agent}"),
            Some(scope),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = gw.mint_scoped(&agent, &tools, &["read", "write"]).await;
    let mut sent = 0;
    let mut refused = 0;
    let mut disagreements = Vec::new();
    for (tool, action, params_schema) in actions(&doc) {
        let validator = jsonschema::validator_for(&params_schema).expect("a valid schema");
        for params in cases(&params_schema) {
            let schema_accepts = validator.is_valid(&params);
            let body =
                json!({"agent_token": token, "tool": tool, "action": action, "params": params});
            let (status, _, answer) = crate::common::proxy(gw, body).await;
            let server_refuses =
                status == StatusCode::BAD_REQUEST && answer["code"] == "invalid_params";
            assert!(
                status.is_success() || server_refuses,
                "{tool}.{action} {params}: {status} {answer}"
            );
            if schema_accepts == server_refuses {
                disagreements.push(format!(
                    "{tool}.{action} {params}: the document {} it, the server answered {status} {}",
                    if schema_accepts { "accepts" } else { "refuses" },
                    answer["details"]
                ));
            }
            sent += 1;
            refused += usize::from(server_refuses);
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {sent}:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The cases cut both ways.
    assert!(
        refused > sent / 4 && refused < sent,
        "{refused} of {sent} refused"
    );
}

crate::on_sqlite!(the_document_says_which_params_are_refused);
