//! Plugin admin endpoints: what is loaded (with counters and the last reload error), a
//! manual reload, and a dry run of a request through the live policies and chaos rules.

use crate::api::json::JsonBody;
use crate::api::path_text::PathText;
use crate::api::time::iso;
use crate::error::ApiError;
use crate::plugins::bindings::Fault;
use crate::plugins::manifest::FailMode;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::record::{fault_json, RequestRecord};
use crate::plugins::registry::PolicyOutcome;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /api/admin/plugins`.
#[utoipa::path(
    get,
    path = "/api/admin/plugins",
    tag = "plugins",
    description = "Loaded plugins with their counters and the last reload error.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let set = state.plugins.current();
    let metrics = &state.metrics;
    let plugins: Vec<Value> = set
        .bindings
        .iter()
        .map(|b| {
            let p = &b.invoker.plugin;
            let count = |outcome: &str| {
                metrics
                    .plugin_evaluations
                    .with_label_values(&[&b.name, outcome])
                    .get()
            };
            let failures = |kind: &str| {
                metrics
                    .plugin_failures
                    .with_label_values(&[&b.name, kind])
                    .get()
            };
            let limits = b.spec.limits();
            let (source, version) = match b.source {
                crate::plugins::registry::Source::File => ("file", None),
                crate::plugins::registry::Source::Upload(v) => ("upload", Some(v)),
            };
            json!({
                "name": b.name,
                "source": source,
                "upload_version": version,
                "file": b.spec.plugin,
                "world": p.world.as_str(),
                "version": p.info.version,
                "contract": crate::plugins::plugin::CONTRACT_VERSION,
                "sha256": p.sha256,
                "size": p.size,
                "tools": b.spec.tools,
                "roles": b.spec.roles,
                "timeout_ms": limits.timeout.as_millis() as u64,
                "memory_mb": limits.memory_bytes >> 20,
                "fail": if b.fail == FailMode::Closed { "closed" } else { "open" },
                "reuse_instances": b.invoker.reuses_instances(),
                "loaded_at": iso(set.loaded_at),
                "counters": {
                    "allow": count("allow"), "deny": count("deny"), "filtered": count("filtered"),
                    "fault": count("fault"), "none": count("none"), "failure": count("failure"),
                },
                "failures": {
                    "trap": failures("trap"), "timeout": failures("timeout"),
                    "memory": failures("memory"), "invalid": failures("invalid"),
                },
            })
        })
        .collect();
    Json(json!({
        "dir": state.plugins.dir().display().to_string(),
        "loaded_at": iso(set.loaded_at),
        "plugins": plugins,
        "last_error": state.plugins.last_error(),
        "last_quarantine": state.plugins.last_quarantine(),
    }))
}

/// `POST /api/admin/plugins/reload`: re-reads the plugin directory now.
#[utoipa::path(
    post,
    path = "/api/admin/plugins/reload",
    tag = "plugins",
    description = "Re-read the plugin directory now. Error codes: plugin_invalid.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn reload(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.plugins.reload().await {
        Ok(()) => {
            let names: Vec<String> = state
                .plugins
                .current()
                .bindings
                .iter()
                .map(|b| b.name.clone())
                .collect();
            Ok(Json(json!({ "reloaded": true, "plugins": names })))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "plugin_invalid",
            "The plugin set did not validate; the previous set stays live",
        )
        .with_details(json!([e.to_string()]))),
    }
}

/// `POST /api/admin/plugins/evaluate`: what the live policies and chaos rules would do with
/// a request. A dry run: quotas are read as they stand, and nothing is consumed.
#[utoipa::path(
    post,
    path = "/api/admin/plugins/evaluate",
    tag = "plugins",
    description = "Dry run of a request record through the live policies and chaos rules. Error codes: invalid_body.",
    request_body(content = serde_json::Value, content_type = "application/json", example = json!({"agent_role": "scraper", "tool": "serpapi", "action": "search", "params": {}})),
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn evaluate(
    State(state): State<AppState>,
    JsonBody(record): JsonBody<RequestRecord>,
) -> Json<Value> {
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let call = Arc::new(record.into_call(now_ms, rand::random()));
    let set = state.plugins.current();
    let policy_config =
        crate::policies::config_for(&state, &set, &call.tool, &call.agent_id, &call.agent_role);
    let decision = match state
        .plugins
        .evaluate_dry_run(&set, &call, policy_config.as_ref())
        .await
    {
        PolicyOutcome::Allow { .. } => json!({ "decision": "allow" }),
        PolicyOutcome::Deny {
            binding,
            code,
            reason,
        } => {
            json!({ "decision": "deny", "plugin": binding, "code": code, "reason": reason })
        }
        PolicyOutcome::Failed { binding, kind } => {
            json!({ "decision": "error", "plugin": binding, "code": "policy_error", "failure": kind.as_str() })
        }
    };
    let fault = fault_json(
        &state
            .plugins
            .inject(&set, &call, &state.chaos_rules.config(), 0)
            .await
            .unwrap_or(Fault::None),
    );
    Json(json!({ "policy": decision, "chaos": fault, "seed": call.seed }))
}

/// Body of `PUT /api/admin/plugins/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The component, base64.
    wasm_base64: String,
    /// The binding: the `plugins.toml` keys except `plugin` and `name`.
    binding: Value,
    /// A request record the new version must answer (allow, deny, a fault: anything but a
    /// failure) before it is stored; run with the binding's limits and configuration.
    #[serde(default)]
    sample: Option<RequestRecord>,
    /// The detached signature `gateway plugin sign` wrote for the component (its JSON
    /// object): checked against `PLUGIN_TRUSTED_KEYS` (required in production).
    #[serde(default)]
    signature: Option<Value>,
}

