//! Liveness, readiness and the Prometheus endpoint.

use crate::clock::iso;
use crate::error::Refusal;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// Reply of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy`: the process answers.
    status: &'static str,
    /// The gateway's version.
    version: &'static str,
    /// Seconds since the process started.
    uptime: f64,
    timestamp: String,
}

/// Each dependency's state: `ok`, `failing`, `timeout` or `not_configured`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    database: &'static str,
    redis: &'static str,
}

/// Reply of `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// False only while the instance drains for shutdown.
    ready: bool,
    /// `ok`, `degraded` (a dependency fails; serving goes on) or `draining`.
    status: &'static str,
    /// Present while draining.
    #[serde(skip_serializing_if = "Option::is_none")]
    draining: Option<bool>,
    /// Absent while draining.
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<ReadinessChecks>,
    /// The failing dependencies (or `draining`).
    failing: Vec<&'static str>,
    timestamp: String,
}

/// How long a readiness check may wait on a dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health` (and `/api/health`): the process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    description = "Liveness: status, version, uptime.",
    responses(
        (status = 200, description = "OK", body = Health),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "healthy",
        version: env!("CARGO_PKG_VERSION"),
        uptime: state.started_at.elapsed().as_secs_f64(),
        timestamp: iso(chrono::Utc::now()),
    })
}

#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    description = "Liveness (the same as /health).",
    responses(
        (status = 200, description = "OK", body = Health),
    )
)]
/// `GET /api/health`: the same as `/health`.
pub async fn api_health(state: State<AppState>) -> Json<Health> {
    health(state).await
}

/// `GET /ready`: 200 while the instance can serve, with each dependency's state. A database
/// or Redis that does not answer makes it `degraded`, not unready: proxying goes on from
/// memory (and limits fall back to this instance), and a shared dependency's outage must not
/// take every instance out of its load balancer at once. 503 only while it drains for
/// shutdown, so that load balancers stop sending before the listener closes.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    description = "Readiness: 200 while the instance can serve (`degraded` naming a failing dependency), 503 while it drains.",
    responses(
        (status = 200, description = "Serving (`ok` or `degraded`)", body = Readiness),
        (status = 503, description = "Draining for shutdown", body = Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    if state.draining.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                status: "draining",
                draining: Some(true),
                checks: None,
                failing: vec!["draining"],
                timestamp: iso(chrono::Utc::now()),
            }),
        );
    }
    let database = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => ("ok", String::new()),
            Ok(Err(e)) => ("failing", e.to_string()),
            Err(_) => ("timeout", format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    };
    let redis = async {
        match &state.redis {
            None => "not_configured",
            Some(link) => link.ping(CHECK_TIMEOUT).await,
        }
    };
    let ((database, database_error), redis) = tokio::join!(database, redis);
    state
        .readiness_log
        .observe("database", database, &database_error);
    state.readiness_log.observe("redis", redis, "");
    let failing: Vec<&str> = [("database", database), ("redis", redis)]
        .into_iter()
        .filter(|(_, status)| !matches!(*status, "ok" | "not_configured"))
        .map(|(name, _)| name)
        .collect();
    let status = if failing.is_empty() { "ok" } else { "degraded" };
    (
        StatusCode::OK,
        Json(Readiness {
            ready: true,
            status,
            draining: None,
            checks: Some(ReadinessChecks { database, redis }),
            failing,
            timestamp: iso(chrono::Utc::now()),
        }),
    )
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    description = "Prometheus text format. With METRICS_BEARER_TOKEN set, only with `Authorization: Bearer <that token>`. Error codes: unauthorized, too_many_auth_failures.",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    if let Some(key) = &state.metrics_key {
        if !key.matches(request.headers()) {
            let error = crate::error::ApiError::new(
                Refusal::Unauthorized,
                "Missing or invalid metrics bearer token (METRICS_BEARER_TOKEN)",
            );
            return crate::auth::admin::refused(&state, request.extensions(), error);
        }
    }
    let metrics = &state.metrics;
    metrics.key_pool_ready.set(state.key_pool.ready() as i64);
    let (idle, in_use) = state.store.connections();
    metrics
        .database_connections
        .with_label_values(&["idle"])
        .set(idle as i64);
    metrics
        .database_connections
        .with_label_values(&["in_use"])
        .set(in_use as i64);
    metrics
        .audit_queue_depth
        .set(state.proxy.audit.queued() as i64);
    for (replica, age) in state.change_feed.freshness().ages() {
        metrics
            .cluster
            .replicated_state_age
            .with_label_values(&[replica.label()])
            .set(age.as_secs_f64());
    }
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
        .into_response()
}
