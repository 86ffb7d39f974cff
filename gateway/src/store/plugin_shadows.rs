//! The `plugin_shadows` table (one shadow candidate per uploaded binding) and
//! `plugin_shadow_disagreements` (the calls on which a candidate decided otherwise than the
//! live plugin, kept newest first within a bound per binding).

use super::{Store, StoreError};
use sqlx::FromRow;

/// Disagreements kept per binding; older ones are deleted as newer ones arrive.
pub const DISAGREEMENTS_KEPT: i64 = 1_000;

/// A stored shadow candidate.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct PluginShadow {
    /// The binding it shadows (an uploaded plugin's name).
    pub name: String,
    /// The candidate component.
    pub wasm: Vec<u8>,
    /// SHA-256 of `wasm`, hex.
    pub sha256: String,
    /// Percent of the binding's calls it judges, 0–100.
    pub percent: f64,
    /// The detached signature it was uploaded with, if any.
    pub signature: Option<String>,
    /// Upload time, unix ms.
    pub created_at: i64,
}

impl PluginShadow {
    /// The candidate without its bytes.
    pub fn version(&self) -> ShadowVersion {
        ShadowVersion {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            percent: self.percent,
            created_at: self.created_at,
        }
    }
}

/// Every stored candidate, with bytes, by name.
pub(super) const SHADOWS_SQL: &str =
    "SELECT name, wasm, sha256, percent, signature, created_at FROM plugin_shadows ORDER BY name";

/// A candidate without its bytes (for change detection and listings).
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ShadowVersion {
    /// The binding it shadows.
    pub name: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Percent of calls judged.
    pub percent: f64,
    /// Upload time, unix ms.
    pub created_at: i64,
}

/// One call on which the candidate and the live plugin decided differently.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Disagreement {
    /// The binding.
    pub name: String,
    /// The candidate that judged the call.
    pub candidate_sha256: String,
    /// When, unix ms.
    pub created_at: i64,
    /// The request's correlation id.
    pub correlation_id: String,
    /// The calling agent.
    pub agent_id: String,
    /// Tool called.
    pub tool: String,
    /// Action called.
    pub action: String,
    /// The live decision: `allow`, `deny` or `error`.
    pub live: String,
    /// The live denial's code.
    pub live_code: Option<String>,
    /// The candidate's decision: `allow`, `deny` or `error`.
    pub candidate: String,
    /// The candidate's denial code.
    pub candidate_code: Option<String>,
}

