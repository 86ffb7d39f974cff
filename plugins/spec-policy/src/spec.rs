//! The PolicySpec document (the original gateway's schema, camelCase keys), as this plugin
//! receives it in its configuration: the merged spec of the request's agent and role.

use gateway_wire::catalog;
use serde::{Deserialize, Serialize};

/// A merged policy specification. Unknown keys are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicySpec {
    /// Allowed `tool:action` pairs.
    pub scopes: Vec<String>,
    /// Required intent, if any: a call that states another intent is denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// When true, a call that states no intent at all is denied too (`intent_required`);
    /// by default, as in the original gateway, only a different intent is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent_required: Option<bool>,
    /// Request guards.
    pub guards: Guards,
    /// Usage quotas.
    pub quotas: Vec<Quota>,
    /// Days and hours when calls are allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Rewrites of successful responses.
    pub response_filters: ResponseFilters,
}

/// Request guards.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Guards {
    /// Largest accepted `params` JSON, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_size: Option<u64>,
    /// Largest response passed through, in bytes of JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_size: Option<u64>,
    /// http_fetch targets allowed (a domain matches itself and its subdomains).
    pub allowed_domains: Vec<String>,
    /// http_fetch targets refused (same matching).
    pub blocked_domains: Vec<String>,
    /// Kinds of personal data masked in responses: email, phone, ssn, credit_card.
    pub pii_filters: Vec<String>,
    /// Time of day when calls are allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
}

/// A daily window `start`–`end` ("HH:MM", inclusive) in a time zone. A window whose end is
/// before its start spans midnight.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResetStrategy {
    /// The last `window` before now (estimated from two fixed windows).
    #[default]
    Sliding,
    /// Fixed windows aligned to the epoch in UTC (a "24h" quota resets at midnight UTC).
    Fixed,
}

/// Days and hours when calls are allowed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AllowedHours {
    /// First allowed hour (default 0).
    pub start: Option<u32>,
    /// Last allowed hour (default 23).
    pub end: Option<u32>,
}

/// Rewrites of successful responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TruncateField {
    /// Key.
    pub field: String,
    /// Most characters kept.
    pub max_length: usize,
}

/// True when `scope` names a tool action of the gateway's catalog, or every action of one
/// of its tools (`serpapi:*`, as tokens do).
fn known_scope(scope: &str) -> bool {
    match scope.strip_suffix(":*") {
        Some(tool) => tool.parse::<catalog::ToolName>().is_ok(),
        None => catalog::find_scoped(scope).is_some(),
    }
}

impl PolicySpec {
    /// True when the scopes allow `tool`'s `action`: named alone, or as `tool:*`.
    pub fn allows(&self, tool: &str, action: &str) -> bool {
        self.scopes.iter().any(|scope| match scope.split_once(':') {
            Some((t, "*")) => t == tool,
            Some((t, a)) => t == tool && a == action,
            None => false,
        })
    }

    /// True when the spec has rules for successful responses (redacted, truncated or blocked
    /// fields, PII masking, a response size limit). Without any, an allowed call is answered
    /// `allow` rather than `allow-and-filter`, so the gateway makes no filter call.
    pub fn has_response_rules(&self) -> bool {
        let filters = &self.response_filters;
        !(filters.redact_fields.is_empty()
            && filters.truncate_fields.is_empty()
            && filters.block_patterns.is_empty()
            && self.guards.pii_filters.is_empty()
            && self.guards.max_response_size.is_none())
    }

    /// Everything wrong with the spec, as `path: problem` lines (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.scopes.is_empty() {
            out.push("scopes: at least one tool:action is required".to_string());
        }
        for (i, scope) in self.scopes.iter().enumerate() {
            if !known_scope(scope) {
                out.push(format!("scopes[{i}]: unknown tool:action {scope:?}"));
            }
        }
        if let Some(w) = &self.guards.time_window {
            for (name, value) in [("start", &w.start), ("end", &w.end)] {
                if let Some(v) = value {
                    if crate::clock::parse_hh_mm(v).is_none() {
                        out.push(format!(
                            "guards.timeWindow.{name}: expected HH:MM, got {v:?}"
                        ));
                    }
                }
            }
            if let Some(tz) = &w.timezone {
                if tz.parse::<chrono_tz::Tz>().is_err() {
                    out.push(format!(
                        "guards.timeWindow.timezone: unknown time zone {tz:?}"
                    ));
                }
            }
        }
        for kind in &self.guards.pii_filters {
            if !matches!(kind.as_str(), "email" | "phone" | "ssn" | "credit_card") {
                out.push(format!(
                    "guards.piiFilters: unknown kind {kind:?} (email, phone, ssn, credit_card)"
                ));
            }
        }
        for (i, q) in self.quotas.iter().enumerate() {
            if crate::quotas::window_ms(&q.window).is_none() {
                out.push(format!(
                    "quotas[{i}].window: expected a number and s, m, h or d, got {:?}",
                    q.window
                ));
            }
            if catalog::find_scoped(&q.action).is_none() {
                out.push(format!(
                    "quotas[{i}].action: unknown tool:action {:?}",
                    q.action
                ));
            }
        }
        if let Some(s) = &self.schedule {
            if s.timezone.parse::<chrono_tz::Tz>().is_err() {
                out.push(format!(
                    "schedule.timezone: unknown time zone {:?}",
                    s.timezone
                ));
            }
            if s.allowed_days.iter().flatten().any(|d| *d > 6) {
                out.push("schedule.allowedDays: days are 0 (Sunday) to 6 (Saturday)".to_string());
            }
            if let Some(h) = &s.allowed_hours {
                if h.start.is_some_and(|v| v > 23) || h.end.is_some_and(|v| v > 23) {
                    out.push("schedule.allowedHours: hours are 0 to 23".to_string());
                }
            }
        }
        out
    }
}

fn push_unique(into: &mut Vec<String>, from: &[String]) {
    for item in from {
        if !into.contains(item) {
            into.push(item.clone());
        }
    }
}

/// Merges specs in order: lists are united (quotas and truncations concatenated), and for
/// single values (intent, request guards, time window, schedule) the later spec wins.
/// The gateway passes role policies first and the agent's own policies last, so an agent's
/// policy overrides its role's.
pub fn merge(specs: &[PolicySpec]) -> PolicySpec {
    let mut merged = PolicySpec::default();
    for spec in specs {
        push_unique(&mut merged.scopes, &spec.scopes);
        if spec.intent.is_some() {
            merged.intent.clone_from(&spec.intent);
        }
        if spec.intent_required.is_some() {
            merged.intent_required = spec.intent_required;
        }
        let (g, m) = (&spec.guards, &mut merged.guards);
        if g.max_request_size.is_some() {
            m.max_request_size = g.max_request_size;
        }
        if g.max_response_size.is_some() {
            m.max_response_size = g.max_response_size;
        }
        push_unique(&mut m.allowed_domains, &g.allowed_domains);
        push_unique(&mut m.blocked_domains, &g.blocked_domains);
        push_unique(&mut m.pii_filters, &g.pii_filters);
        if g.time_window.is_some() {
            m.time_window.clone_from(&g.time_window);
        }
        merged.quotas.extend(spec.quotas.iter().cloned());
        if spec.schedule.is_some() {
            merged.schedule.clone_from(&spec.schedule);
        }
        let (f, m) = (&spec.response_filters, &mut merged.response_filters);
        push_unique(&mut m.redact_fields, &f.redact_fields);
        push_unique(&mut m.block_patterns, &f.block_patterns);
        m.truncate_fields.extend(f.truncate_fields.iter().cloned());
    }
    merged
}
