//! The one error type that handlers return, and how it becomes an HTTP response.
//!
//! Every error leaves the gateway as JSON `{"error": message, "code": stable_code}`, plus
//! `details` where they help the caller fix the request, and any fields (`reason`,
//! `retry_after`) and headers (`Retry-After`) a step adds.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
pub use gateway_wire::Refusal;
use serde_json::{json, Map, Value};

/// An error answered to an API caller: a [`Refusal`] (which gives the status and the stable
/// code) and a message for people.
#[derive(Debug)]
pub struct ApiError {
    refusal: Refusal,
    message: String,
    /// `details`, extra fields and headers: boxed, as most errors have none (and a small
    /// error keeps every `Result` small).
    extras: Option<Box<Extras>>,
}

/// What an error may add to its status, code and message.
#[derive(Debug, Default)]
struct Extras {
    details: Option<Value>,
    fields: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
    quiet: bool,
}

/// Marks a response that is not logged (nor audited) one by one: refusals a client keeps
/// provoking, summed up elsewhere instead.
#[derive(Debug, Clone, Copy)]
pub struct QuietLog;

/// The stable `code` of an error answer, for the access log line.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    /// `refusal`, told with `message`.
    pub fn new(refusal: Refusal, message: impl Into<String>) -> Self {
        Self {
            refusal,
            message: message.into(),
            extras: None,
        }
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Attaches `details` (for example the list of invalid fields).
    pub fn with_details(mut self, details: Value) -> Self {
        self.extras().details = Some(details);
        self
    }

    /// Adds a top-level field to the JSON body (for example `reason` or `retry_after`).
    pub fn with_field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extras().fields.insert(name.into(), value.into());
        self
    }

    /// Adds a response header (for example `Retry-After`).
    pub fn with_header(mut self, name: &'static str, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.extras()
                .headers
                .push((HeaderName::from_static(name), v));
        }
        self
    }

    /// 400 `validation_failed` listing what is wrong with the request body.
    pub fn validation(details: Vec<String>) -> Self {
        Self::new(Refusal::ValidationFailed, "Request validation failed")
            .with_details(json!(details))
    }

    /// 500 that says nothing of the cause; the cause goes to the log, with its context.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(Refusal::Internal, "Internal server error")
    }

    /// Logs `cause` (which the caller never sees) and returns the error unchanged.
    pub fn log_cause(self, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(code = self.code(), %cause, "{}", self.message);
        self
    }

    /// Marks the error as one not to log or audit one by one ([`QuietLog`]).
    pub fn quiet(mut self) -> Self {
        self.extras().quiet = true;
        self
    }

    /// True for an error marked [`ApiError::quiet`].
    pub fn is_quiet(&self) -> bool {
        self.extras.as_ref().is_some_and(|e| e.quiet)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        status_of(self.refusal)
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        self.refusal.code()
    }

    /// The refusal this error answers.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.message, "code": self.code() });
        let code = axum::Extension(ErrorCode(self.code()));
        let Some(extras) = self.extras else {
            return (status, code, Json(body)).into_response();
        };
        if let Some(details) = extras.details {
            body["details"] = details;
        }
        for (name, value) in extras.fields {
            body[name] = value;
        }
        let mut response = (status, code, Json(body)).into_response();
        for (name, value) in extras.headers {
            response.headers_mut().insert(name, value);
        }
        if extras.quiet {
            response.extensions_mut().insert(QuietLog);
        }
        response
    }
}

/// The HTTP status `refusal` is answered with.
pub fn status_of(refusal: Refusal) -> StatusCode {
    StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Seconds a client is told to wait before retrying a call the database could not serve.
const STORE_RETRY_AFTER_SECS: u32 = 2;

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable; answered 503 store_unavailable");
            return ApiError::new(
                Refusal::StoreUnavailable,
                "The database is unavailable; retry shortly",
            )
            .with_header("retry-after", STORE_RETRY_AFTER_SECS);
        }
        ApiError::internal("storage failure", &err)
    }
}
