//! The `request_logs` table: one row per proxy request, written in batches by the audit
//! queue.

use super::{Store, StoreError};
use sqlx::{Arguments, FromRow};

/// One proxy request's outcome.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RequestLogRow {
    /// Row id.
    pub id: String,
    /// Correlation id (also in the `X-Correlation-Id` header).
    pub correlation_id: String,
    /// Agent, when the token named one.
    pub agent_id: Option<String>,
    /// Tool asked for.
    pub tool: String,
    /// Action asked for.
    pub action: String,
    /// HTTP status answered.
    pub status_code: i64,
    /// 1 when the status was 2xx.
    pub success: i64,
    /// Stable error code, when the request failed.
    pub error_code: Option<String>,
    /// Time spent in the gateway, ms.
    pub response_time_ms: f64,
    /// 1 when served from the cache.
    pub cached: i64,
    /// `allow`, `deny`, `error`, or none when the request stopped before the policies.
    pub policy_decision: Option<String>,
    /// Chaos fault injected, when one was.
    pub chaos_fault: Option<String>,
    /// The share of calls like this one kept (`AUDIT_SAMPLE_ALLOWED`) when the row was
    /// sampled: it stands for about `1 / sample_rate` calls. `None`: every such call is kept.
    pub sample_rate: Option<f64>,
    /// Time, unix ms.
    pub created_at: i64,
}

const COLUMNS: &str = "id, correlation_id, agent_id, tool, action, status_code, success, \
                       error_code, response_time_ms, cached, policy_decision, chaos_fault, \
                       sample_rate, created_at";

impl Store {
    /// Writes rows inside the transaction `tx`, many rows per statement (the audit batch,
    /// [`Store::insert_audit_batch`], is the one caller).
    pub(super) async fn insert_request_logs_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        rows: &[RequestLogRow],
    ) -> Result<(), StoreError> {
        super::insert_many_in(self.backend(), tx, "request_logs", COLUMNS, rows, |a, r| {
            a.add(r.id.as_str())?;
            a.add(r.correlation_id.as_str())?;
            a.add(r.agent_id.as_deref())?;
            a.add(r.tool.as_str())?;
            a.add(r.action.as_str())?;
            a.add(r.status_code)?;
            a.add(r.success)?;
            a.add(r.error_code.as_deref())?;
            a.add(r.response_time_ms)?;
            a.add(r.cached)?;
            a.add(r.policy_decision.as_deref())?;
            a.add(r.chaos_fault.as_deref())?;
            a.add(r.sample_rate)?;
            a.add(r.created_at)
        })
        .await
    }

    /// The newest `limit` rows, newest first.
    pub async fn list_request_logs(&self, limit: i64) -> Result<Vec<RequestLogRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM request_logs ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The rows of one agent's calls with `correlation_id` since `since_ms`, newest first: a
    /// correlation id is the client's to choose, so it names calls only within one agent
    /// (another agent sending the same id never joins them). Reads the rows since `since_ms`
    /// through the primary key's time order, and no further back.
    pub async fn list_request_logs_of_correlation(
        &self,
        agent_id: &str,
        correlation_id: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<RequestLogRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM request_logs \
             WHERE created_at >= $1 AND agent_id = $2 AND correlation_id = $3 \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(since_ms)
        .bind(agent_id)
        .bind(correlation_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes up to `batch` request and policy log rows older than `before_ms`; returns how
    /// many went. The request rows go in one transaction with the change of their total.
    pub async fn prune_audit(&self, before_ms: i64, batch: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let requests = delete_older(&mut *tx, "request_logs", before_ms, batch).await?;
        if requests > 0 {
            Self::add_to_request_log_total_in(&mut tx, -(requests as i64)).await?;
        }
        tx.commit().await?;
        let decisions = delete_older(self.pool(), "policy_logs", before_ms, batch).await?;
        Ok(requests + decisions)
    }

    /// Adds `change` to the request log's row total, inside the transaction that adds or
    /// deletes those rows.
    pub(super) async fn add_to_request_log_total_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        change: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE audit_totals SET row_count = row_count + $1 WHERE table_name = 'request_logs'",
        )
        .bind(change)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Rows in the request log, as kept by the writes (no scan of the table: what
    /// `GET /api/proxy/logs` answers as its total).
    pub async fn request_log_total(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT row_count FROM audit_totals WHERE table_name = 'request_logs'")
                .fetch_one(self.pool())
                .await?;
        Ok(n)
    }

    /// Rows in the table, counted (a scan of the table: for checks, not for requests).
    pub async fn count_request_logs(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM request_logs")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }
}

/// Deletes up to `batch` rows of `table` older than `before_ms`, oldest first; returns how
/// many went. Rows are named by `(created_at, id)`, the request log's primary key (it has
/// no index on `id` alone).
pub(super) async fn delete_older<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    table: &str,
    before_ms: i64,
    batch: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query(&format!(
        "DELETE FROM {table} WHERE (created_at, id) IN \
         (SELECT created_at, id FROM {table} WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
    ))
    .bind(before_ms)
    .bind(batch)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}
