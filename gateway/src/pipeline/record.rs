//! Step 10: every answer is counted (by tool, action and status, and timed) and, unless
//! sampled out, leaves its audit row; refusals before the agent is known count against
//! the client's address.

use super::refusals;
use super::trail::{ProxyCallLog, Trail, X_CORRELATION_ID};
use crate::audit::sampling::Keep;
use crate::error::{ApiError, Refusal};
use crate::state::AppState;
use crate::store::request_logs::RequestLogRow;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use std::time::Instant;

/// Adds the trail's headers and the correlation id, then step 10: metrics and audit row.
///
/// A refusal before the agent is known (a body that is not a call, a token that does not
/// open, expired or revoked) is the client's failed authentication: it counts against the
/// client address's limit (`AUTH_FAILURES_PER_MINUTE`), and past it is answered 429
/// `too_many_auth_failures` with no audit row, only counters. So an anonymous client
/// writes at most the limit's burst and then one row a second per address, and those rows
/// are the first the row bound prunes.
pub(super) async fn finish(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    trail: Trail,
    correlation_id: String,
    outcome: Result<Response, ApiError>,
    started: Instant,
) -> Response {
    let outcome = match outcome {
        Err(failure)
            if trail.agent_id.is_none()
                && failure.status().is_client_error()
                && !failure.is_quiet() =>
        {
            match state.auth_failures.record(client, state.store.now_ms()) {
                Ok(()) => Err(failure),
                Err(limited) => Err(limited),
            }
        }
        outcome => outcome,
    };
    let (mut response, code) = match outcome {
        Ok(response) => (response, None),
        // A refusal the client keeps provoking is counted, not audited one by one.
        Err(failure) if failure.is_quiet() => {
            count(state, &trail, failure.status(), started);
            refusals::count(&state.metrics, failure.refusal());
            return failure.into_response();
        }
        Err(failure) => {
            let refusal = failure.refusal();
            (failure.into_response(), Some(refusal))
        }
    };
    for (name, value) in &trail.headers {
        response.headers_mut().insert(name, value.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(X_CORRELATION_ID, v);
    }
    record(
        state,
        &trail,
        &correlation_id,
        response.status(),
        code,
        started,
    )
    .await;
    // The access line's fields, moved out of the finished trail (no copy per request).
    response.extensions_mut().insert(ProxyCallLog {
        correlation_id,
        agent_id: trail.agent_id,
        tool: trail.named.tool,
        action: trail.named.action,
    });
    response
}

/// The metric label of a tool or action as sent: known names only, so that callers cannot
/// grow the label set.
fn label(named: &str, known: bool) -> &str {
    if known {
        named
    } else {
        "unknown"
    }
}

/// Step 10's metrics: the request counted by tool, action and status, and timed. Returns
/// its duration in ms.
fn count(state: &AppState, trail: &Trail, status: StatusCode, started: Instant) -> f64 {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let tool = label(&trail.named.tool, trail.named.known_tool.is_some());
    let action = label(&trail.named.action, trail.named.known_action.is_some());
    let metrics = &state.metrics.proxy;
    metrics
        .requests
        .with_label_values(&[tool, action, status.as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[tool, action])
        .observe(elapsed_ms / 1000.0);
    elapsed_ms
}

/// Step 10: metrics and the request's audit row.
async fn record(
    state: &AppState,
    trail: &Trail,
    correlation_id: &str,
    status: StatusCode,
    refusal: Option<Refusal>,
    started: Instant,
) {
    let elapsed_ms = count(state, trail, status, started);
    if let Some(refusal) = refusal {
        refusals::count(&state.metrics, refusal);
    }
    let call = crate::audit::sampling::Call {
        success: status.is_success(),
        policy_refused: matches!(trail.policy_decision, Some("deny" | "error")),
        chaos_fault: trail.chaos_fault.is_some(),
        writes: trail
            .named
            .known_action
            .is_some_and(|a| a.permission == crate::catalog::Permission::Write),
    };
    let rate = state.proxy.settings.audit_sample_allowed;
    let sample_rate = match crate::audit::sampling::decide(rate, call, rand::random::<f64>) {
        Keep::Always => None,
        Keep::Sampled(rate) => Some(rate),
        Keep::Skipped => {
            state.metrics.audit.sampled_out.inc();
            return;
        }
    };
    state
        .proxy
        .audit
        .request(RequestLogRow {
            id: uuid::Uuid::now_v7().to_string(),
            correlation_id: correlation_id.to_string(),
            agent_id: trail.agent_id.clone(),
            tool: audit_name(&trail.named.tool),
            action: audit_name(&trail.named.action),
            status_code: i64::from(status.as_u16()),
            success: i64::from(status.is_success()),
            error_code: refusal.map(|r| r.code().to_string()),
            response_time_ms: elapsed_ms,
            cached: i64::from(trail.cached),
            policy_decision: trail.policy_decision.map(str::to_string),
            chaos_fault: trail.chaos_fault.map(str::to_string),
            sample_rate,
            created_at: Utc::now().timestamp_millis(),
        })
        .await;
}

/// Tool and action names as sent, made fit for the audit row: cut to 64 characters, and NUL
/// replaced by U+FFFD (PostgreSQL refuses NUL in text, and would refuse the whole batch).
fn audit_name(text: &str) -> String {
    let cut = match text.char_indices().nth(64) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    without_nul(cut)
}

/// `text` with each NUL replaced by U+FFFD.
pub(super) fn without_nul(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}")
    } else {
        text.to_owned()
    }
}
