//! Step 1 of the pipeline: the request body (and `Authorization: Bearer` token), read into
//! a known tool, action and validated parameters.

use crate::catalog::ToolName;
use crate::catalog::{self as actions, ActionSpec};
use crate::error::ApiError;
use crate::error::Refusal;
use crate::tools::{PreparedCall, Tools};
use axum::http::{header, HeaderMap};
use serde_json::{json, Map, Value};

/// A proxy request that passed step 1.
pub struct ProxyInput {
    /// The agent token.
    pub token: String,
    /// What is called.
    pub spec: &'static ActionSpec,
    /// The parameters as sent (plugins and the cache key see these).
    pub params: Value,
    /// The validated parameters.
    pub prepared: PreparedCall,
    /// Stated intent (top-level, or inside the parameters).
    pub intent: Option<String>,
    /// The token id the client says it presents (`token_id`), checked against the token.
    pub token_id: Option<String>,
}

/// What step 1 could read even when it failed, for the audit row.
#[derive(Debug, Default, Clone)]
pub struct Named {
    /// Tool as sent.
    pub tool: String,
    /// Action as sent.
    pub action: String,
    /// The tool, once recognised.
    pub known_tool: Option<ToolName>,
    /// The action, once recognised.
    pub known_action: Option<&'static ActionSpec>,
}

const MISSING: &str =
    "Missing required fields: agent_token, tool, action, and params are required.";
const PROOF_REQUIRED: &str =
    "Token provenance validation requires proof_payload when token_id is provided.";

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

fn take_string(body: &mut Map<String, Value>, name: &str) -> Option<String> {
    match body.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// Reads the body. `named` receives the tool and action as soon as they are known.
pub fn read(
    headers: &HeaderMap,
    body: &[u8],
    tools: &Tools,
    named: &mut Named,
) -> Result<ProxyInput, ApiError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(Refusal::InvalidJson, "Request body is not valid JSON")
            .with_details(json!([e.to_string()]))
    })?;
    let Value::Object(mut body) = parsed else {
        return Err(ApiError::new(Refusal::MissingFields, MISSING)
            .with_details(json!(["body: must be a JSON object"])));
    };
    let tool = take_string(&mut body, "tool");
    let action = take_string(&mut body, "action");
    named.tool = tool.clone().unwrap_or_default();
    named.action = action.clone().unwrap_or_default();
    named.known_tool = named.tool.parse().ok();
    named.known_action = named
        .known_tool
        .and_then(|t| actions::find(t, &named.action));
    let token = take_string(&mut body, "agent_token").or_else(|| bearer(headers));
    let params = body.remove("params").filter(Value::is_object);
    let intent = take_string(&mut body, "intent");
    let mut missing = Vec::new();
    for (name, present) in [
        ("agent_token", token.is_some()),
        ("tool", tool.is_some()),
        ("action", action.is_some()),
        ("params", params.is_some()),
    ] {
        if !present {
            missing.push(format!("{name}: required"));
        }
    }
    let (Some(token), Some(tool), Some(action), Some(params)) = (token, tool, action, params)
    else {
        return Err(ApiError::new(Refusal::MissingFields, MISSING).with_details(json!(missing)));
    };
    // Provenance (the original's step 3): `token_id` binds the request to the token the
    // client holds, and asks for `proof_payload`, as the original did; `proof_payload`
    // alone is ignored. The sealed token proves its own integrity, so the payload's content
    // is not checked; `token_id` is, against the token, once it is opened.
    let token_id = match body.remove("token_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id),
        Some(_) => {
            return Err(ApiError::new(
                Refusal::InvalidTokenId,
                "token_id must be the token's id, a string",
            ))
        }
    };
    let proof = take_string(&mut body, "proof_payload");
    if token_id.is_some() && proof.is_none() {
        return Err(ApiError::new(Refusal::ProofPayloadRequired, PROOF_REQUIRED));
    }
    let tool_name: ToolName = named.known_tool.ok_or_else(|| {
        ApiError::new(
            Refusal::UnsupportedTool,
            format!("Unsupported tool: {tool}"),
        )
    })?;
    let spec = named.known_action.ok_or_else(|| {
        ApiError::new(
            Refusal::UnsupportedAction,
            format!("Unsupported action: {action} for tool: {tool}"),
        )
        .with_details(json!({ "available_actions": actions::names_of(tool_name) }))
    })?;
    let prepared = tools.prepare(spec, &params).map_err(|details| {
        ApiError::new(Refusal::InvalidParams, "Parameter validation failed")
            .with_details(json!(details))
    })?;
    let intent = intent.or_else(|| {
        params
            .get("intent")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    Ok(ProxyInput {
        token,
        spec,
        params,
        prepared,
        intent,
        token_id,
    })
}
