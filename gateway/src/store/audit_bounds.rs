//! What keeps the audit log bounded by rows as well as by age, and the cheap readings that
//! show it: rows kept, the oldest row's time, and the bytes the audit occupies. None of
//! them scans the tables (the row total is kept by the writes; the oldest row is the first
//! of the primary key; sizes come from the database's page counts or relation sizes).

use super::request_logs::delete_older;
use super::{Backend, Store, StoreError};

/// What one pruning pass by row count removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Request rows deleted.
    pub requests: u64,
    /// Policy rows deleted (those older than the oldest request row kept).
    pub decisions: u64,
}

impl Store {
    /// Deletes request rows past `max_rows`, at most `batch` of them in one transaction
    /// (with the row total): the oldest anonymous rows first (calls refused before their agent
    /// was known), and the oldest authenticated ones only when no anonymous row is left; then
    /// the policy rows older than the oldest request row kept (at most `batch`), so both
    /// tables cover the same span of time. So a flood of anonymous refusals, however large,
    /// never pushes an authenticated call's row out.
    pub async fn prune_audit_over(&self, max_rows: i64, batch: i64) -> Result<Pruned, StoreError> {
        let excess = (self.request_log_total().await? - max_rows).min(batch);
        let mut pruned = Pruned::default();
        if excess > 0 {
            let mut tx = self.begin_write().await?;
            let anonymous = sqlx::query(
                "DELETE FROM request_logs WHERE (created_at, id) IN \
                 (SELECT created_at, id FROM request_logs WHERE agent_id IS NULL \
                  ORDER BY created_at LIMIT $1)",
            )
            .bind(excess)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let rest = excess - anonymous as i64;
            let authenticated = if rest > 0 {
                // The oldest rows left, whatever their time.
                delete_older(&mut *tx, "request_logs", i64::MAX, rest).await?
            } else {
                0
            };
            let deleted = anonymous + authenticated;
            Self::add_to_request_log_total_in(&mut tx, -(deleted as i64)).await?;
            tx.commit().await?;
            pruned.requests = deleted;
        }
        if let Some(oldest) = self.oldest_request_log_ms().await? {
            pruned.decisions = delete_older(self.pool(), "policy_logs", oldest, batch).await?;
        }
        Ok(pruned)
    }

    /// When the oldest request row was written (unix ms), if there is one.
    pub async fn oldest_request_log_ms(&self) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT created_at FROM request_logs ORDER BY created_at, id LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(at,)| at))
    }

    /// Bytes the audit occupies, read cheaply: on SQLite the database's pages in use (the
    /// audit log is nearly all of it; freed pages are not counted), on PostgreSQL the audit
    /// tables' partitions with their indexes (space freed by deletes is reused by later rows,
    /// not returned to the system, until a `VACUUM FULL` or a dropped partition).
    pub async fn audit_bytes(&self) -> Result<i64, StoreError> {
        match self.backend() {
            Backend::Sqlite => {
                let (bytes,): (i64,) = sqlx::query_as(
                    "SELECT (p.page_count - f.freelist_count) * s.page_size \
                     FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
                )
                .fetch_one(self.pool())
                .await?;
                Ok(bytes)
            }
            Backend::Postgres => {
                // Partitioned tables store nothing themselves: their partitions do.
                let (bytes,): (i64,) = sqlx::query_as(
                    "SELECT COALESCE(SUM(pg_total_relation_size(t.relid)), 0)::bigint FROM \
                     (SELECT relid FROM pg_partition_tree('request_logs') \
                      UNION ALL SELECT relid FROM pg_partition_tree('policy_logs')) t",
                )
                .fetch_one(self.pool())
                .await?;
                Ok(bytes)
            }
        }
    }
}
