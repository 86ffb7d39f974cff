//! Tool credentials (admin): `POST /api/admin/creds/set`, `POST /api/admin/creds/activate`,
//! `GET /api/admin/creds[/{tool}[/versions]]`, `DELETE /api/admin/creds/{id}`.
//! Credentials are sealed under the KEK before they are stored and never returned.

use super::json::JsonBody;
use crate::api::message::Message;
use crate::api::path_text::PathText;
use crate::catalog::ToolName;
use crate::clock::iso_ms;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use crate::store::credentials::CredentialRow;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Body of `POST /api/admin/creds/set`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    /// `serpapi`, `openai` or `gmail_send`.
    tool: String,
    /// A name for this credential, unique per tool (1–64 characters).
    version: String,
    /// The secret (1–8192 characters); sealed before it is stored, never returned.
    credential: String,
    /// Settings that go with it (an object), sealed too.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// Body of `POST /api/admin/creds/activate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The credential's id, as `set` answered it.
    id: String,
}

/// A credential record as listed (never the secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    id: String,
    tool: String,
    version: String,
    is_active: bool,
    created_at: String,
    activated_at: Option<String>,
    deactivated_at: Option<String>,
}

impl From<&CredentialRow> for CredentialView {
    fn from(r: &CredentialRow) -> Self {
        Self {
            id: r.id.clone(),
            tool: r.tool.clone(),
            version: r.version.clone(),
            is_active: r.is_active == 1,
            created_at: iso_ms(r.created_at),
            activated_at: r.activated_at.map(iso_ms),
            deactivated_at: r.deactivated_at.map(iso_ms),
        }
    }
}

/// Reply of `POST /api/admin/creds/set`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialStored {
    message: String,
    id: String,
    tool: String,
    version: String,
    is_active: bool,
}

/// Reply of `POST /api/admin/creds/activate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialActivated {
    message: String,
    #[serde(flatten)]
    credential: CredentialView,
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
    description = "Store a tool credential, sealed at rest. Error codes: validation_failed, credential_exists.",
    request_body(content = SetRequest, content_type = "application/json", example = json!({"tool": "serpapi", "version": "v2", "credential": "sk-example"})),
    responses(
        (status = 201, description = "Created", body = CredentialStored),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn set(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetRequest>,
) -> Result<(StatusCode, Json<CredentialStored>), ApiError> {
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
    let now = state.store.now_ms();
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
            Refusal::CredentialExists,
            "This tool already has a credential with that version",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(CredentialStored {
            message: "Credential stored".into(),
            id: row.id,
            tool: row.tool,
            version: row.version,
            is_active: false,
        }),
    ))
}

/// `POST /api/admin/creds/activate`: makes a credential its tool's only active one.
#[utoipa::path(
    post,
    path = "/api/admin/creds/activate",
    tag = "credentials",
    description = "Make a stored credential its tool's active one. Error codes: credential_not_found.",
    request_body(content = ActivateRequest, content_type = "application/json", example = json!({"id": "00000000-0000-4000-8000-000000000000"})),
    responses(
        (status = 200, description = "OK", body = CredentialActivated),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ActivateRequest>,
) -> Result<Json<CredentialActivated>, ApiError> {
    let row = state
        .store
        .activate_credential(&body.id, state.store.now_ms())
        .await?
        .ok_or_else(not_found)?;
    state
        .proxy
        .credentials
        .refresh(&state.store)
        .await
        .map_err(|e| ApiError::internal("loading the activated credential", &e))?;
    Ok(Json(CredentialActivated {
        message: "Credential activated".into(),
        credential: CredentialView::from(&row),
    }))
}

/// `GET /api/admin/creds`: every credential (never the secret).
#[utoipa::path(
    get,
    path = "/api/admin/creds",
    tag = "credentials",
    description = "Credential records (never the secrets).",
    responses(
        (status = 200, description = "OK", body = Vec<CredentialView>),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<CredentialView>>, ApiError> {
    let rows = state.store.list_credentials(None).await?;
    Ok(Json(rows.iter().map(CredentialView::from).collect()))
}

/// `GET /api/admin/creds/{tool}`: the tool's active credential.
#[utoipa::path(
    get,
    path = "/api/admin/creds/{key}",
    tag = "credentials",
    description = "A tool's active credential record. Error codes: credential_not_found.",
    responses(
        (status = 200, description = "OK", body = CredentialView),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn active(
    State(state): State<AppState>,
    PathText(tool): PathText,
) -> Result<Json<CredentialView>, ApiError> {
    let tool = credential_tool(&tool)?;
    let rows = state.store.list_credentials(Some(tool.as_str())).await?;
    rows.iter()
        .find(|r| r.is_active == 1)
        .map(|r| Json(CredentialView::from(r)))
        .ok_or_else(|| {
            ApiError::new(
                Refusal::CredentialNotFound,
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
        (status = 200, description = "OK", body = Vec<CredentialView>),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn versions(
    State(state): State<AppState>,
    PathText(tool): PathText,
) -> Result<Json<Vec<CredentialView>>, ApiError> {
    let tool = credential_tool(&tool)?;
    let rows = state.store.list_credentials(Some(tool.as_str())).await?;
    Ok(Json(rows.iter().map(CredentialView::from).collect()))
}

/// `DELETE /api/admin/creds/{id}`.
#[utoipa::path(
    delete,
    path = "/api/admin/creds/{key}",
    tag = "credentials",
    description = "Delete a credential record. Error codes: credential_not_found.",
    responses(
        (status = 200, description = "OK", body = Message),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<Json<Message>, ApiError> {
    if !state.store.delete_credential(&id).await? {
        return Err(not_found());
    }
    state
        .proxy
        .credentials
        .refresh(&state.store)
        .await
        .map_err(|e| ApiError::internal("reloading credentials", &e))?;
    Ok(Json(Message::new("Credential deleted")))
}

fn not_found() -> ApiError {
    ApiError::new(Refusal::CredentialNotFound, "Credential not found")
}
