//! Policy endpoints (the original's `/api/policies` surface): create, list, get, update,
//! delete, the merged spec of an agent, and the policy decision log.

use crate::api::agents::find as find_agent;
use crate::api::json::JsonBody;
use crate::api::path_text::PathText;
use crate::api::query::QueryParams;
use crate::clock::iso_ms;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::policies::normalise;
use crate::state::AppState;
use crate::store::policies::{new_policy_id, PolicyFilter, PolicyLogRow, PolicyRow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Largest policy document, in bytes of JSON: every call of its agent or role hands the
/// merged documents to the policy plugin, within its few milliseconds.
pub const MAX_SPEC_BYTES: usize = 64 << 10;

/// A policy document within [`MAX_SPEC_BYTES`], normalised, with its hash.
fn bounded_normalise(spec: &Value) -> Result<(String, String), ApiError> {
    let size = spec.to_string().len();
    if size > MAX_SPEC_BYTES {
        return Err(ApiError::validation(vec![format!(
            "spec: {size} bytes of JSON, at most {MAX_SPEC_BYTES}"
        )]));
    }
    normalise(spec).map_err(ApiError::validation)
}

/// Body of `POST /api/policies`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreatePolicyRequest {
    name: Option<String>,
    description: Option<String>,
    /// The PolicySpec document.
    #[schema(value_type = Object)]
    spec: Option<Value>,
    agent_id: Option<String>,
    role: Option<String>,
}

/// The wire form of a policy; `spec_as_string` reproduces the original's create reply, where
/// `spec` is a JSON string.
/// A stored policy.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    id: String,
    name: String,
    description: Option<String>,
    /// The agent it applies to (or `role`).
    agent_id: Option<String>,
    /// The role it applies to (or `agentId`).
    role: Option<String>,
    /// The PolicySpec document: an object, except in the reply to `POST /api/policies`,
    /// which gives its JSON text (as the original gateway did).
    spec: Value,
    /// SHA-256 of the normalised spec.
    spec_hash: String,
    active: bool,
    created_at: String,
    updated_at: String,
}

fn view(p: &PolicyRow, spec_as_string: bool) -> PolicyView {
    let spec = if spec_as_string {
        Value::String(p.spec.clone())
    } else {
        serde_json::from_str(&p.spec).unwrap_or(Value::Null)
    };
    PolicyView {
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        agent_id: p.agent_id.clone(),
        role: p.role.clone(),
        spec,
        spec_hash: p.spec_hash.clone(),
        active: p.active != 0,
        created_at: iso_ms(p.created_at),
        updated_at: iso_ms(p.updated_at),
    }
}

fn policy_not_found() -> ApiError {
    ApiError::new(Refusal::PolicyNotFound, "Policy not found")
}

async fn refresh(state: &AppState) {
    if let Err(e) = state.policies.sync(&state.store).await {
        tracing::warn!(error = %e, "policy refresh after a change failed; the next tick retries");
    }
}

/// `POST /api/policies`.
#[utoipa::path(
    post,
    path = "/api/policies",
    tag = "policies",
    description = "Store a PolicySpec document for an agent (`agentId`) or a role. Error codes: missing_fields, validation_failed, policy_validator_failed.",
    request_body(content = CreatePolicyRequest, content_type = "application/json", example = json!({"name": "scout-scopes", "role": "scraper", "spec": {"scopes": ["serpapi:search"]}})),
    responses(
        (status = 201, description = "Created", body = PolicyView),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreatePolicyRequest>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let (Some(name), Some(spec)) = (name, body.spec) else {
        return Err(ApiError::validation(vec![
            "name and spec are required".into()
        ]));
    };
    let (agent_id, role) = match (body.agent_id, body.role) {
        (None, None) => {
            return Err(ApiError::new(
                Refusal::MissingTarget,
                "Either agentId or role must be provided",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Refusal::AmbiguousTarget,
                "Cannot specify both agentId and role",
            ))
        }
        (Some(agent), None) => (Some(find_agent(&state, &agent).await?.id.to_string()), None),
        (None, Some(role)) if !crate::api::agents::valid_role(&role) => {
            // No agent could ever have it: a policy for it would bind nothing.
            return Err(ApiError::validation(vec![
                crate::api::agents::ROLE_RULE.into()
            ]));
        }
        (None, Some(role)) => (None, Some(role)),
    };
    let (spec, spec_hash) = bounded_normalise(&spec)?;
    crate::policies::validate(&state, &spec).await?;
    let now = state.store.now_ms();
    let policy = PolicyRow {
        id: new_policy_id(),
        name,
        description: body.description,
        agent_id,
        role,
        spec,
        spec_hash,
        active: 1,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_policy(&policy).await?;
    refresh(&state).await;
    tracing::info!(policy_id = %policy.id, "policy created");
    Ok((StatusCode::CREATED, Json(view(&policy, true))))
}

/// Query of `GET /api/policies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListPoliciesQuery {
    agent_id: Option<String>,
    role: Option<String>,
    active: Option<bool>,
}

/// `GET /api/policies`.
#[utoipa::path(
    get,
    path = "/api/policies",
    tag = "policies",
    description = "Stored policies (`agentId`, `role`, `active`). Error codes: invalid_query.",
    responses(
        (status = 200, description = "OK", body = Vec<PolicyView>),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListPoliciesQuery>,
) -> Result<Json<Vec<PolicyView>>, ApiError> {
    let rows = state
        .store
        .list_policies(&PolicyFilter {
            agent_id: q.agent_id,
            role: q.role,
            active: q.active,
        })
        .await?;
    Ok(Json(rows.iter().map(|p| view(p, false)).collect()))
}

