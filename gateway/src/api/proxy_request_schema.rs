//! The documented body of `POST /api/proxy-request`, drawn from the tool catalog: one
//! alternative per tool action, each with that action's parameter schema, so the document
//! says exactly what the pipeline's validation enforces.

use crate::catalog::ACTIONS;
use serde_json::{json, Value};
use utoipa::openapi::{schema::Schema, RefOr};

/// The body of `POST /api/proxy-request` (the pipeline reads it itself, so that each
/// problem gets its own code; this type only documents it).
pub struct ProxyRequestBody;

/// The fields every call may carry besides `tool`, `action` and `params`.
fn envelope_properties() -> Value {
    json!({
        "agent_token": {"type": "string", "description": "The agent token, unless sent as a bearer token."},
        "intent": {"type": "string", "description": "What the agent means to do, for policies that read it."},
        "token_id": {"type": "string", "description": "The token's id, binding the call to it; needs proof_payload."},
        "proof_payload": {"type": "string", "description": "Sent with token_id, as the original gateway's clients do."},
    })
}

/// The schema as JSON: `oneOf` the catalog's actions.
pub fn schema_json() -> Value {
    let alternatives: Vec<Value> = ACTIONS
        .iter()
        .map(|action| {
            let mut properties = envelope_properties();
            properties["tool"] = json!({"type": "string", "enum": [action.tool.as_str()]});
            properties["action"] = json!({"type": "string", "enum": [action.action]});
            properties["params"] = action.params_schema();
            json!({
                "type": "object",
                "title": action.dotted(),
                "description": action.description,
                "required": ["tool", "action", "params"],
                "properties": properties,
            })
        })
        .collect();
    json!({
        "description": "A call of one tool action with its parameters (GET /api/proxy/status lists the actions).",
        "oneOf": alternatives,
    })
}

impl utoipa::PartialSchema for ProxyRequestBody {
    fn schema() -> RefOr<Schema> {
        // The catalog speaks JSON Schema; the document's model reads it back.
        serde_json::from_value(schema_json()).expect("the catalog's schema is a schema")
    }
}

impl utoipa::ToSchema for ProxyRequestBody {}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn the_document_keeps_every_word_of_the_catalogs_schema() {
        let through_the_model = serde_json::to_value(ProxyRequestBody::schema()).unwrap();
        assert_eq!(
            numbers_as_floats(through_the_model),
            numbers_as_floats(schema_json())
        );
    }

    /// `2` and `2.0` are one number to JSON Schema, not to `Value`'s equality.
    fn numbers_as_floats(value: Value) -> Value {
        match value {
            Value::Number(n) => json!(n.as_f64()),
            Value::Array(items) => items.into_iter().map(numbers_as_floats).collect(),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
            other => other,
        }
    }
}
