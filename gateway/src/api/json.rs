//! Reading JSON request bodies with errors callers can act on.
//!
//! Malformed JSON, an empty body, wrong types and unknown fields are 400s with a stable
//! code and the offending path in `details`; a body over the limit is a 413.

use crate::error::ApiError;
use crate::error::Refusal;
use crate::server::body_deadline::is_body_timeout;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body, deserialised into `T` with [`parse_json`]'s errors.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        let bytes = read_body(request, state).await?;
        parse_json(&headers, &bytes).map(JsonBody)
    }
}

/// Reads the raw body, mapping an oversized body to 413 and a body that did not arrive in
/// time to 408.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    Refusal::PayloadTooLarge,
                    "Request body is larger than 1 MiB",
                )
            } else if is_body_timeout(&rejection) {
                ApiError::new(Refusal::BodyTimeout, "Request body did not arrive in time")
                    .with_header("connection", "close")
            } else {
                ApiError::new(Refusal::UnreadableBody, "Request body could not be read")
            }
        })
}

/// Parses a JSON body. A body with a non-JSON content type is refused with 415.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            Refusal::MissingBody,
            "Request body is required (JSON)",
        ));
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let is_json = content_type
            .to_str()
            .map(|v| {
                let essence = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                Refusal::UnsupportedMediaType,
                "Content-Type must be application/json",
            ));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(Refusal::MalformedJson, "Request body is not valid JSON")
                .with_details(json!([inner.to_string()]))
        } else {
            let detail = if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            };
            ApiError::new(Refusal::InvalidBody, "Request body has the wrong shape")
                .with_details(json!([detail]))
        }
    })?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            Refusal::MalformedJson,
            "Request body has trailing characters after the JSON value",
        )
    })?;
    if has_escaped_nul(bytes) {
        // PostgreSQL cannot store NUL in text: refuse it here, the same on every backend,
        // rather than fail in the database with a 500.
        return Err(ApiError::new(
            Refusal::InvalidText,
            "Text fields must not contain the NUL character (\\u0000)",
        ));
    }
    Ok(value)
}

/// True when a (valid) JSON text holds a NUL character: in JSON only the escape `\u0000`
/// can write one (a raw NUL byte is not valid JSON).
fn has_escaped_nul(json: &[u8]) -> bool {
    let mut rest = json;
    while let Some(at) = rest.iter().position(|&b| b == b'\\') {
        let escaped = &rest[at + 1..];
        if escaped.starts_with(b"u0000") {
            return true;
        }
        // Skip the escaped character, so that `\\u0000` (a backslash, then the text
        // "u0000") is not mistaken for a NUL.
        rest = escaped.get(1..).unwrap_or_default();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_escaped_nul;

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(has_escaped_nul(br#"{"name":"a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"name":"\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"name":"a\\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"name":"a\u0001b","n":"\"u0000"}"#));
        assert!(!has_escaped_nul(br#"{"name":"trailing backslash\"#));
    }
}
