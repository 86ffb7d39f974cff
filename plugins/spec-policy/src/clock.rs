//! Local time of a request in a policy's time zone.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

/// The request's time in `timezone`: (weekday 0 = Sunday, minutes since local midnight).
/// `None` when the zone is unknown.
pub fn local_time(now_ms: u64, timezone: &str) -> Option<(u32, u32)> {
    let tz: Tz = timezone.parse().ok()?;
    let utc = DateTime::<Utc>::from_timestamp_millis(i64::try_from(now_ms).ok()?)?;
    let local = utc.with_timezone(&tz);
    Some((
        local.weekday().num_days_from_sunday(),
        local.hour() * 60 + local.minute(),
    ))
}

/// Parses "HH:MM" into minutes since midnight.
pub fn parse_hh_mm(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}
