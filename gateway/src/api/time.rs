//! How times appear on the wire: ISO 8601 in UTC with milliseconds, as the original did.

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix milliseconds as `2025-08-15T12:00:00.000Z`.
pub fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time as `2025-08-15T12:00:00.000Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