/// Largest upload body (a 32 MiB plugin in base64, plus its binding).
pub const MAX_UPLOAD_BODY: usize = 48 << 20;

/// Refuses (400) a name an uploaded plugin may not have.
pub(crate) fn check_plugin_name(name: &str) -> Result<(), ApiError> {
    if valid_plugin_name(name) {
        Ok(())
    } else {
        Err(ApiError::validation(vec![
            "name: 1 to 64 of a-z, 0-9, '-' and '_'".into(),
        ]))
    }
}

/// Whether `name` may name an uploaded plugin: 1 to 64 of a-z, 0-9, '-' and '_'.
fn valid_plugin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// 422 `plugin_invalid`, with what is wrong.
pub(crate) fn plugin_invalid(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_invalid",
        "The plugin did not validate; nothing was changed",
    )
    .with_details(json!([detail]))
}

/// `PUT /api/admin/plugins/{name}`: validates the plugin and its binding, stores them as a new
/// version, and makes it live here (and on every instance sharing the database within ~1 s).
#[utoipa::path(
    put,
    path = "/api/admin/plugins/{name}",
    tag = "plugins",
    description = "Upload a plugin as a new version of the binding `name`, live on every instance. Error codes: validation_failed, plugin_invalid, name_conflict.",
    responses(
        (status = 201, description = "Created"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    PathText(name): PathText,
    JsonBody(body): JsonBody<UploadRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_plugin_name(&name)?;
    let wasm = decode_wasm(&body.wasm_base64)?;
    let binding_json = body.binding.to_string();
    let spec = crate::plugins::registry::upload_spec(&name, &binding_json)
        .map_err(|e| ApiError::validation(vec![e]))?;
    if state
        .plugins
        .current()
        .binding(&name)
        .is_some_and(|b| b.source == crate::plugins::registry::Source::File)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "name_conflict",
            "A binding of plugins.toml already has this name",
        ));
    }
    let signature = body.signature.as_ref().map(Value::to_string);
    let plugin = admit(&state, &name, &wasm, signature.clone()).await?;
    if let Some(expected) = spec.world {
        if expected != plugin.world {
            return Err(plugin_invalid(format!(
                "plugin implements {}, binding expects {}",
                plugin.world.as_str(),
                expected.as_str()
            )));
        }
    }
    let plugin = Arc::new(plugin);
    let sample_answer = match body.sample {
        None => None,
        Some(record) => {
            // A binding fed by stored policies or chaos rules is tried with no document.
            let config = match spec.config_from {
                Some(_) => PluginConfig::none(),
                None => PluginConfig::single(&spec.config_json()),
            };
            let answer =
                crate::plugins::cli::run_once(Arc::clone(&plugin), spec.limits(), config, record)
                    .await
                    .map_err(|failure| {
                        plugin_invalid(format!(
                            "the sample request failed: {}: {}",
                            failure.kind.as_str(),
                            failure.message
                        ))
                    })?;
            Some(answer)
        }
    };
    let version = state
        .store
        .insert_plugin_upload(
            &name,
            &wasm,
            &plugin.sha256,
            &binding_json,
            signature.as_deref(),
            crate::store::now_ms(),
        )
        .await?;
    if let Err(e) = state.plugins.reload().await {
        // Keep the stored set loadable for every instance: undo this version.
        let _ = state
            .store
            .rollback_plugin_upload(&name, Some(version))
            .await;
        if version == 1 {
            let _ = state.store.delete_plugin_uploads(&name).await;
        }
        let _ = state.plugins.reload().await;
        return Err(plugin_invalid(e.to_string()));
    }
    tracing::info!(plugin = %name, version, sha256 = %plugin.sha256, "plugin uploaded");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": name,
            "version": version,
            "sha256": plugin.sha256,
            "world": plugin.world.as_str(),
            "sample": sample_answer,
        })),
    ))
}

