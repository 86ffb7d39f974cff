//! The `changes` table: the change feed every instance follows (rows are appended by the
//! triggers of migration 0010, never by the gateway's own queries), and the look-ups that
//! apply a batch of changes: revocations and agents by id.

use super::agents::Agent;
use super::tokens::Revocation;
use super::{Store, StoreError};
use sqlx::FromRow;

/// Ids looked up per query when a batch of changes is applied.
const IDS_PER_QUERY: usize = 200;

/// One change: which kind of state changed (`topic`) and which row (`subject`).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Change {
    /// Position in the feed; increases with commit order.
    pub seq: i64,
    /// `token`, `agent`, `policy`, `plugin`, `credential` or `chaos`.
    pub topic: String,
    /// The changed row's key (token id, agent id, policy id, plugin name, tool).
    pub subject: String,
}

/// `$1, $2, …, $n`.
pub(super) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The newest position of the feed (0 when it is empty).
    pub async fn latest_change_seq(&self) -> Result<i64, StoreError> {
        let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM changes")
            .fetch_one(self.pool())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The oldest position still in the feed (`None` when it is empty).
    pub async fn oldest_change_seq(&self) -> Result<Option<i64>, StoreError> {
        let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MIN(seq) FROM changes")
            .fetch_one(self.pool())
            .await?;
        Ok(seq)
    }

    /// At most `limit` changes after position `seq`, oldest first.
    pub async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, topic, subject FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes all but the newest `keep` changes; returns how many went. An instance that
    /// falls further behind than that reloads everything (it sees the gap).
    pub async fn prune_changes(&self, keep: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - $1")
                .bind(keep)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// The revocations, among `token_ids`, of tokens that are revoked.
    pub async fn revocations_of(&self, token_ids: &[&str]) -> Result<Vec<Revocation>, StoreError> {
        let mut out = Vec::new();
        for chunk in token_ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT token_id, expires_at FROM tokens \
                 WHERE revoked_at IS NOT NULL AND token_id IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            out.extend(super::tokens::revocations(
                query.fetch_all(self.pool()).await?,
            )?);
        }
        Ok(out)
    }

    /// The agents among `ids` (an unknown id is left out).
    pub async fn agents_by_ids(&self, ids: &[&str]) -> Result<Vec<Agent>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            out.extend(self.agents_where_id_in(chunk).await?);
        }
        Ok(out)
    }
}
