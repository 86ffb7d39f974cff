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
    agents: RwLock<HashMap<Uuid, AgentAccess>>,
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
        let since = *self.synced_from_ms.lock();
        let from = if since == 0 {
            0
        } else {
            since - SYNC_OVERLAP_MS
        };
        let agents = store.agents_changed_since(from).await?;
        let revocations = store.revocations_since(from, started).await?;
        for agent in &agents {
            self.record_agent(agent);
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
        self.agents.write().insert(
            agent.id,
            AgentAccess {
                status: agent.status,
                name: agent.name.clone(),
                role: agent.role.clone(),
            },
        );
    }

    /// Records a revocation (after a local revoke).
    pub fn record_revocation(&self, revocation: Revocation) {
        self.revoked
            .write()
            .insert(revocation.token_id, revocation.expires_at);
    }

    /// The agent's state, if the mirror knows the agent.
    pub fn agent(&self, id: &Uuid) -> Option<AgentAccess> {
        self.agents.read().get(id).cloned()
    }

    /// True when the token id is revoked.
    pub fn is_revoked(&self, token_id: &Uuid) -> bool {
        self.revoked.read().contains_key(token_id)
    }
}
