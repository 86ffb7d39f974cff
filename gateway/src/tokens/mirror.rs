//! In-memory mirror of what token validation needs from the database: each agent's status,
//! name and role, and the ids of revoked tokens that have not expired yet.
//!
//! Loaded in full at start, then refreshed incrementally every second (rows changed since the
//! last refresh, with an overlap for clock skew between instances), so that validation never
//! waits on the database and every gateway sharing a database converges within seconds.

use crate::store::agents::{Agent, AgentStatus};
use crate::store::tokens::Revocation;
use crate::store::{now_ms, Store, StoreError};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Each refresh re-reads this much before the previous one, to absorb clock skew between
/// instances writing the same database.
const SYNC_OVERLAP_MS: i64 = 5_000;

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
    synced_from_ms: Mutex<i64>,
}

impl AccessMirror {
    /// Loads every agent and every live revocation.
    pub async fn load(store: &Store) -> Result<Arc<Self>, StoreError> {
        let mirror = Arc::new(Self::default());
        mirror.sync(store).await?;
        Ok(mirror)
    }

    /// Reads changes since the last refresh and prunes expired revocations.
    pub async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let started = now_ms();
        let records_before_read = self.records.load(Ordering::SeqCst);
        let since = *self.synced_from_ms.lock();
        let from = if since == 0 {
            0
        } else {
            since - SYNC_OVERLAP_MS
        };
        let agents = store.agents_changed_since(from).await?;
        let revocations = store.revocations_since(from, started).await?;
        for agent in &agents {
            self.put_agent(agent, records_before_read, true);
        }
        for revocation in revocations {
            self.record_revocation(revocation);
        }
        self.revoked
            .write()
            .retain(|_, expires_at| *expires_at > started);
        *self.synced_from_ms.lock() = started;
        Ok(())
    }

    /// Runs [`AccessMirror::sync`] every second until the task is aborted.
    pub fn spawn_sync(self: &Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        let mirror = Arc::clone(self);
        crate::refresh::every_interval("access mirror", move || {
            let (mirror, store) = (Arc::clone(&mirror), store.clone());
            async move { mirror.sync(&store).await }
        })
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
