//! The `used_signatures` table: agent signatures already spent on a token request, shared
//! by every instance on the database (the replay guard).

use super::{Store, StoreError};

impl Store {
    /// Records `digest` until `expires_at_ms`; true when it was not recorded yet. An expired
    /// record of the same digest is replaced (its window has passed).
    pub async fn record_signature(
        &self,
        digest: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO used_signatures (digest, expires_at) VALUES ($1, $2) \
             ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_signatures.expires_at <= $3",
        )
        .bind(digest)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes records expired at `now_ms`, at most `batch`; returns how many went.
    pub async fn prune_signatures(&self, now_ms: i64, batch: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM used_signatures WHERE digest IN \
             (SELECT digest FROM used_signatures WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now_ms)
        .bind(batch)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
