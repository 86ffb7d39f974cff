//! Response filters: redaction, truncation, blocked patterns, PII masking and the response
//! size guard, applied to the JSON of a successful response.

use crate::spec::PolicySpec;
use serde_json::Value;

const REDACTED: &str = "[REDACTED]";
const BLOCKED: &str = "[BLOCKED]";

/// Applies the spec's response filters to `response_json`: the filtered JSON, or `None`
/// when nothing changes (no response rules, or input that is not JSON).
pub fn apply(spec: &PolicySpec, response_json: &str) -> Option<String> {
    if !spec.has_response_rules() {
        return None;
    }
    let filters = &spec.response_filters;
    let pii = pii_patterns(&spec.guards.pii_filters);
    let mut value = serde_json::from_str::<Value>(response_json).ok()?;
    let blocked: Vec<String> = filters
        .block_patterns
        .iter()
        .map(|p| p.to_lowercase())
        .collect();
    let changed = walk(&mut value, None, spec, &blocked, &pii);
    // Unchanged, the response is the host's own text: no need to write it again.
    let out = changed.then(|| value.to_string());
    let size = out.as_ref().map_or(response_json.len(), String::len);
    match spec.guards.max_response_size {
        Some(max) if size as u64 > max => Some(
            serde_json::json!({
                "withheld": true,
                "reason": format!("Response exceeds {max} bytes allowed by policy"),
            })
            .to_string(),
        ),
        _ => out,
    }
}

/// Applies the filters below `value`; returns whether anything changed.
fn walk(
    value: &mut Value,
    key: Option<&str>,
    spec: &PolicySpec,
    blocked: &[String],
    pii: &[(regex_lite::Regex, &str)],
) -> bool {
    let filters = &spec.response_filters;
    if let Some(key) = key {
        if filters.redact_fields.iter().any(|f| f == key) {
            *value = Value::String(REDACTED.into());
            return true;
        }
    }
    match value {
        Value::Object(map) => map.iter_mut().fold(false, |changed, (k, v)| {
            walk(v, Some(k), spec, blocked, pii) | changed
        }),
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| {
            walk(v, key, spec, blocked, pii) | changed
        }),
        Value::String(text) => {
            if !blocked.is_empty() && {
                let lower = text.to_lowercase();
                blocked.iter().any(|p| !p.is_empty() && lower.contains(p))
            } {
                *text = BLOCKED.into();
                return true;
            }
            let mut changed = false;
            for (pattern, label) in pii {
                if pattern.is_match(text) {
                    *text = pattern.replace_all(text, *label).into_owned();
                    changed = true;
                }
            }
            if let Some(rule) =
                key.and_then(|k| filters.truncate_fields.iter().find(|t| t.field == k))
            {
                if text.chars().count() > rule.max_length {
                    *text = text.chars().take(rule.max_length).collect();
                    changed = true;
                }
            }
            changed
        }
        _ => false,
    }
}

/// Patterns of the requested PII kinds with their replacement labels.
/// More specific kinds come first, so an SSN is not masked as a phone number.
fn pii_patterns(kinds: &[String]) -> Vec<(regex_lite::Regex, &'static str)> {
    ["email", "ssn", "credit_card", "phone"]
        .into_iter()
        .filter(|kind| kinds.iter().any(|k| k == kind))
        .filter_map(|kind| {
            let (pattern, label) = match kind {
                "email" => (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[EMAIL]"),
                "phone" => (r"\+?\d[\d\s().-]{7,}\d", "[PHONE]"),
                "ssn" => (r"\b\d{3}-\d{2}-\d{4}\b", "[SSN]"),
                "credit_card" => (r"\b(?:\d[ -]?){13,19}\b", "[CARD]"),
                _ => return None,
            };
            // Invariant: the patterns above are valid.
            regex_lite::Regex::new(pattern).ok().map(|r| (r, label))
        })
        .collect()
}
