//! Step 2: the token opens (seal, expiry, revocation, agent status), names the token it
//! claims to be when `token_id` is sent, and asks for rotation when it nears its end.

use super::input::ProxyInput;
use super::trail::Trail;
use crate::crypto::token::Claims;
use crate::error::{ApiError, Refusal};
use crate::tokens::mirror::AccessMirror;
use crate::tokens::{rotation_recommended, Rejection, TokenService};
use axum::http::{HeaderName, HeaderValue};
use chrono::{DateTime, Utc};

const X_TOKEN_ROTATION_RECOMMENDED: HeaderName =
    HeaderName::from_static("x-token-rotation-recommended");
const X_TOKEN_EXPIRES_AT: HeaderName = HeaderName::from_static("x-token-expires-at");

/// The claims of the call's token, or why it is refused.
pub(super) async fn authenticate(
    tokens: &TokenService,
    mirror: &AccessMirror,
    input: &ProxyInput,
    now: DateTime<Utc>,
    trail: &mut Trail,
) -> Result<std::sync::Arc<Claims>, ApiError> {
    // A refusal here is counted against the client's address, as every refusal before the
    // agent is known.
    let claims = tokens
        .validate(&input.token, now)
        .await
        .map_err(token_failure)?;
    trail.agent_id = Some(claims.sub.to_string());
    if let Some(token_id) = &input.token_id {
        check_provenance(mirror, &claims, token_id)?;
    }
    if rotation_recommended(&claims, now) {
        trail.headers.push((
            X_TOKEN_ROTATION_RECOMMENDED,
            HeaderValue::from_static("true"),
        ));
        let expires = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        let expires = expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Ok(value) = HeaderValue::from_str(&expires) {
            trail.headers.push((X_TOKEN_EXPIRES_AT, value));
        }
    }
    Ok(claims)
}

fn token_failure(rejection: Rejection) -> ApiError {
    match rejection {
        Rejection::Malformed
        | Rejection::BadSeal
        | Rejection::UnknownKey
        | Rejection::UnknownAgent => ApiError::new(Refusal::InvalidToken, "Invalid token"),
        Rejection::Expired => ApiError::new(Refusal::TokenExpired, "Token expired"),
        Rejection::Revoked => ApiError::new(Refusal::TokenRevoked, "Token has been revoked"),
        Rejection::AgentNotActive => ApiError::new(Refusal::AgentNotActive, "Agent is not active"),
    }
}

/// `token_id`, when sent, must name the presented token: another token's id is refused as
/// a mismatch, or as revoked when that token is.
fn check_provenance(
    mirror: &AccessMirror,
    claims: &Claims,
    token_id: &str,
) -> Result<(), ApiError> {
    let named = uuid::Uuid::parse_str(token_id.trim()).ok();
    if named == Some(claims.jti) {
        return Ok(());
    }
    if named.is_some_and(|id| mirror.is_revoked(&id)) {
        return Err(token_failure(Rejection::Revoked));
    }
    Err(ApiError::new(
        Refusal::TokenMismatch,
        "Token proof verification failed",
    ))
}
