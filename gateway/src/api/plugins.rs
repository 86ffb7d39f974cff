//! Plugin admin endpoints: what is loaded (with counters and the last reload error), a
//! manual reload, and a dry run of a request through the live policies and chaos rules.

use crate::api::json::JsonBody;
use crate::api::path_text::PathText;
use crate::api::plugin_admission::refuse_downgrade;
pub(crate) use crate::api::plugin_admission::{admit, decode_wasm};
use crate::clock::iso;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::plugins::bindings::Fault;
use crate::plugins::manifest::FailMode;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::record::{fault_json, RequestRecord};
use crate::plugins::registry::PolicyOutcome;
use crate::plugins::registry::ReloadFailure;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// `GET /api/admin/plugins`.
#[utoipa::path(
    get,
    path = "/api/admin/plugins",
    tag = "plugins",
    description = "Loaded plugins with their counters and the last reload error.",
    responses(
        (status = 200, description = "OK", body = PluginList),
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<PluginList> {
    let set = state.plugins.current();
    let metrics = &state.metrics;
    let plugins: Vec<PluginView> = set
        .bindings
        .iter()
        .map(|b| {
            let p = &b.invoker.plugin;
            let counters =
                ["allow", "deny", "filtered", "fault", "none", "failure"].map(|outcome| {
                    let count = metrics
                        .plugin_evaluations
                        .with_label_values(&[&b.name, outcome])
                        .get();
                    (outcome, count)
                });
            let failures = ["trap", "timeout", "memory", "invalid"].map(|kind| {
                let count = metrics
                    .plugin_failures
                    .with_label_values(&[&b.name, kind])
                    .get();
                (kind, count)
            });
            let limits = b.spec.limits();
            let (source, version) = match b.source {
                crate::plugins::registry::Source::File => ("file", None),
                crate::plugins::registry::Source::Upload(v) => ("upload", Some(v)),
            };
            PluginView {
                name: b.name.clone(),
                source,
                upload_version: version,
                file: b.spec.plugin.clone(),
                world: p.world.as_str(),
                version: p.info.version.clone(),
                contract: crate::plugins::contract::CONTRACT_VERSION,
                sha256: p.sha256.clone(),
                size: p.size as u64,
                tools: b.spec.tools.clone(),
                roles: b.spec.roles.clone(),
                timeout_ms: limits.timeout.as_millis() as u64,
                memory_mb: (limits.memory_bytes >> 20) as u64,
                fail: if b.fail == FailMode::Closed {
                    "closed"
                } else {
                    "open"
                },
                reuse_instances: b.invoker.reuses_instances(),
                loaded_at: iso(set.loaded_at),
                counters: counters.into_iter().collect(),
                failures: failures.into_iter().collect(),
            }
        })
        .collect();
    Json(PluginList {
        dir: state.plugins.dir().display().to_string(),
        loaded_at: iso(set.loaded_at),
        plugins,
        last_error: state.plugins.last_error(),
        last_quarantine: state.plugins.last_quarantine(),
        skipped_uploads: set.skipped.clone(),
    })
}

/// Reply of `GET /api/admin/plugins`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    /// The plugin directory.
    dir: String,
    /// When the live set was loaded.
    loaded_at: String,
    plugins: Vec<PluginView>,
    /// The last reload that failed (the set before it stayed live).
    last_error: Option<ReloadFailure>,
    /// The last plugin quarantined for failing for several agents.
    last_quarantine: Option<ReloadFailure>,
    /// Stored versions this instance could not load (a signature it does not trust, say),
    /// and the version of each it serves instead.
    skipped_uploads: Vec<crate::plugins::registry::SkippedUpload>,
}

/// A live binding: its plugin, limits and counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    name: String,
    /// `file` (from `plugins.toml`) or `upload` (through the API).
    source: &'static str,
    /// The uploaded version in force (uploads only).
    upload_version: Option<i64>,
    /// The component's file name.
    file: String,
    /// `policy` or `chaos`.
    world: &'static str,
    /// The version the plugin reports.
    version: String,
    /// The plugin contract the host speaks.
    contract: &'static str,
    sha256: String,
    /// The component's size in bytes.
    size: u64,
    /// Tools it applies to (`*`: every tool).
    tools: Vec<String>,
    /// Roles it applies to (empty: every role).
    roles: Vec<String>,
    timeout_ms: u64,
    memory_mb: u64,
    /// What a failure means: `closed` (refuse) or `open` (let through).
    fail: &'static str,
    reuse_instances: bool,
    loaded_at: String,
    /// Evaluations by outcome: allow, deny, filtered, fault, none, failure.
    counters: BTreeMap<&'static str, u64>,
    /// Failures by kind: trap, timeout, memory, invalid.
    failures: BTreeMap<&'static str, u64>,
}