impl Store {
    /// Stores `shadow` as the candidate of its binding, replacing any earlier one (whose
    /// disagreements go with it).
    pub async fn put_plugin_shadow(&self, shadow: &PluginShadow) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM plugin_shadow_disagreements WHERE name = $1")
            .bind(&shadow.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM plugin_shadows WHERE name = $1")
            .bind(&shadow.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO plugin_shadows (name, wasm, sha256, percent, signature, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&shadow.name)
        .bind(&shadow.wasm)
        .bind(&shadow.sha256)
        .bind(shadow.percent)
        .bind(&shadow.signature)
        .bind(shadow.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every stored candidate, with bytes, by name.
    pub async fn plugin_shadows(&self) -> Result<Vec<PluginShadow>, StoreError> {
        Ok(sqlx::query_as(SHADOWS_SQL).fetch_all(self.pool()).await?)
    }

    /// Every stored candidate without its bytes, by name.
    pub async fn plugin_shadow_versions(&self) -> Result<Vec<ShadowVersion>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, sha256, percent, created_at FROM plugin_shadows ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Discards the candidate of `name` and its disagreements; false when there was none.
    pub async fn delete_plugin_shadow(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM plugin_shadow_disagreements WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM plugin_shadows WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes the candidate of `name` the binding's live version, in one transaction: it is
    /// stored as a new upload version with the live version's binding (the live one stays
    /// as the earlier version a rollback returns to), and the candidate row goes. Returns
    /// the new version, or `None` when `name` has no candidate or no live upload.
    pub async fn promote_plugin_shadow(
        &self,
        name: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let shadow: Option<PluginShadow> = sqlx::query_as(
            "SELECT name, wasm, sha256, percent, signature, created_at FROM plugin_shadows WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let live: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, binding FROM plugin_uploads WHERE name = $1 AND active = 1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let (Some(shadow), Some((_, binding))) = (shadow, live) else {
            return Ok(None);
        };
        let version = Self::append_version_in(
            &mut tx,
            name,
            &shadow.wasm,
            &shadow.sha256,
            &binding,
            shadow.signature.as_deref(),
            now_ms,
        )
        .await?;
        sqlx::query("DELETE FROM plugin_shadows WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    /// Records `rows`, then keeps only the newest [`DISAGREEMENTS_KEPT`] of each binding
    /// among them.
    pub async fn insert_shadow_disagreements(
        &self,
        rows: &[Disagreement],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO plugin_shadow_disagreements (name, candidate_sha256, created_at, \
                 correlation_id, agent_id, tool, action, live, live_code, candidate, candidate_code) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&row.name)
            .bind(&row.candidate_sha256)
            .bind(row.created_at)
            .bind(&row.correlation_id)
            .bind(&row.agent_id)
            .bind(&row.tool)
            .bind(&row.action)
            .bind(&row.live)
            .bind(&row.live_code)
            .bind(&row.candidate)
            .bind(&row.candidate_code)
            .execute(&mut *tx)
            .await?;
        }
        let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            sqlx::query(
                "DELETE FROM plugin_shadow_disagreements WHERE name = $1 AND id < \
                 (SELECT id FROM plugin_shadow_disagreements WHERE name = $1 \
                  ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(name)
            .bind(DISAGREEMENTS_KEPT - 1)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` disagreements of `name`, newest first, and how many are stored.
    pub async fn shadow_disagreements(
        &self,
        name: &str,
        limit: i64,
    ) -> Result<(Vec<Disagreement>, i64), StoreError> {
        let rows = sqlx::query_as(
            "SELECT name, candidate_sha256, created_at, correlation_id, agent_id, tool, action, \
             live, live_code, candidate, candidate_code FROM plugin_shadow_disagreements \
             WHERE name = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(name)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let (stored,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM plugin_shadow_disagreements WHERE name = $1")
                .bind(name)
                .fetch_one(self.pool())
                .await?;
        Ok((rows, stored))
    }

    /// Deletes up to `batch` disagreements older than `before_ms`; returns how many went.
    pub async fn prune_shadow_disagreements(
        &self,
        before_ms: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        super::request_logs::delete_older(
            self.pool(),
            "plugin_shadow_disagreements",
            before_ms,
            batch,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, n: i64) -> Disagreement {
        Disagreement {
            name: name.into(),
            candidate_sha256: "c".into(),
            created_at: n,
            correlation_id: format!("corr-{n}"),
            agent_id: "a".into(),
            tool: "serpapi".into(),
            action: "search".into(),
            live: "allow".into(),
            live_code: None,
            candidate: "deny".into(),
            candidate_code: Some("deny_all".into()),
        }
    }

    #[tokio::test]
    async fn each_binding_keeps_its_newest_disagreements_only() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("shadows.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let over = DISAGREEMENTS_KEPT + 30;
        for chunk in (0..over).collect::<Vec<_>>().chunks(64) {
            let rows: Vec<_> = chunk.iter().map(|n| row("guard", *n)).collect();
            store.insert_shadow_disagreements(&rows).await.unwrap();
        }
        store
            .insert_shadow_disagreements(&[row("other", 0)])
            .await
            .unwrap();
        let (newest, stored) = store.shadow_disagreements("guard", 2).await.unwrap();
        assert_eq!(stored, DISAGREEMENTS_KEPT);
        assert_eq!(newest[0].correlation_id, format!("corr-{}", over - 1));
        assert_eq!(newest[1].correlation_id, format!("corr-{}", over - 2));
        assert_eq!(store.shadow_disagreements("other", 10).await.unwrap().1, 1);
        // Pruned by age like the audit.
        assert_eq!(
            store
                .prune_shadow_disagreements(over - 10, 10_000)
                .await
                .unwrap(),
            (DISAGREEMENTS_KEPT - 10 + 1) as u64
        );
        assert_eq!(store.shadow_disagreements("guard", 1).await.unwrap().1, 10);
    }
}
