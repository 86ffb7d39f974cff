//! The versions of an uploaded plugin: `POST /api/admin/plugins/{name}/rollback` (the
//! previous version goes live again, or nothing changes) and `DELETE
//! /api/admin/plugins/{name}` (every version goes).

use crate::api::path_text::PathText;
use crate::api::plugins::plugin_invalid;
use crate::error::{ApiError, Refusal};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// Reply of `POST /api/admin/plugins/{name}/rollback`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolledBack {
    name: String,
    /// The version now live.
    version: i64,
}

/// `POST /api/admin/plugins/{name}/rollback`: the previous uploaded version goes live again.
#[utoipa::path(
    post,
    path = "/api/admin/plugins/{name}/rollback",
    tag = "plugins",
    description = "Bring back the version before the live upload. Error codes: plugin_not_found, no_previous_version, plugin_invalid (it does not load here; nothing was changed), rollback_not_undone.",
    responses(
        (status = 200, description = "OK", body = RolledBack),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    PathText(name): PathText,
) -> Result<Json<RolledBack>, ApiError> {
    let Some(rolled_back) = state
        .store
        .rollback_plugin_upload(&name, None, None)
        .await?
    else {
        let versions = state.store.plugin_upload_versions().await?;
        if !versions.iter().any(|v| v.name == name) {
            return Err(ApiError::new(
                Refusal::PluginNotFound,
                "No uploaded plugin has this name",
            ));
        }
        return Err(ApiError::new(
            Refusal::NoPreviousVersion,
            "This plugin has no earlier uploaded version",
        ));
    };
    let version = rolled_back.live;
    if let Err(e) = state.plugins.reload_expecting(&name, version).await {
        // The earlier version does not load here: put the stored versions back as they were,
        // so that the answer's "nothing was changed" holds on every instance.
        let undone = state.store.undo_plugin_rollback(&name, rolled_back).await;
        let _ = state.plugins.reload().await;
        if !matches!(undone, Ok(true)) {
            tracing::error!(plugin = %name, ?undone, "a failed rollback could not be undone");
            return Err(ApiError::new(
                Refusal::RollbackNotUndone,
                "The earlier version does not load, and the rollback could not be undone: \
                 the versions changed meanwhile; see GET /api/admin/plugins",
            )
            .with_details(json!([e])));
        }
        return Err(plugin_invalid(e));
    }
    tracing::info!(plugin = %name, version, "plugin rolled back");
    Ok(Json(RolledBack { name, version }))
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
        return Err(ApiError::new(
            Refusal::PluginNotFound,
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
