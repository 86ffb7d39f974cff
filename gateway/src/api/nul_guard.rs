//! Refuses a request whose path or query holds a percent-encoded NUL (`%00`). PostgreSQL can
//! neither store nor compare NUL in text, so such a request would reach the database and fail
//! there with a 500; here it is a 400 `invalid_text` on every backend. (JSON bodies get the
//! same check in [`super::json::parse_json`].)

use crate::error::ApiError;
use crate::error::Refusal;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware: 400 `invalid_text` for a URI with `%00`, otherwise the next service.
pub async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    if holds_encoded_nul(request.uri().path())
        || request.uri().query().is_some_and(holds_encoded_nul)
    {
        return ApiError::new(
            Refusal::InvalidText,
            "The path and query must not contain the NUL character (%00)",
        )
        .into_response();
    }
    next.run(request).await
}

/// True when `text` (still percent-encoded) decodes to something holding NUL. A URI can
/// carry NUL only as `%00`; `%2500` (the text "%00") does not contain that sequence.
fn holds_encoded_nul(text: &str) -> bool {
    text.contains("%00")
}

#[cfg(test)]
mod tests {
    use super::holds_encoded_nul;

    #[test]
    fn only_an_encoded_nul_counts() {
        assert!(holds_encoded_nul("/api/policies/x%00"));
        assert!(holds_encoded_nul("agentId=a%00b"));
        assert!(!holds_encoded_nul("/api/policies/x%2500"));
        assert!(!holds_encoded_nul("q=100%25"));
    }
}
