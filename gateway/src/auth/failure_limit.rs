//! A limit on failed authentications per client address (an admin route without the right
//! key, an invalid agent token, a bad agent signature). Within it, a failure is answered
//! and logged as usual; past it, the client's further failures are answered 429
//! `too_many_auth_failures` at once, without an audit row or a log line of their own (one
//! warning a minute per client says how many were refused), so that one client cannot flood
//! the audit log and the logs, or crowd out other callers' rows. A request that
//! authenticates is never refused by it.
//!
//! GCRA per client (an IPv4 address or an IPv6 /64), in process; at most
//! [`MAX_CLIENTS`] clients are remembered, each forgotten after two idle minutes.

use crate::error::ApiError;
use crate::error::Refusal;
use crate::resilience::rate_limit::gcra_step;
use crate::server::connections::ClientKey;
use moka::sync::Cache;
use parking_lot::Mutex;
use prometheus::IntCounter;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Most clients remembered at once.
pub const MAX_CLIENTS: u64 = 100_000;
/// Least time between two warnings about one client.
const WARN_EVERY_MS: i64 = 60_000;

/// A client's failures.
#[derive(Debug, Default)]
struct Record {
    /// GCRA theoretical arrival time, µs.
    tat: Option<i64>,
    /// Refusals since the last warning.
    refused_since_warning: u64,
    /// When the last warning was logged, ms.
    warned_at_ms: Option<i64>,
}

/// Failed authentications per client address.
pub struct AuthFailures {
    per_minute: u32,
    clients: Cache<ClientKey, Arc<Mutex<Record>>>,
    limited: IntCounter,
}

impl AuthFailures {
    /// A limit of `per_minute` failures per client (0: no limit); `limited` counts the
    /// failures refused past it.
    pub fn new(per_minute: u32, limited: IntCounter) -> Self {
        Self {
            per_minute,
            clients: Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(Duration::from_secs(120))
                .build(),
            limited,
        }
    }

    /// Records a failed authentication by `client` at `now_ms`. `Err` carries the 429 to
    /// answer instead of the failure's own error, when the client is past its limit.
    pub fn record(&self, client: Option<IpAddr>, now_ms: i64) -> Result<(), ApiError> {
        let (Some(ip), true) = (client, self.per_minute > 0) else {
            return Ok(());
        };
        let key = ClientKey::of(ip);
        let record = self.clients.get_with(key, Default::default);
        let mut record = record.lock();
        match gcra_step(record.tat, now_ms.saturating_mul(1000), self.per_minute) {
            Ok((tat, _)) => {
                record.tat = Some(tat);
                Ok(())
            }
            Err(retry_after_us) => {
                self.limited.inc();
                record.refused_since_warning += 1;
                if record
                    .warned_at_ms
                    .is_none_or(|at| now_ms - at >= WARN_EVERY_MS)
                {
                    tracing::warn!(client = ?key, refused = record.refused_since_warning,
                        "client past its limit of failed authentications; refusals are summed up here, at most once a minute");
                    record.refused_since_warning = 0;
                    record.warned_at_ms = Some(now_ms);
                }
                let retry_after = (retry_after_us / 1_000_000).max(1);
                Err(ApiError::new(
                    Refusal::TooManyAuthFailures,
                    "Too many failed authentications from this address; try again later",
                )
                .with_field("retry_after", retry_after)
                .with_header("retry-after", retry_after)
                .quiet())
            }
        }
    }

    /// True when `client` is past its limit now (its next failure would be refused): lets
    /// costly checks (an agent signature: a database read and an RSA verification) be
    /// skipped for it.
    pub fn is_limited(&self, client: Option<IpAddr>, now_ms: i64) -> bool {
        let (Some(ip), true) = (client, self.per_minute > 0) else {
            return false;
        };
        self.clients.get(&ClientKey::of(ip)).is_some_and(|record| {
            gcra_step(
                record.lock().tat,
                now_ms.saturating_mul(1000),
                self.per_minute,
            )
            .is_err()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32) -> AuthFailures {
        AuthFailures::new(per_minute, IntCounter::new("t", "t").unwrap())
    }

    #[test]
    fn a_client_is_limited_past_its_failures_and_others_are_not() {
        let failures = limiter(3);
        let attacker = Some("192.0.2.1".parse().unwrap());
        let other = Some("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(failures.record(attacker, 1_000).is_ok());
        }
        assert!(failures.is_limited(attacker, 1_000));
        let refused = failures.record(attacker, 1_000).unwrap_err();
        assert_eq!(refused.code(), "too_many_auth_failures");
        assert_eq!(failures.limited.get(), 1);
        assert!(!failures.is_limited(other, 1_000));
        assert!(failures.record(other, 1_000).is_ok());
        // A minute later the allowance is whole again.
        assert!(failures.record(attacker, 61_000).is_ok());
    }

    #[test]
    fn no_limit_or_no_address_refuses_nothing() {
        let off = limiter(0);
        let client = Some("192.0.2.1".parse().unwrap());
        for _ in 0..100 {
            assert!(off.record(client, 0).is_ok());
        }
        let on = limiter(1);
        for _ in 0..100 {
            assert!(on.record(None, 0).is_ok());
        }
    }
}
