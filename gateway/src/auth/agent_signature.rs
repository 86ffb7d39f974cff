//! Agent request signatures as an authentication method.
//!
//! Headers: `X-Agent-Id`, `X-Agent-Timestamp` (unix seconds, within ±300 s of the gateway's
//! clock) and `X-Agent-Signature` (base64 RSA-PSS-SHA256 of the canonical message, see
//! [`crate::crypto::request_signature`]). Each signature is accepted once: a repeat within the
//! window is refused. Failures of the proof itself all answer the same `invalid_signature`.

use crate::crypto::agent_keys::parse_public_key;
use crate::crypto::request_signature::{signing_message, verify as verify_signature};
use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Header naming the signing agent.
pub const AGENT_ID_HEADER: &str = "x-agent-id";
/// Header with the signing time, unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-agent-timestamp";
/// Header with the base64 signature.
pub const SIGNATURE_HEADER: &str = "x-agent-signature";
/// Largest accepted distance between the signing time and the gateway's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

fn invalid() -> ApiError {
    ApiError::new(Refusal::InvalidSignature, "Invalid agent signature")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(invalid)
}

/// Verifies the signature headers of a request; returns the signing agent's id.
pub async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Uuid, ApiError> {
    let agent_id = Uuid::parse_str(header(headers, AGENT_ID_HEADER)?).map_err(|_| invalid())?;
    let timestamp_text = header(headers, TIMESTAMP_HEADER)?;
    let timestamp: i64 = timestamp_text.parse().map_err(|_| invalid())?;
    let signature = STANDARD
        .decode(header(headers, SIGNATURE_HEADER)?)
        .map_err(|_| invalid())?;
    let now = chrono::Utc::now().timestamp();
    if (now - timestamp).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::new(
            Refusal::StaleTimestamp,
            "X-Agent-Timestamp is more than 300 seconds from the gateway's clock",
        ));
    }
    let agent = state.store.agent(agent_id).await?.ok_or_else(invalid)?;
    let (public_key, _) = parse_public_key(&agent.public_key).map_err(|_| invalid())?;
    let message = signing_message(method, path, timestamp_text, body);
    if !verify_signature(&public_key, message.as_bytes(), &signature) {
        return Err(invalid());
    }
    let fingerprint: [u8; 32] = Sha256::digest(&signature).into();
    match state.replay_guard.first_use(fingerprint).await {
        Ok(true) => Ok(agent_id),
        Ok(false) => Err(ApiError::new(
            Refusal::ReplayedSignature,
            "This signature was already used; sign each request afresh",
        )),
        Err(e) => Err(ApiError::from(e)),
    }
}
