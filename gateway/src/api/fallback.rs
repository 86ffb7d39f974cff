//! JSON answers for requests that match no route, or a route with another method.

use crate::error::ApiError;
use crate::error::Refusal;
use axum::http::{Method, Uri};

/// 404 for an unknown route.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        Refusal::NotFound,
        format!("Route {method}:{} not found", uri.path()),
    )
}

/// 405 for a known route called with another method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        Refusal::MethodNotAllowed,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
}
