//! Who may call what: the admin API key for management routes, and agent request
//! signatures as an alternative for minting tokens.

pub mod admin;
pub mod agent_signature;
pub mod failure_limit;
pub mod replay_guard;

use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use axum::http::HeaderMap;
use uuid::Uuid;

/// Who is calling a route that accepts more than one kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The holder of the admin API key.
    Admin,
    /// An agent that signed the request with its own key.
    Agent(Uuid),
}

/// Authorises a token-minting request from `client`: the admin key, or a valid agent
/// signature. `Authorization` wins when present, so a wrong admin key is never retried as a
/// signature. Failures count against the client's limit ([`failure_limit`]).
pub async fn authorize_minting(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let now_ms = state.store.now_ms();
    let failed = |error: ApiError| match state.auth_failures.record(client, now_ms) {
        Ok(()) => error,
        Err(limited) => limited,
    };
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return if state.admin_key.matches(headers) {
            Ok(Caller::Admin)
        } else {
            Err(failed(admin::unauthorized()))
        };
    }
    if headers.contains_key(agent_signature::AGENT_ID_HEADER) {
        // A client past its failures gets no more database reads or RSA verifications.
        if state.auth_failures.is_limited(client, now_ms) {
            return Err(failed(admin::unauthorized()));
        }
        return match agent_signature::verify(state, headers, method, path, body).await {
            Ok(agent) => Ok(Caller::Agent(agent)),
            Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED => Err(failed(e)),
            Err(e) => Err(e),
        };
    }
    Err(failed(ApiError::new(
        Refusal::Unauthorized,
        "Authentication required: the admin API key or an agent signature",
    )))
}
