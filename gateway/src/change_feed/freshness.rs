//! How current each in-memory copy the change feed keeps is: the last time each was known
//! to hold everything the database had. `/metrics` shows each copy's age in
//! `gateway_replicated_state_age_seconds{state}`; an age that keeps growing means this
//! instance serves from a copy it can no longer refresh (the database is away, or the copy
//! fails to load), and the alert `GatewayReplicatedStateStale` fires.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// One in-memory copy of stored state, kept current by the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replica {
    /// Agents and token revocations.
    Access,
    /// Active policies.
    Policies,
    /// Active tool credentials.
    Credentials,
    /// Chaos rules.
    Chaos,
    /// Uploaded plugins.
    Plugins,
}

impl Replica {
    /// Every copy, in the order of [`Freshness::ages`].
    pub const ALL: [Replica; 5] = [
        Replica::Access,
        Replica::Policies,
        Replica::Credentials,
        Replica::Chaos,
        Replica::Plugins,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Replica::Access => "access",
            Replica::Policies => "policies",
            Replica::Credentials => "credentials",
            Replica::Chaos => "chaos",
            Replica::Plugins => "plugins",
        }
    }
}

/// When each copy was last known current.
#[derive(Debug)]
pub struct Freshness {
    current_at: Mutex<[Instant; Replica::ALL.len()]>,
}

impl Freshness {
    /// Every copy current now (they were just loaded).
    pub fn new() -> Self {
        Self {
            current_at: Mutex::new([Instant::now(); Replica::ALL.len()]),
        }
    }

    /// `copy` held everything the database had at `at`.
    pub fn current(&self, copy: Replica, at: Instant) {
        let index = Replica::ALL.iter().position(|c| *c == copy).unwrap_or(0);
        let mut marks = self.current_at.lock();
        marks[index] = marks[index].max(at);
    }

    /// Every copy held everything the database had at `at`.
    pub fn all_current(&self, at: Instant) {
        for copy in Replica::ALL {
            self.current(copy, at);
        }
    }

    /// Each copy's age now.
    pub fn ages(&self) -> [(Replica, Duration); Replica::ALL.len()] {
        let marks = *self.current_at.lock();
        let now = Instant::now();
        std::array::from_fn(|i| (Replica::ALL[i], now.saturating_duration_since(marks[i])))
    }
}

impl Default for Freshness {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_ages_until_it_is_known_current_again() {
        let freshness = Freshness::new();
        let start = Instant::now();
        let later = start + Duration::from_secs(5);
        freshness.all_current(later);
        freshness.current(Replica::Policies, later + Duration::from_secs(1));
        // An older confirmation never makes a copy look older than it is.
        freshness.current(Replica::Policies, start);
        let ages = freshness.ages();
        let policies = ages
            .iter()
            .find(|(c, _)| *c == Replica::Policies)
            .unwrap()
            .1;
        let access = ages.iter().find(|(c, _)| *c == Replica::Access).unwrap().1;
        // Both marks lie in the future of `now`, so both read zero; what matters is that
        // the later mark was kept.
        assert_eq!(policies, Duration::ZERO);
        assert_eq!(access, Duration::ZERO);
        let marks = *freshness.current_at.lock();
        assert_eq!(marks[1], later + Duration::from_secs(1));
        assert_eq!(marks[0], later);
    }
}
