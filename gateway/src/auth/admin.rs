//! The admin API key (and the metrics token, checked the same way): a constant-time check of
//! `Authorization: Bearer <key>`, and the middleware that guards every management route.

use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The admin key, held only as its SHA-256 digest so comparisons take the same time
/// whatever the length or content of the presented key.
#[derive(Clone)]
pub struct AdminKey {
    digest: [u8; 32],
}

impl AdminKey {
    /// Wraps the configured admin key.
    pub fn new(key: &str) -> Self {
        Self {
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }

    /// True when the headers carry `Authorization: Bearer <the admin key>`.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

/// The 401 every management route answers without the admin key.
pub fn unauthorized() -> ApiError {
    ApiError::new(Refusal::Unauthorized, "Missing or invalid admin API key")
}

/// Middleware: lets the request through only with the admin key; a failure counts against
/// the client's limit of failed authentications.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.admin_key.matches(request.headers()) {
        return next.run(request).await;
    }
    refused(&state, request.extensions(), unauthorized())
}

/// Answers a request that failed a bearer check with `error`, counting the failure against
/// its client's limit of failed authentications (429 past it).
pub fn refused(state: &AppState, extensions: &axum::http::Extensions, error: ApiError) -> Response {
    let client = crate::server::client_address(extensions).map(|a| a.ip());
    match state.auth_failures.record(client, state.store.now_ms()) {
        Ok(()) => error.into_response(),
        Err(limited) => limited.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn accepts_only_the_exact_bearer_key() {
        let key = AdminKey::new("correct-horse-battery-staple-000");
        let mut h = HeaderMap::new();
        assert!(!key.matches(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer correct-horse-battery-staple-000"),
        );
        assert!(key.matches(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer correct-horse-battery-staple-001"),
        );
        assert!(!key.matches(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("correct-horse-battery-staple-000"),
        );
        assert!(!key.matches(&h));
    }
}
