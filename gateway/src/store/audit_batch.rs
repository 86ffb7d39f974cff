//! One audit batch (`request_logs` and `policy_logs` rows) written in one transaction:
//! one commit, one set of WAL frames, per batch instead of one per table; the request log's
//! row total (`audit_totals`) moves in the same transaction.

use super::policies::PolicyLogRow;
use super::request_logs::RequestLogRow;
use super::{Store, StoreError};

impl Store {
    /// Writes one audit batch, both tables, in one transaction.
    pub async fn insert_audit_batch(
        &self,
        requests: &[RequestLogRow],
        policies: &[PolicyLogRow],
    ) -> Result<(), StoreError> {
        if requests.is_empty() && policies.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        if !requests.is_empty() {
            self.insert_request_logs_in(&mut tx, requests).await?;
        }
        if !policies.is_empty() {
            self.insert_policy_logs_in(&mut tx, policies).await?;
        }
        // Last before the commit: on PostgreSQL the total's row stays locked (other
        // instances' batches wait for it) only from here to the commit.
        if !requests.is_empty() {
            Self::add_to_request_log_total_in(&mut tx, requests.len() as i64).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
