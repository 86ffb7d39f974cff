//! What a request leaves behind as it goes through the steps: the names it was sent
//! with, the agent once known, each step's verdict, and the headers the answer carries.

use super::input::Named;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub(super) const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// What the audit row and metrics need to know about a request, filled in as it goes.
#[derive(Default)]
pub(super) struct Trail {
    pub named: Named,
    pub agent_id: Option<String>,
    pub policy_decision: Option<&'static str>,
    pub chaos_fault: Option<&'static str>,
    pub cached: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What the access log line says of a proxy call (a response extension).
#[derive(Debug, Clone)]
pub struct ProxyCallLog {
    /// The call's correlation id, as in its audit row and `X-Correlation-ID`.
    pub correlation_id: String,
    /// The calling agent, once its token was read.
    pub agent_id: Option<String>,
    /// Tool as sent.
    pub tool: String,
    /// Action as sent.
    pub action: String,
}

/// The client's `X-Correlation-ID` when valid, else the request's id (`X-Request-ID`, set
/// before any handler), so that the log's `request_id` and the audit row's `corrId` name
/// a call alike; a new id only when neither is usable.
pub(super) fn correlation_id(headers: &HeaderMap) -> String {
    let valid = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                (1..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            })
            .map(str::to_string)
    };
    valid(&X_CORRELATION_ID)
        .or_else(|| valid(&crate::app::REQUEST_ID))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
