//! The checks of a request against a spec, in order: scope, intent, request size, domains,
//! time window, schedule, and last the quotas (so they are consumed only when everything
//! else allowed).

use crate::clock::{local_time, parse_hh_mm};
use crate::domains::{matches_any, url_host};
use crate::quotas;
use crate::spec::PolicySpec;
use gateway_sdk::{Decision, Host, Request};

/// The request's local time, computed once per time zone.
struct LocalClock<'z> {
    now_ms: u64,
    last: Option<(&'z str, Option<(u32, u32)>)>,
}

impl<'z> LocalClock<'z> {
    fn new(now_ms: u64) -> Self {
        Self { now_ms, last: None }
    }

    /// (weekday 0 = Sunday, minute of the day) in `zone`; `None` for an unknown zone.
    fn at(&mut self, zone: &'z str) -> Option<(u32, u32)> {
        match self.last {
            Some((z, value)) if z == zone => value,
            _ => {
                let value = local_time(self.now_ms, zone);
                self.last = Some((zone, value));
                value
            }
        }
    }
}

/// Evaluates `request` against `spec`.
pub fn evaluate(host: &dyn Host, spec: &PolicySpec, request: &Request) -> Decision {
    let scope = [request.tool(), ":", request.action()].concat();
    if !spec.allows(request.tool(), request.action()) {
        return Decision::deny(
            "scope_not_allowed",
            format!("Scope '{scope}' is not allowed for this agent"),
        );
    }
    if let Some(required) = spec.intent.as_deref() {
        let declared = match request.intent() {
            Some(intent) => Some(intent.to_string()),
            None => request.param("intent"),
        };
        match declared {
            Some(declared) if declared != required => {
                return Decision::deny(
                    "intent_mismatch",
                    format!("Intent '{declared}' does not match this agent's policy"),
                );
            }
            None if spec.intent_required == Some(true) => {
                return Decision::deny(
                    "intent_required",
                    "This agent's policy requires an intent: send `intent` with the call",
                );
            }
            _ => {}
        }
    }
    let guards = &spec.guards;
    if let Some(max) = guards.max_request_size {
        if request.params().len() as u64 > max {
            return Decision::deny(
                "request_too_large",
                format!("Request parameters exceed {max} bytes"),
            );
        }
    }
    if request.tool() == "http_fetch"
        && !(guards.allowed_domains.is_empty() && guards.blocked_domains.is_empty())
    {
        let Some(host_name) = request.param("url").as_deref().and_then(url_host) else {
            return Decision::deny(
                "invalid_url",
                "params.url must be an http(s) URL with a host",
            );
        };
        if matches_any(&host_name, &guards.blocked_domains) {
            return Decision::deny("domain_blocked", format!("Domain '{host_name}' is blocked"));
        }
        if !guards.allowed_domains.is_empty() && !matches_any(&host_name, &guards.allowed_domains) {
            return Decision::deny(
                "domain_not_allowed",
                format!("Domain '{host_name}' is not allowed for this agent"),
            );
        }
    }
    let mut clock = LocalClock::new(request.now_ms());
    if let Some(window) = &guards.time_window {
        let zone = window.timezone.as_deref().unwrap_or("UTC");
        let Some((_, minute)) = clock.at(zone) else {
            return Decision::deny(
                "policy_misconfigured",
                format!("Unknown time zone '{zone}'"),
            );
        };
        let start = window.start.as_deref().and_then(parse_hh_mm).unwrap_or(0);
        let end = window
            .end
            .as_deref()
            .and_then(parse_hh_mm)
            .unwrap_or(24 * 60 - 1);
        let inside = if start <= end {
            (start..=end).contains(&minute)
        } else {
            minute >= start || minute <= end
        };
        if !inside {
            return Decision::deny(
                "outside_time_window",
                "Requests are not allowed at this time of day",
            );
        }
    }
    if let Some(schedule) = spec.schedule.as_ref().filter(|s| s.enabled) {
        let Some((weekday, minute)) = clock.at(&schedule.timezone) else {
            return Decision::deny(
                "policy_misconfigured",
                format!("Unknown time zone '{}'", schedule.timezone),
            );
        };
        let day_ok = schedule
            .allowed_days
            .as_ref()
            .is_none_or(|days| days.contains(&weekday));
        let hour = minute / 60;
        let hour_ok = schedule.allowed_hours.as_ref().is_none_or(|h| {
            let start = h.start.unwrap_or(0);
            let end = h.end.unwrap_or(23);
            if start <= end {
                (start..=end).contains(&hour)
            } else {
                hour >= start || hour <= end
            }
        });
        if !(day_ok && hour_ok) {
            return Decision::deny("outside_schedule", "Requests are not allowed at this time");
        }
    }
    match quotas::consume(
        host,
        &spec.quotas,
        request.agent_id(),
        &scope,
        request.now_ms(),
    ) {
        Ok(()) => Decision::Allow,
        Err(quotas::Refusal::Exceeded {
            scope,
            limit,
            resets_at_ms,
        }) => {
            let resets = resets_at_ms
                .and_then(|ms| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64))
                .map(|t| {
                    format!(
                        " (resets at {})",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                })
                .unwrap_or_default();
            Decision::deny(
                "quota_exceeded",
                format!("Quota exceeded for {scope}: limit {limit}{resets}"),
            )
        }
        Err(quotas::Refusal::Unavailable(e)) => {
            host.log(
                gateway_sdk::LogLevel::Error,
                &format!("quota counters unavailable: {e}"),
            );
            Decision::deny(
                "quota_unavailable",
                "Quotas cannot be counted right now; try again later",
            )
        }
    }
}
