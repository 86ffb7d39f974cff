//! Follows the database's change feed (the `changes` table) and applies each change to the
//! in-memory copy it concerns: revocations and agents to the access mirror, policies to the
//! policy book, uploaded plugins to the plugin registry, tool credentials, chaos rules.
//!
//! Each instance resumes from the last position it applied, so it cannot miss a change and
//! never compares clocks with the instance that made it. On PostgreSQL a notification wakes
//! the follower at once ([`wake`]); a poll backs it up (and is all SQLite has, whose
//! instances share a file on one host).

pub mod freshness;
mod wake;

use freshness::{Freshness, Replica};

use crate::chaos_rules::ChaosRules;
use crate::metrics::Metrics;
use crate::plugins::registry::PluginRegistry;
use crate::policies::PolicyBook;
use crate::store::changes::Change;
use crate::store::{Backend, Store, StoreError};
use crate::tokens::mirror::AccessMirror;
use crate::tools::credentials::Credentials;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Changes read per query.
const BATCH: i64 = 1_000;
/// Changes kept in the table; an instance further behind reloads everything.
const KEEP: i64 = 100_000;
/// How often one instance prunes the table.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The in-memory copies the feed keeps current.
pub struct Targets {
    /// Agents and revocations.
    pub mirror: Arc<AccessMirror>,
    /// Active policies.
    pub policies: Arc<PolicyBook>,
    /// Plugin files and uploads.
    pub plugins: Arc<PluginRegistry>,
    /// Active tool credentials.
    pub credentials: Arc<Credentials>,
    /// Chaos rules.
    pub chaos: Arc<ChaosRules>,
}

/// Why a catch-up stopped (the position stays where it was, so the next one retries).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The database did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The uploaded plugins could not be read.
    #[error(transparent)]
    Plugins(#[from] Arc<crate::plugins::registry::ReloadError>),
}

/// The follower of one instance.
pub struct ChangeFeed {
    store: Store,
    targets: Targets,
    metrics: Arc<Metrics>,
    /// The last position applied; the lock makes catch-ups take turns.
    applied: tokio::sync::Mutex<i64>,
    /// When each copy was last known current.
    freshness: Freshness,
}

impl ChangeFeed {
    /// A follower that resumes after `applied` (read before the copies were loaded, so that
    /// a change made while they loaded is applied again rather than missed).
    pub fn new(store: Store, targets: Targets, metrics: Arc<Metrics>, applied: i64) -> Arc<Self> {
        metrics.cluster.change_feed_position.set(applied);
        Arc::new(Self {
            store,
            targets,
            metrics,
            applied: tokio::sync::Mutex::new(applied),
            freshness: Freshness::new(),
        })
    }

    /// When each copy was last known current.
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// How long the follower waits between polls when nothing wakes it.
    pub fn poll_interval(backend: Backend) -> Duration {
        match backend {
            Backend::Postgres => Duration::from_secs(1),
            Backend::Sqlite => Duration::from_millis(100),
        }
    }

    /// Applies every change after the last one applied. A failed step leaves the position
    /// where it was, so the next catch-up retries it.
    pub async fn catch_up(&self) -> Result<(), FeedError> {
        let mut applied = self.applied.lock().await;
        loop {
            let read_at = Instant::now();
            let batch = self.store.changes_after(*applied, BATCH).await?;
            let Some(last) = batch.last().map(|c| c.seq) else {
                self.freshness.all_current(read_at);
                return Ok(());
            };
            if batch[0].seq > *applied + 1 && self.lost_track(*applied).await? {
                tracing::warn!(
                    applied = *applied,
                    "the change feed was pruned past this instance's position; reloading everything"
                );
                self.reload_everything().await?;
            } else {
                self.apply(&batch, read_at).await?;
            }
            *applied = last;
            self.metrics.cluster.change_feed_position.set(last);
            self.metrics
                .cluster
                .change_feed_applied
                .inc_by(batch.len() as u64);
            if (batch.len() as i64) < BATCH {
                self.freshness.all_current(read_at);
                return Ok(());
            }
        }
    }

    /// True when changes after `applied` were pruned before this instance read them (a gap
    /// left by a rolled-back transaction is not one).
    async fn lost_track(&self, applied: i64) -> Result<bool, StoreError> {
        Ok(self
            .store
            .oldest_change_seq()
            .await?
            .is_some_and(|oldest| oldest > applied + 1 && applied > 0))
    }

    /// Applies a batch read at `read_at`; each copy it refreshed is current as of then,
    /// even when a later step fails (the ages then tell which copy cannot be refreshed).
    async fn apply(&self, batch: &[Change], read_at: Instant) -> Result<(), FeedError> {
        let subjects = |topic: &str| -> Vec<&str> {
            let unique: BTreeSet<&str> = batch
                .iter()
                .filter(|c| c.topic == topic)
                .map(|c| c.subject.as_str())
                .collect();
            unique.into_iter().collect()
        };
        let touched = |topic: &str| batch.iter().any(|c| c.topic == topic);
        let t = &self.targets;
        let (agents, tokens) = (subjects("agent"), subjects("token"));
        if !agents.is_empty() || !tokens.is_empty() {
            t.mirror
                .apply_changes(&self.store, &agents, &tokens)
                .await?;
            self.freshness.current(Replica::Access, read_at);
        }
        if touched("policy") {
            t.policies.sync(&self.store).await?;
            self.freshness.current(Replica::Policies, read_at);
        }
        if touched("credential") {
            t.credentials.refresh(&self.store).await?;
            self.freshness.current(Replica::Credentials, read_at);
        }
        if touched("chaos") {
            t.chaos.load(&self.store).await?;
            self.freshness.current(Replica::Chaos, read_at);
        }
        if touched("plugin") {
            t.plugins.sync_uploads().await?;
            self.freshness.current(Replica::Plugins, read_at);
        }
        Ok(())
    }

    async fn reload_everything(&self) -> Result<(), FeedError> {
        let t = &self.targets;
        t.mirror.reload(&self.store).await?;
        t.policies.sync(&self.store).await?;
        t.credentials.refresh(&self.store).await?;
        t.chaos.load(&self.store).await?;
        t.plugins.sync_uploads().await?;
        Ok(())
    }

    /// Follows the feed until the task is aborted: woken by a notification (PostgreSQL) or
    /// by the poll interval. A failed catch-up is logged once per failure streak and
    /// retried; the last known state keeps serving meanwhile.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let feed = Arc::clone(self);
        tokio::spawn(async move {
            let interval = Self::poll_interval(feed.store.backend());
            let mut wake = wake::Wake::new(feed.store.listen_url(), interval);
            let mut last_prune = Instant::now();
            let mut failing = false;
            loop {
                wake.next().await;
                match feed.catch_up().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("change feed caught up again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "reading the change feed failed; serving the last known state and retrying");
                    }
                    Err(_) => {}
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = Instant::now();
                    if let Err(e) = feed.store.prune_changes(KEEP).await {
                        tracing::debug!(error = %e, "pruning the change feed failed");
                    }
                }
            }
        })
    }
}