/// `POST /api/admin/plugins/reload`: re-reads the plugin directory now.
#[utoipa::path(
    post,
    path = "/api/admin/plugins/reload",
    tag = "plugins",
    description = "Re-read the plugin directory now. Error codes: plugin_invalid.",
    responses(
        (status = 200, description = "OK", body = Reloaded),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn reload(State(state): State<AppState>) -> Result<Json<Reloaded>, ApiError> {
    match state.plugins.reload().await {
        Ok(()) => {
            let names: Vec<String> = state
                .plugins
                .current()
                .bindings
                .iter()
                .map(|b| b.name.clone())
                .collect();
            Ok(Json(Reloaded {
                reloaded: true,
                plugins: names,
            }))
        }
        Err(e) => Err(ApiError::new(
            Refusal::PluginInvalid,
            "The plugin set did not validate; the previous set stays live",
        )
        .with_details(json!([e.to_string()]))),
    }
}

/// Reply of `POST /api/admin/plugins/reload`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    reloaded: bool,
    /// The live bindings' names.
    plugins: Vec<String>,
}

/// Reply of `POST /api/admin/plugins/evaluate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Evaluation {
    /// `{decision: allow}`, `{decision: deny, plugin, code, reason}` or
    /// `{decision: error, plugin, code: policy_error, failure}`.
    #[schema(value_type = Object)]
    policy: Value,
    /// `{fault: none|delay|error|timeout|delay_then_error, ms?, status?, message?}`.
    #[schema(value_type = Object)]
    chaos: Value,
    /// The seed the chaos rules drew from.
    seed: u64,
}

/// `POST /api/admin/plugins/evaluate`: what the live policies and chaos rules would do with
/// a request. A dry run: quotas are read as they stand, and nothing is consumed.
#[utoipa::path(
    post,
    path = "/api/admin/plugins/evaluate",
    tag = "plugins",
    description = "Dry run of a request record through the live policies and chaos rules. Error codes: invalid_body.",
    request_body(content = RequestRecord, content_type = "application/json", example = json!({"agent_role": "scraper", "tool": "serpapi", "action": "search", "params": {}})),
    responses(
        (status = 200, description = "OK", body = Evaluation),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn evaluate(
    State(state): State<AppState>,
    JsonBody(record): JsonBody<RequestRecord>,
) -> Json<Evaluation> {
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
    Json(Evaluation {
        policy: decision,
        chaos: fault,
        seed: call.seed,
    })
}

/// Body of `PUT /api/admin/plugins/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The component, base64.
    wasm_base64: String,
    /// The binding: the `plugins.toml` keys except `plugin` and `name`.
    #[schema(value_type = Object)]
    binding: Value,
    /// A request record the new version must answer (allow, deny, a fault: anything but a
    /// failure) before it is stored; run with the binding's limits and configuration.
    #[serde(default)]
    sample: Option<RequestRecord>,
    /// The detached signature `gateway plugin sign` wrote for the component (its JSON
    /// object): checked against `PLUGIN_TRUSTED_KEYS` (required in production).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    signature: Option<Value>,
}

/// Reply of `PUT /api/admin/plugins/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    name: String,
    /// The new version's number.
    version: i64,
    sha256: String,
    /// `policy` or `chaos`.
    world: &'static str,
    /// The plugin's answer to the sample request, when one was sent.
    #[schema(value_type = Option<Object>)]
    sample: Option<Value>,
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
        Refusal::PluginInvalid,
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
    description = "Upload a plugin as a new version of the binding `name`, live on every instance. Error codes: validation_failed, plugin_invalid, plugin_downgrade, name_conflict.",
    request_body(content = UploadRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Uploaded),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    PathText(name): PathText,
    JsonBody(body): JsonBody<UploadRequest>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
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
            Refusal::NameConflict,
            "A binding of plugins.toml already has this name",
        ));
    }
    let signature = body.signature.as_ref().map(Value::to_string);
    let (plugin, vouched) = admit(&state, &name, &wasm, signature.clone()).await?;
    state
        .plugins
        .signatures()
        .check_use(
            &name,
            vouched.as_ref(),
            &name,
            &spec.tools,
            spec.fail_mode(plugin.world),
        )
        .map_err(|e| plugin_invalid(e.to_string()))?;
    if let Some(vouched) = &vouched {
        refuse_downgrade(&state, &name, &plugin.info.name, vouched, &spec).await?;
    }
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
            state.store.now_ms(),
        )
        .await?;
    if let Err(e) = state.plugins.reload_expecting(&name, version).await {
        // Keep the stored set loadable for every instance: undo this version.
        let _ = state
            .store
            .rollback_plugin_upload(&name, Some(version), None)
            .await;
        if version == 1 {
            let _ = state.store.delete_plugin_uploads(&name).await;
        }
        let _ = state.plugins.reload().await;
        return Err(plugin_invalid(e));
    }
    tracing::info!(plugin = %name, version, sha256 = %plugin.sha256, "plugin uploaded");
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            name,
            version,
            sha256: plugin.sha256.clone(),
            world: plugin.world.as_str(),
            sample: sample_answer,
        }),
    ))
}