/// `GET /api/policies/{id}`.
#[utoipa::path(
    get,
    path = "/api/policies/{id}",
    tag = "policies",
    description = "One policy. Error codes: policy_not_found.",
    responses(
        (status = 200, description = "OK", body = PolicyView),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<Json<PolicyView>, ApiError> {
    let policy = state
        .store
        .policy(&id)
        .await?
        .ok_or_else(policy_not_found)?;
    Ok(Json(view(&policy, false)))
}

/// Body of `PATCH /api/policies/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicyRequest {
    name: Option<String>,
    description: Option<String>,
    /// A new PolicySpec document; replaces the whole spec.
    #[schema(value_type = Option<Object>)]
    spec: Option<Value>,
    active: Option<bool>,
}

/// `PATCH /api/policies/{id}`: a new `spec` replaces the whole spec.
#[utoipa::path(
    patch,
    path = "/api/policies/{id}",
    tag = "policies",
    description = "Change a policy; a new `spec` replaces the whole spec. Error codes: policy_not_found, validation_failed.",
    request_body(content = UpdatePolicyRequest, content_type = "application/json", example = json!({"active": false})),
    responses(
        (status = 200, description = "OK", body = PolicyView),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    PathText(id): PathText,
    JsonBody(body): JsonBody<UpdatePolicyRequest>,
) -> Result<Json<PolicyView>, ApiError> {
    let mut policy = state
        .store
        .policy(&id)
        .await?
        .ok_or_else(policy_not_found)?;
    if let Some(name) = body.name {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(ApiError::validation(vec!["name: must not be empty".into()]));
        }
        policy.name = name;
    }
    if body.description.is_some() {
        policy.description = body.description;
    }
    if let Some(spec) = body.spec {
        let (spec, hash) = bounded_normalise(&spec)?;
        crate::policies::validate(&state, &spec).await?;
        policy.spec = spec;
        policy.spec_hash = hash;
    }
    if let Some(active) = body.active {
        policy.active = i64::from(active);
    }
    policy.updated_at = state.store.now_ms().max(policy.updated_at + 1);
    if !state.store.update_policy(&policy).await? {
        return Err(policy_not_found());
    }
    refresh(&state).await;
    Ok(Json(view(&policy, false)))
}

/// `DELETE /api/policies/{id}`: 204 with an empty body.
#[utoipa::path(
    delete,
    path = "/api/policies/{id}",
    tag = "policies",
    description = "Delete a policy. Error codes: policy_not_found.",
    responses(
        (status = 204, description = "No content"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_policy(&id).await? {
        return Err(policy_not_found());
    }
    refresh(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/policies/merged/{agent_id}`.
#[utoipa::path(
    get,
    path = "/api/policies/merged/{agent_id}",
    tag = "policies",
    description = "The policy an agent's calls are judged by: its role's and its own, merged. Error codes: agent_not_found.",
    responses(
        (status = 200, description = "OK", body = MergedPolicy),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn merged(
    State(state): State<AppState>,
    PathText(agent_id): PathText,
) -> Result<Json<MergedPolicy>, ApiError> {
    let agent = find_agent(&state, &agent_id).await?;
    let merged = state.policies.merged(&agent.id.to_string(), &agent.role);
    let effective = crate::policies::effective(&state, &merged, &agent.role).await?;
    Ok(Json(MergedPolicy {
        agent_id: agent.id,
        agent_role: agent.role,
        merged_spec: effective,
        source_policies: merged.sources.clone(),
    }))
}

/// Reply of `GET /api/policies/merged/{agent_id}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergedPolicy {
    agent_id: Uuid,
    agent_role: String,
    /// The PolicySpec the agent's calls are judged by.
    #[schema(value_type = Object)]
    merged_spec: Value,
    /// The ids of the policies merged, role's first.
    source_policies: Vec<String>,
}

/// A policy decision as listed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyLogView {
    id: String,
    policy_id: Option<String>,
    agent_id: String,
    tool: String,
    action: String,
    /// `allow`, `deny`, `error` (the policy failed), or `quarantine` (the binding's
    /// uploaded version was quarantined; `reason` says what was done).
    decision: String,
    reason: Option<String>,
    request_data: Option<String>,
    response_data: Option<String>,
    created_at: String,
}

impl From<&PolicyLogRow> for PolicyLogView {
    fn from(r: &PolicyLogRow) -> Self {
        Self {
            id: r.id.clone(),
            policy_id: r.policy_id.clone(),
            agent_id: r.agent_id.clone(),
            tool: r.tool.clone(),
            action: r.action.clone(),
            decision: r.decision.clone(),
            reason: r.reason.clone(),
            request_data: r.request_data.clone(),
            response_data: r.response_data.clone(),
            created_at: iso_ms(r.created_at),
        }
    }
}

/// Query of `GET /api/policy-logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyLogsQuery {
    policy_id: Option<String>,
    agent_id: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/policy-logs`: newest first; `policyId` takes precedence over `agentId`.
#[utoipa::path(
    get,
    path = "/api/policy-logs",
    tag = "policies",
    description = "Policy decisions, newest first (`policyId`, `agentId`, `limit`). Error codes: invalid_query.",
    responses(
        (status = 200, description = "OK", body = Vec<PolicyLogView>),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn logs(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<PolicyLogsQuery>,
) -> Result<Json<Vec<PolicyLogView>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec!["limit: 1 to 100".into()]));
    }
    state.proxy.audit.flush().await;
    let rows = state
        .store
        .list_policy_logs(q.policy_id.as_deref(), q.agent_id.as_deref(), limit)
        .await?;
    Ok(Json(rows.iter().map(PolicyLogView::from).collect()))
}
