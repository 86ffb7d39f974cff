//! Circuit breakers of `http_fetch`, one per destination (scheme, host and port). The caller
//! chooses where `http_fetch` goes, so a failing destination says nothing about the tool:
//! a caller fetching a broken or unreachable host of its choice pauses that host only, and
//! every other destination keeps flowing for everyone.
//!
//! Bounded: at most [`MAX_DESTINATIONS`] breakers, each forgotten once unused for twice the
//! longer of the window and the open period (a forgotten breaker starts closed again).

use super::breaker::{Breaker, BreakerSettings};
use moka::sync::Cache;
use std::sync::Arc;
use url::Url;

/// Most destinations with a breaker at once.
pub const MAX_DESTINATIONS: u64 = 10_000;

/// The breakers of `http_fetch`'s destinations.
pub struct DestinationBreakers {
    breakers: Cache<String, Arc<Breaker>>,
    settings: BreakerSettings,
}

impl DestinationBreakers {
    /// Breakers with `settings`, created on first use.
    pub fn new(settings: BreakerSettings) -> Self {
        let idle = settings.window.max(settings.open_for) * 2;
        Self {
            breakers: Cache::builder()
                .max_capacity(MAX_DESTINATIONS)
                .time_to_idle(idle)
                .build(),
            settings,
        }
    }

    /// The breaker of `url`'s destination.
    pub fn of(&self, url: &Url) -> Arc<Breaker> {
        let settings = self.settings;
        self.breakers
            .get_with(destination(url), || Arc::new(Breaker::new(settings)))
    }
}

/// `scheme://host:port` of a URL (the port made explicit, so that `http://a` and
/// `http://a:80` are one destination).
pub fn destination(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::breaker::{Outcome, State};
    use std::time::Duration;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 2,
            failure_ratio: 0.5,
            min_calls: 100,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }

    #[test]
    fn a_failing_destination_opens_its_own_breaker_only() {
        let breakers = DestinationBreakers::new(settings());
        let bad = Url::parse("http://bad.example/x").unwrap();
        let good = Url::parse("http://good.example/y").unwrap();
        for _ in 0..2 {
            let breaker = breakers.of(&bad);
            breaker.enter().unwrap().record(Outcome::Failure);
        }
        assert_eq!(breakers.of(&bad).state(), State::Open);
        assert!(breakers.of(&bad).enter().is_err());
        assert_eq!(breakers.of(&good).state(), State::Closed);
        assert!(breakers.of(&good).enter().is_ok());
    }

    #[test]
    fn a_destination_is_scheme_host_and_port() {
        let d = |u: &str| destination(&Url::parse(u).unwrap());
        assert_eq!(d("http://A.example/p?q"), d("http://a.example:80/other"));
        assert_ne!(d("http://a.example/"), d("https://a.example/"));
        assert_ne!(d("http://a.example:8080/"), d("http://a.example/"));
    }
}
