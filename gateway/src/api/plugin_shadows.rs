//! Shadow candidates of uploaded plugins: upload one beside the live version, read how often
//! and where it disagrees, promote it to live (the previous version stays for rollback), or
//! discard it.

use super::json::JsonBody;
use super::path_text::PathText;
use super::plugins::{admit, check_plugin_name, decode_wasm, plugin_invalid};
use super::query::QueryParams;
use crate::clock::iso_ms;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::plugins::registry::{Binding, Source};
use crate::plugins::World;
use crate::state::AppState;
use crate::store::plugin_shadows::PluginShadow;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// Share of calls a candidate judges unless the upload says otherwise, in percent.
const DEFAULT_PERCENT: f64 = 10.0;
/// Disagreements listed unless `limit` says otherwise, and the most `limit` may ask for.
const DEFAULT_LISTED: i64 = 100;
const MAX_LISTED: i64 = 1_000;

/// Body of `PUT /api/admin/plugins/{name}/shadow`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowUpload {
    /// The candidate component, base64.
    wasm_base64: String,
    /// Percent of the binding's calls the candidate judges (above 0, at most 100; default 10).
    #[serde(default)]
    percent: Option<f64>,
    /// The detached signature `gateway plugin sign` wrote for the component.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    signature: Option<Value>,
}

/// Reply of `PUT /api/admin/plugins/{name}/shadow`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowStored {
    name: String,
    sha256: String,
    /// The version the candidate reports.
    version: String,
    /// Percent of the binding's calls it judges.
    percent: f64,
}

/// A shadow candidate as it runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateView {
    sha256: String,
    version: String,
    /// The component's size in bytes.
    size: u64,
    percent: f64,
}

/// One decision on which the candidate and the live version differed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisagreementView {
    at: String,
    correlation_id: String,
    agent_id: String,
    tool: String,
    action: String,
    /// The live version's decision (`allow`, `deny`, `error`) and denial code.
    live: DecisionView,
    /// The candidate's.
    candidate: DecisionView,
    candidate_sha256: String,
}

/// A decision and its denial code.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    decision: String,
    code: Option<String>,
}

/// Reply of `GET /api/admin/plugins/{name}/shadow`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowReport {
    name: String,
    /// The candidate, if the binding has one.
    candidate: Option<CandidateView>,
    /// This instance's evaluations by outcome: agree, disagree, error, skipped.
    evaluations: BTreeMap<&'static str, u64>,
    /// The stored disagreements, newest first.
    disagreements: Vec<DisagreementView>,
    /// How many disagreements are stored in all.
    stored: i64,
}

/// Reply of `POST /api/admin/plugins/{name}/shadow/promote`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Promoted {
    name: String,
    /// The upload version the candidate became.
    version: i64,
    /// The version it replaced (what `rollback` brings back).
    previous_version: Option<i64>,
    sha256: String,
}

/// Query of `GET /api/admin/plugins/{name}/shadow`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowQuery {
    /// Disagreements listed, newest first (1 to 1000; default 100).
    #[serde(default)]
    limit: Option<i64>,
}

fn no_shadow() -> ApiError {
    ApiError::new(Refusal::NoShadow, "This plugin has no shadow candidate")
}

/// The live binding `name`, when it is an uploaded one (the only kind the API changes:
/// a `plugins.toml` binding takes its candidate from the file, `shadow = "…"`).
fn uploaded_binding(state: &AppState, name: &str) -> Result<Arc<Binding>, ApiError> {
    let binding = state
        .plugins
        .current()
        .binding(name)
        .cloned()
        .ok_or_else(|| ApiError::new(Refusal::PluginNotFound, "No plugin has this name"))?;
    if binding.source == Source::File {
        return Err(ApiError::new(
            Refusal::BindingFromFile,
            "This binding comes from plugins.toml: give it a candidate with its `shadow` key",
        ));
    }
    Ok(binding)
}

/// `PUT /api/admin/plugins/{name}/shadow`: validates a candidate for the uploaded policy
/// `name` and has every instance judge a share of its calls with it, never enforced.
#[utoipa::path(
    put,
    operation_id = "shadow_put",
    path = "/api/admin/plugins/{name}/shadow",
    tag = "plugins",
    description = "Give an uploaded policy a shadow candidate, judged on a share of calls and never enforced. Error codes: validation_failed, plugin_not_found, binding_from_file, plugin_invalid.",
    request_body(content = ShadowUpload, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = ShadowStored),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn put(
    State(state): State<AppState>,
    PathText(name): PathText,
    JsonBody(body): JsonBody<ShadowUpload>,
) -> Result<(StatusCode, Json<ShadowStored>), ApiError> {
    check_plugin_name(&name)?;
    let percent = body.percent.unwrap_or(DEFAULT_PERCENT);
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(ApiError::validation(vec![
            "percent: above 0 and at most 100".into(),
        ]));
    }
    let wasm = decode_wasm(&body.wasm_base64)?;
    let binding = uploaded_binding(&state, &name)?;
    if binding.invoker.plugin.world != World::Policy {
        return Err(plugin_invalid(
            "only a policy binding can have a shadow candidate".into(),
        ));
    }
    let signature = body.signature.as_ref().map(Value::to_string);
    let (candidate, _) = admit(&state, &name, &wasm, signature.clone()).await?;
    if candidate.world != World::Policy {
        return Err(plugin_invalid(format!(
            "the candidate implements {}, the binding is a policy",
            candidate.world.as_str()
        )));
    }
    state
        .store
        .put_plugin_shadow(&PluginShadow {
            name: name.clone(),
            wasm,
            sha256: candidate.sha256.clone(),
            percent,
            signature,
            created_at: state.store.now_ms(),
        })
        .await?;
    state
        .plugins
        .reload()
        .await
        .map_err(|e| plugin_invalid(e.to_string()))?;
    tracing::info!(plugin = %name, sha256 = %candidate.sha256, percent, "shadow candidate uploaded");
    Ok((
        StatusCode::CREATED,
        Json(ShadowStored {
            name,
            sha256: candidate.sha256.clone(),
            version: candidate.info.version.clone(),
            percent,
        }),
    ))
}