/// Compiles an uploaded component under the signature policy: unvouched bytes are not
/// compiled when signatures are required. Compiling is blocking work, so the whole admission
/// runs off the workers.
pub(crate) async fn admit(
    state: &AppState,
    name: &str,
    wasm: &[u8],
    signature: Option<String>,
) -> Result<crate::plugins::Plugin, ApiError> {
    let policy = state.plugins.signatures().clone();
    let (name, bytes) = (name.to_string(), wasm.to_vec());
    tokio::task::spawn_blocking(move || {
        policy.admit(
            &name,
            signature.as_deref(),
            &bytes,
            || crate::plugins::Plugin::load(&name, &bytes).map_err(|e| e.to_string()),
            |e| e.to_string(),
        )
    })
    .await
    .map_err(|e| ApiError::internal("plugin validation task", &e))?
    .map_err(plugin_invalid)
}

/// The component of an upload body, decoded.
pub(crate) fn decode_wasm(wasm_base64: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(wasm_base64.trim())
        .map_err(|_| ApiError::validation(vec!["wasm_base64: not valid base64".into()]))
}

/// `POST /api/admin/plugins/{name}/rollback`: the previous uploaded version goes live again.
#[utoipa::path(
    post,
    path = "/api/admin/plugins/{name}/rollback",
    tag = "plugins",
    description = "Bring back the version before the live upload. Error codes: no_previous_version, plugin_invalid.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    PathText(name): PathText,
) -> Result<Json<Value>, ApiError> {
    let version = state
        .store
        .rollback_plugin_upload(&name, None)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_previous_version",
                "This plugin has no earlier uploaded version",
            )
        })?;
    state
        .plugins
        .reload()
        .await
        .map_err(|e| plugin_invalid(e.to_string()))?;
    tracing::info!(plugin = %name, version, "plugin rolled back");
    Ok(Json(json!({ "name": name, "version": version })))
}

/// `DELETE /api/admin/plugins/{name}`: removes an uploaded plugin (every version).
#[utoipa::path(
    delete,
    path = "/api/admin/plugins/{name}",
    tag = "plugins",
    description = "Remove an uploaded plugin (every version). Error codes: plugin_not_found.",
    responses(
        (status = 204, description = "No content"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    PathText(name): PathText,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_plugin_uploads(&name).await? {
        return Err(ApiError::not_found(
            "plugin_not_found",
            "No uploaded plugin has this name",
        ));
    }
    state
        .plugins
        .reload()
        .await
        .map_err(|e| plugin_invalid(e.to_string()))?;
    tracing::info!(plugin = %name, "plugin deleted");
    Ok(StatusCode::NO_CONTENT)
}
