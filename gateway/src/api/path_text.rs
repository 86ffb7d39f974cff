//! A route's path parameter as text, refused with the JSON envelope when it cannot be read
//! (percent-encoded bytes that are not UTF-8, say), instead of axum's plain-text answer.

use crate::error::ApiError;
use crate::error::Refusal;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

/// The one path parameter of a route, as text.
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(text)) => Ok(Self(text)),
            Err(_) => Err(ApiError::new(
                Refusal::InvalidPath,
                "A path parameter could not be read: it must be UTF-8 text",
            )),
        }
    }
}
