//! In-memory mirror of what token validation needs from the database: each agent's status,
//! name and role, and the ids of revoked tokens that have not expired yet.
//!
//! Loaded in full at start, then kept current by the change feed (`crate::change_feed`): it
//! re-reads exactly the agents and tokens that changed, so validation never waits on the
//! database and no instance's clock decides what another instance sees.

use crate::store::agents::{Agent, AgentStatus};
use crate::store::tokens::Revocation;
use crate::store::{Store, StoreError};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// What validation needs to know about an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAccess {
    /// Current status.
    pub status: AgentStatus,
    /// Current name.
    pub name: String,
    /// Current role.
    pub role: String,
}

/// The mirror. Shared behind an `Arc`.
#[derive(Default)]
pub struct AccessMirror {
    /// Each agent's state, with the [`AccessMirror::records`] count when it was recorded.
    agents: RwLock<HashMap<Uuid, (AgentAccess, u64)>>,
    /// How many times an agent was recorded outside a refresh (a local change): a refresh
    /// leaves alone the agents recorded after its read began, which it may have missed.
    records: AtomicU64,
    revoked: RwLock<HashMap<Uuid, i64>>,
}

impl AccessMirror {
    /// Loads every agent and every live revocation.
    pub async fn load(store: &Store) -> Result<Arc<Self>, StoreError> {
        let mirror = Arc::new(Self::default());
        mirror.reload(store).await?;
        Ok(mirror)
    }

    /// Re-reads every agent and every live revocation (at start, and when the change feed
    /// lost track); prunes expired revocations.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let records_before_read = self.records.load(Ordering::SeqCst);
        let now = store.now_ms();
        let agents = store.all_agents().await?;
        let revocations = store.live_revocations(now).await?;
        self.apply(&agents, revocations, records_before_read, now);
        Ok(())
    }

    /// Re-reads the agents and tokens the change feed names; prunes expired revocations.
    pub async fn apply_changes(
        &self,
        store: &Store,
        agent_ids: &[&str],
        token_ids: &[&str],
    ) -> Result<(), StoreError> {
        let records_before_read = self.records.load(Ordering::SeqCst);
        let agents = store.agents_by_ids(agent_ids).await?;
        let revocations = store.revocations_of(token_ids).await?;
        self.apply(&agents, revocations, records_before_read, store.now_ms());
        Ok(())
    }

    fn apply(
        &self,
        agents: &[Agent],
        revocations: Vec<Revocation>,
        records_before_read: u64,
        now: i64,
    ) {
        for agent in agents {
            self.put_agent(agent, records_before_read, true);
        }
        for revocation in revocations {
            self.record_revocation(revocation);
        }
        self.revoked
            .write()
            .retain(|_, expires_at| *expires_at > now);
    }

    /// Records an agent's current state (after a local create or status change).
    pub fn record_agent(&self, agent: &Agent) {
        let record = self.records.fetch_add(1, Ordering::SeqCst) + 1;
        self.put_agent(agent, record, false);
    }

    /// Stores `agent` as recorded at `record`. A refresh's copy (`refreshed`, recorded at the
    /// count its read began with) never replaces a state recorded after that: a refresh
    /// that read the row just before a local suspension must not make the agent active again.
    fn put_agent(&self, agent: &Agent, record: u64, refreshed: bool) {
        let mut agents = self.agents.write();
        if refreshed
            && agents
                .get(&agent.id)
                .is_some_and(|(_, known)| *known > record)
        {
            return;
        }
        let access = AgentAccess {
            status: agent.status,
            name: agent.name.clone(),
            role: agent.role.clone(),
        };
        agents.insert(agent.id, (access, record));
    }

    /// Records a revocation (after a local revoke).
    pub fn record_revocation(&self, revocation: Revocation) {
        self.revoked
            .write()
            .insert(revocation.token_id, revocation.expires_at);
    }

    /// The agent's state, if the mirror knows the agent.
    pub fn agent(&self, id: &Uuid) -> Option<AgentAccess> {
        self.agents.read().get(id).map(|(access, _)| access.clone())
    }

    /// True when the token id is revoked.
    pub fn is_revoked(&self, token_id: &Uuid) -> bool {
        self.revoked.read().contains_key(token_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: Uuid, status: AgentStatus) -> Agent {
        Agent {
            id,
            name: "a".into(),
            role: "scraper".into(),
            created_by: "admin".into(),
            public_key: String::new(),
            status,
            created_at: 0,
            updated_at: 0,
            max_scope: None,
        }
    }

    #[test]
    fn a_refresh_read_before_a_local_suspension_does_not_undo_it() {
        let mirror = AccessMirror::default();
        let id = Uuid::new_v4();
        mirror.record_agent(&agent(id, AgentStatus::Active));
        // A refresh begins its read while the agent is still active...
        let read_began = mirror.records.load(Ordering::SeqCst);
        // ...the agent is suspended here meanwhile...
        mirror.record_agent(&agent(id, AgentStatus::Suspended));
        // ...and the refresh applies what it read.
        mirror.put_agent(&agent(id, AgentStatus::Active), read_began, true);
        assert_eq!(mirror.agent(&id).unwrap().status, AgentStatus::Suspended);

        // A refresh that began after the suspension applies (another instance's change).
        let read_began = mirror.records.load(Ordering::SeqCst);
        mirror.put_agent(&agent(id, AgentStatus::Active), read_began, true);
        assert_eq!(mirror.agent(&id).unwrap().status, AgentStatus::Active);
    }
}
