//! Reading query strings with JSON errors (axum's own extractor answers in plain text).

use crate::error::ApiError;
use crate::error::Refusal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Query parameters deserialised into `T`; a bad value is a 400 `invalid_query`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| {
                ApiError::new(Refusal::InvalidQuery, "Query string is invalid")
                    .with_details(json!([e.to_string()]))
            })
    }
}
