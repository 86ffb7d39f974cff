//! Each agent's share of a tool's upstream calls in flight: at most `BULKHEAD_PER_AGENT`
//! (16 by default, a quarter of the tool's bulkhead), so that one agent calling a slow
//! destination over and over cannot take every slot and queue place of the tool from the
//! other agents. Past its share, an agent's call is refused at once (429
//! `agent_calls_in_flight`); it never waits in the tool's queue.
//!
//! Bounded: at most [`MAX_SHARES`] agent and tool pairs are remembered, each forgotten after
//! ten idle minutes (a forgotten pair starts with its whole share again).

use crate::catalog::ToolName;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Most agent and tool pairs remembered at once.
pub const MAX_SHARES: u64 = 100_000;

/// The agents' shares of the tools' calls in flight.
pub struct AgentShares {
    per_agent: usize,
    shares: Cache<(Uuid, ToolName), Arc<Semaphore>>,
}

/// An admitted call: holds one place of its agent's share until dropped (`None` inside when
/// shares are off).
pub struct SharePlace {
    _permit: Option<OwnedSemaphorePermit>,
}

impl AgentShares {
    /// Shares of `per_agent` calls in flight per agent and tool (0: no share).
    pub fn new(per_agent: usize) -> Self {
        Self {
            per_agent,
            shares: Cache::builder()
                .max_capacity(MAX_SHARES)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// A place in `agent`'s share of `tool`, or `None` when its share is in use.
    pub fn enter(&self, agent: Uuid, tool: ToolName) -> Option<SharePlace> {
        if self.per_agent == 0 {
            return Some(SharePlace { _permit: None });
        }
        let per_agent = self.per_agent;
        let share = self
            .shares
            .get_with((agent, tool), || Arc::new(Semaphore::new(per_agent)));
        share.try_acquire_owned().ok().map(|permit| SharePlace {
            _permit: Some(permit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_past_its_share_is_refused_and_others_are_not() {
        let shares = AgentShares::new(2);
        let (greedy, other) = (Uuid::new_v4(), Uuid::new_v4());
        let first = shares.enter(greedy, ToolName::HttpFetch).unwrap();
        let _second = shares.enter(greedy, ToolName::HttpFetch).unwrap();
        assert!(shares.enter(greedy, ToolName::HttpFetch).is_none());
        assert!(
            shares.enter(greedy, ToolName::Serpapi).is_some(),
            "a share is per tool"
        );
        assert!(shares.enter(other, ToolName::HttpFetch).is_some());
        drop(first);
        assert!(shares.enter(greedy, ToolName::HttpFetch).is_some());
    }

    #[test]
    fn no_share_admits_everything() {
        let shares = AgentShares::new(0);
        let agent = Uuid::new_v4();
        let held: Vec<_> = (0..1000)
            .map(|_| shares.enter(agent, ToolName::HttpFetch).unwrap())
            .collect();
        assert_eq!(held.len(), 1000);
    }
}
