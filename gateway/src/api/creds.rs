//! Tool credentials (admin): `POST /api/admin/creds/set`, `POST /api/admin/creds/activate`,
//! `GET /api/admin/creds[/{tool}[/versions]]`, `DELETE /api/admin/creds/{id}`.
//! Credentials are sealed under the KEK before they are stored and never returned.

use super::json::JsonBody;
use super::time::iso_ms;
use crate::api::path_text::PathText;
use crate::catalog::ToolName;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::credentials::CredentialRow;
use crate::store::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `POST /api/admin/creds/set`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    tool: String,
    version: String,
    credential: String,
    #[serde(default)]
    metadata: Option<Value>,
}

/// Body of `POST /api/admin/creds/activate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    id: String,
}

fn view(r: &CredentialRow) -> Value {
    json!({
        "id": r.id,
        "tool": r.tool,
        "version": r.version,
        "isActive": r.is_active == 1,
        "createdAt": iso_ms(r.created_at),
        "activatedAt": r.activated_at.map(iso_ms),
        "deactivatedAt": r.deactivated_at.map(iso_ms),
    })
}

/// Tools that take a credential (`http_fetch` needs none).
fn credential_tool(tool: &str) -> Result<ToolName, ApiError> {
    match tool.parse::<ToolName>() {
        Ok(t) if t != ToolName::HttpFetch => Ok(t),
        _ => Err(ApiError::validation(vec![
            "tool: must be one of serpapi, openai, gmail_send".into(),
        ])),
    }
}

/// `POST /api/admin/creds/set`: stores a sealed credential, inactive.
#[utoipa::path(
    post,
    path = "/api/admin/creds/set",
    tag = "credentials",
    description = "Store a tool credential, sealed at rest. Error codes: validation_failed.",
    responses(
        (status = 201, description = "Created"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn set(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tool = credential_tool(&body.tool)?;
    let mut problems = Vec::new();
    if body.version.is_empty() || body.version.len() > 64 {
        problems.push("version: 1 to 64 characters".to_string());
    }
    if body.credential.is_empty() || body.credential.len() > 8192 {
        problems.push("credential: 1 to 8192 characters".to_string());
    }
    if body.metadata.as_ref().is_some_and(|m| !m.is_object()) {
        problems.push("metadata: must be an object".to_string());
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let credentials = &state.proxy.credentials;
    let sealed = serde_json::to_string(&credentials.seal(tool.as_str(), &body.credential))
        .map_err(|e| ApiError::internal("sealing a credential", &e))?;
    let metadata = match &body.metadata {
        Some(m) => Some(
            serde_json::to_string(&credentials.seal_metadata(tool.as_str(), &m.to_string()))
                .map_err(|e| ApiError::internal("sealing credential metadata", &e))?,
        ),
        None => None,
    };
    let now = now_ms();
    let row = CredentialRow {
        id: uuid::Uuid::new_v4().to_string(),
        tool: tool.as_str().into(),
        version: body.version,
        is_active: 0,
        credential: sealed,
        metadata,
        created_at: now,
        updated_at: now,
        activated_at: None,
        deactivated_at: None,
    };
    if !state.store.insert_credential(&row).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "credential_exists",
            "This tool already has a credential with that version",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "message": "Credential stored",
            "id": row.id,
            "tool": row.tool,
            "version": row.version,
            "isActive": false,
        })),
    ))
}

/// `POST /api/admin/creds/activate`: makes a credential its tool's only active one.
#[utoipa::path(
    post,
    path = "/api/admin/creds/activate",
    tag = "credentials",
    description = "Make a stored credential its tool's active one. Error codes: credential_not_found.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ActivateRequest>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .activate_credential(&body.id, now_ms())
        .await?
        .ok_or_else(not_found)?;
    state
        .proxy
        .credentials
        .refresh(&state.store)
        .await
        .map_err(|e| ApiError::internal("loading the activated credential", &e))?;
    let mut out = view(&row);
    out["message"] = json!("Credential activated");
    Ok(Json(out))
}

/// `GET /api/admin/creds`: every credential (never the secret).
#[utoipa::path(
    get,
    path = "/api/admin/creds",
    tag = "credentials",
    description = "Credential records (never the secrets).",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rows = state.store.list_credentials(None).await?;
    Ok(Json(Value::Array(rows.iter().map(view).collect())))
}

/// `GET /api/admin/creds/{tool}`: the tool's active credential.
#[utoipa::path(
    get,
    path = "/api/admin/creds/{key}",
    tag = "credentials",
    description = "A tool's active credential record. Error codes: credential_not_found.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn active(
    State(state): State<AppState>,
    PathText(tool): PathText,
) -> Result<Json<Value>, ApiError> {
    let tool = credential_tool(&tool)?;
    let rows = state.store.list_credentials(Some(tool.as_str())).await?;
    rows.iter()
        .find(|r| r.is_active == 1)
        .map(|r| Json(view(r)))
        .ok_or_else(|| {
            ApiError::not_found(
                "credential_not_found",
                "No active credential found for tool",
            )
        })
}

/// `GET /api/admin/creds/{tool}/versions`: every credential of the tool.
#[utoipa::path(
    get,
    path = "/api/admin/creds/{tool}/versions",
    tag = "credentials",
    description = "Every credential record of a tool.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn versions(
    State(state): State<AppState>,
    PathText(tool): PathText,
) -> Result<Json<Value>, ApiError> {
    let tool = credential_tool(&tool)?;
    let rows = state.store.list_credentials(Some(tool.as_str())).await?;
    Ok(Json(Value::Array(rows.iter().map(view).collect())))
}

/// `DELETE /api/admin/creds/{id}`.
#[utoipa::path(
    delete,
    path = "/api/admin/creds/{key}",
    tag = "credentials",
    description = "Delete a credential record. Error codes: credential_not_found.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<Json<Value>, ApiError> {
    if !state.store.delete_credential(&id).await? {
        return Err(not_found());
    }
    state
        .proxy
        .credentials
        .refresh(&state.store)
        .await
        .map_err(|e| ApiError::internal("reloading credentials", &e))?;
    Ok(Json(json!({ "message": "Credential deleted" })))
}

fn not_found() -> ApiError {
    ApiError::not_found("credential_not_found", "Credential not found")
}
