//! The PolicySpec document (the original gateway's schema, camelCase keys), as this plugin
//! receives it in its configuration: the merged spec of the request's agent and role.

use serde::Deserialize;

/// A merged policy specification. Unknown keys are ignored.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicySpec {
    /// Allowed `tool:action` pairs.
    pub scopes: Vec<String>,
    /// Required intent, if any.
    pub intent: Option<String>,
    /// Request guards.
    pub guards: Guards,
    /// Usage quotas.
    pub quotas: Vec<Quota>,
    /// Days and hours when calls are allowed.
    pub schedule: Option<Schedule>,
    /// Rewrites of successful responses.
    pub response_filters: ResponseFilters,
}

/// Request guards.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Guards {
    /// Largest accepted `params` JSON, in bytes.
    pub max_request_size: Option<u64>,
    /// Largest response passed through, in bytes of JSON.
    pub max_response_size: Option<u64>,
    /// http_fetch targets allowed (a domain matches itself and its subdomains).
    pub allowed_domains: Vec<String>,
    /// http_fetch targets refused (same matching).
    pub blocked_domains: Vec<String>,
    /// Kinds of personal data masked in responses: email, phone, ssn, credit_card.
    pub pii_filters: Vec<String>,
    /// Time of day when calls are allowed.
    pub time_window: Option<TimeWindow>,
}

/// A daily window `start`–`end` ("HH:MM", inclusive) in a time zone. A window whose end is
/// before its start spans midnight.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TimeWindow {
    /// Start, "HH:MM".
    pub start: Option<String>,
    /// End, "HH:MM".
    pub end: Option<String>,
    /// IANA time zone (default UTC).
    pub timezone: Option<String>,
}

/// A usage quota on one scope.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// The `tool:action` it counts.
    pub action: String,
    /// Most calls per window.
    pub limit: u64,
    /// Window length: a number and a unit, e.g. "1h", "24h", "7d", "30m".
    pub window: String,
    /// "sliding" (default) or "fixed" (calendar windows in UTC).
    #[serde(default)]
    pub reset_strategy: ResetStrategy,
}

/// How a quota window moves.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResetStrategy {
    /// The last `window` before now (estimated from two fixed windows).
    #[default]
    Sliding,
    /// Fixed windows aligned to the epoch in UTC (a "24h" quota resets at midnight UTC).
    Fixed,
}

/// Days and hours when calls are allowed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// When false the schedule is ignored.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// IANA time zone (default UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Allowed days, 0 = Sunday … 6 = Saturday (absent: every day).
    pub allowed_days: Option<Vec<u32>>,
    /// Allowed hours (absent: all day).
    pub allowed_hours: Option<AllowedHours>,
}

fn yes() -> bool {
    true
}

fn utc() -> String {
    "UTC".to_string()
}

/// Allowed hours `start`..=`end` (0–23): the end hour is allowed until :59.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AllowedHours {
    /// First allowed hour (default 0).
    pub start: Option<u32>,
    /// Last allowed hour (default 23).
    pub end: Option<u32>,
}

/// Rewrites of successful responses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseFilters {
    /// Keys whose values are replaced by "[REDACTED]", at any depth.
    pub redact_fields: Vec<String>,
    /// String fields cut to a length, at any depth.
    pub truncate_fields: Vec<TruncateField>,
    /// Strings containing any of these (case-insensitive) are replaced by "[BLOCKED]".
    pub block_patterns: Vec<String>,
}

/// One truncation rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TruncateField {
    /// Key.
    pub field: String,
    /// Most characters kept.
    pub max_length: usize,
}
