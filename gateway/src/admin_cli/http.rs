//! The management API as the command line calls it: the admin key on every call, a timeout,
//! and an error answer turned into the server's status, code and message.

use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Longest a management call may take (an upload compiles a plugin: allow for it).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The gateway answered with an error.
    #[error("{status} {code}: {message}{details}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The server's message.
        message: String,
        /// Its details, on a line of their own, if any.
        details: String,
        /// The whole answer, printed as is under `--json`.
        body: Value,
    },
    /// Anything else: unreachable gateway, unreadable file, missing key.
    #[error("{0}")]
    Other(String),
}

/// Exit status of a command the gateway refused (an error answer).
pub const EXIT_REFUSED: u8 = 3;
/// Exit status of a command that failed here: the gateway unreachable, a file unreadable,
/// no admin key. (Usage errors exit 2, as the argument parser does.)
pub const EXIT_LOCAL: u8 = 1;

impl CliError {
    /// The process's exit status for this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Api { .. } => EXIT_REFUSED,
            CliError::Other(_) => EXIT_LOCAL,
        }
    }

    /// The error as JSON, for `--json`: the server's answer as it came, or
    /// `{"error": …}` for a failure here.
    pub fn to_json(&self) -> Value {
        match self {
            CliError::Api { body, .. } if body.is_object() => body.clone(),
            other => serde_json::json!({ "error": other.to_string() }),
        }
    }
}

/// A gateway's management API.
pub struct AdminApi {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl AdminApi {
    /// The API at `base`, called with `key`.
    pub fn new(base: &str, key: String) -> Result<Self, CliError> {
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| CliError::Other(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            client,
        })
    }

    /// Calls `method path` with `body`; the answer's JSON (`null` for an empty one).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CliError::Other(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Other(format!("reading the answer of {url}: {e}")))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        Err(CliError::Api {
            status: status.as_u16(),
            code: field("code").unwrap_or_else(|| "unknown".into()),
            message: field("error").unwrap_or_else(|| value.to_string()),
            details: value
                .get("details")
                .map(|d| format!("\n  details: {d}"))
                .unwrap_or_default(),
            body: value,
        })
    }
}

/// The admin key: `ADMIN_API_KEY`, else (a development gateway on this machine) the line the
/// gateway wrote into `<DATA_DIR>/dev-secrets.env`.
pub fn admin_key() -> Result<String, CliError> {
    if let Ok(key) = std::env::var("ADMIN_API_KEY") {
        if !key.trim().is_empty() {
            return Ok(key.trim().to_string());
        }
    }
    let data_dir = std::env::var("DATA_DIR").unwrap_or_else(|_| "data".into());
    let file = Path::new(&data_dir).join("dev-secrets.env");
    std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("ADMIN_API_KEY="))
                .map(|k| k.trim().trim_matches('"').to_string())
        })
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            CliError::Other(format!(
                "set ADMIN_API_KEY (no key in the environment, nor in {})",
                file.display()
            ))
        })
}
