//! Who may call what: the admin API key for management routes, and agent request
//! signatures as an alternative for minting tokens.

pub mod admin;
pub mod agent_signature;
pub mod replay_guard;

use crate::error::ApiError;
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

/// Authorises a token-minting request: the admin key, or a valid agent signature.
/// `Authorization` wins when present, so a wrong admin key is never retried as a signature.
pub async fn authorize_minting(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Caller, ApiError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return if state.admin_key.matches(headers) {
            Ok(Caller::Admin)
        } else {
            Err(admin::unauthorized())
        };
    }
    if headers.contains_key(agent_signature::AGENT_ID_HEADER) {
        let agent = agent_signature::verify(state, headers, method, path, body).await?;
        return Ok(Caller::Agent(agent));
    }
    Err(ApiError::unauthorized(
        "unauthorized",
        "Authentication required: the admin API key or an agent signature",
    ))
}
