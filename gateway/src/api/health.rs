//! Liveness, readiness and the Prometheus endpoint.

use crate::api::time::iso;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

/// How long a readiness check may wait on a dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health` (and `/api/health`): the process is up.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": state.started_at.elapsed().as_secs_f64(),
        "timestamp": iso(chrono::Utc::now()),
    }))
}

/// `GET /ready`: the database (and Redis, when configured) answer. 503 names what fails,
/// and answers at once while the gateway drains for shutdown.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.draining.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "ready": false,
                "draining": true,
                "failing": ["draining"],
                "timestamp": iso(chrono::Utc::now()),
            })),
        );
    }
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "failing"
        }
        Err(_) => "timeout",
    };
    let redis = match &state.redis {
        None => "not_configured",
        Some(conn) => {
            let ping = async {
                redis::cmd("PING")
                    .query_async::<String>(&mut conn.clone())
                    .await
            };
            match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
                Ok(Ok(_)) => "ok",
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness: redis check failed");
                    "failing"
                }
                Err(_) => "timeout",
            }
        }
    };
    let failing: Vec<&str> = [("database", database), ("redis", redis)]
        .into_iter()
        .filter(|(_, status)| !matches!(*status, "ok" | "not_configured"))
        .map(|(name, _)| name)
        .collect();
    let ready = failing.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "checks": { "database": database, "redis": redis },
            "failing": failing,
            "timestamp": iso(chrono::Utc::now()),
        })),
    )
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .key_pool_ready
        .set(state.key_pool.ready() as i64);
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
}