/// `GET /api/admin/plugins/{name}/shadow`: the candidate of a live binding (uploaded or from
/// `plugins.toml`), this instance's counts of its evaluations, and the stored
/// disagreements, newest first.
#[utoipa::path(
    get,
    operation_id = "shadow_get",
    path = "/api/admin/plugins/{name}/shadow",
    tag = "plugins",
    description = "The candidate, this instance's counts and the stored disagreements. Error codes: plugin_not_found, validation_failed.",
    responses(
        (status = 200, description = "OK", body = ShadowReport),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathText(name): PathText,
    QueryParams(query): QueryParams<ShadowQuery>,
) -> Result<Json<ShadowReport>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LISTED);
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(ApiError::validation(vec![format!(
            "limit: 1 to {MAX_LISTED}"
        )]));
    }
    let set = state.plugins.current();
    let binding = set
        .binding(&name)
        .ok_or_else(|| ApiError::new(Refusal::PluginNotFound, "No plugin has this name"))?;
    let candidate = binding.shadow.as_ref().map(|shadow| {
        let plugin = &shadow.invoker.plugin;
        CandidateView {
            sha256: plugin.sha256.clone(),
            version: plugin.info.version.clone(),
            size: plugin.size as u64,
            percent: shadow.percent(),
        }
    });
    let evaluations = ["agree", "disagree", "error", "skipped"].map(|outcome| {
        let count = state
            .metrics
            .plugin_shadow_evaluations
            .with_label_values(&[&binding.name, outcome])
            .get();
        (outcome, count)
    });
    let (rows, stored) = state.store.shadow_disagreements(&name, limit).await?;
    let disagreements = rows
        .into_iter()
        .map(|row| DisagreementView {
            at: iso_ms(row.created_at),
            correlation_id: row.correlation_id,
            agent_id: row.agent_id,
            tool: row.tool,
            action: row.action,
            live: DecisionView {
                decision: row.live,
                code: row.live_code,
            },
            candidate: DecisionView {
                decision: row.candidate,
                code: row.candidate_code,
            },
            candidate_sha256: row.candidate_sha256,
        })
        .collect();
    Ok(Json(ShadowReport {
        name: binding.name.clone(),
        candidate,
        evaluations: evaluations.into_iter().collect(),
        disagreements,
        stored,
    }))
}

/// `POST /api/admin/plugins/{name}/shadow/promote`: the candidate becomes the live version
/// (a new upload version with the live binding's settings), atomically on every instance;
/// `POST …/rollback` returns to the version it replaced.
#[utoipa::path(
    post,
    operation_id = "shadow_promote",
    path = "/api/admin/plugins/{name}/shadow/promote",
    tag = "plugins",
    description = "Make the candidate the live version (the replaced one stays for rollback). Error codes: no_shadow, plugin_not_found, binding_from_file.",
    responses(
        (status = 200, description = "OK", body = Promoted),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn promote(
    State(state): State<AppState>,
    PathText(name): PathText,
) -> Result<Json<Promoted>, ApiError> {
    let binding = uploaded_binding(&state, &name)?;
    let Some(shadow) = &binding.shadow else {
        return Err(no_shadow());
    };
    let previous = match binding.source {
        Source::Upload(version) => Some(version),
        Source::File => None,
    };
    let sha256 = shadow.invoker.plugin.sha256.clone();
    let version = state
        .store
        .promote_plugin_shadow(&name, state.store.now_ms())
        .await?
        .ok_or_else(no_shadow)?;
    if let Err(e) = state.plugins.reload_expecting(&name, version).await {
        let _ = state
            .store
            .rollback_plugin_upload(&name, Some(version), None)
            .await;
        let _ = state.plugins.reload().await;
        return Err(plugin_invalid(e));
    }
    tracing::info!(plugin = %name, version, previous, %sha256, "shadow candidate promoted");
    Ok(Json(Promoted {
        name,
        version,
        previous_version: previous,
        sha256,
    }))
}

/// `DELETE /api/admin/plugins/{name}/shadow`: discards the candidate and its disagreements.
#[utoipa::path(
    delete,
    operation_id = "shadow_remove",
    path = "/api/admin/plugins/{name}/shadow",
    tag = "plugins",
    description = "Discard the candidate and its disagreements. Error codes: no_shadow, plugin_not_found.",
    responses(
        (status = 204, description = "No content"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    PathText(name): PathText,
) -> Result<StatusCode, ApiError> {
    uploaded_binding(&state, &name)?;
    if !state.store.delete_plugin_shadow(&name).await? {
        return Err(no_shadow());
    }
    state
        .plugins
        .reload()
        .await
        .map_err(|e| plugin_invalid(e.to_string()))?;
    tracing::info!(plugin = %name, "shadow candidate discarded");
    Ok(StatusCode::NO_CONTENT)
}
