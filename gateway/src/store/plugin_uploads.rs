//! The `plugin_uploads` table: uploaded plugin versions, one active per name. A version
//! rolled back is retired (`active = -1`, its bytes kept), not deleted, so its number is
//! never handed out again: "version 3" always names one component.

use super::{Store, StoreError};
use sqlx::FromRow;

/// One uploaded version.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PluginUpload {
    /// Binding name.
    pub name: String,
    /// Version, from 1.
    pub version: i64,
    /// The component.
    pub wasm: Vec<u8>,
    /// SHA-256 of `wasm`, hex.
    pub sha256: String,
    /// The binding (JSON of the manifest entry, without `plugin`).
    pub binding: String,
    /// 1 for the live version, 0 for an earlier one, -1 for one rolled back.
    pub active: i64,
    /// Upload time, unix ms.
    pub created_at: i64,
    /// The detached signature it was uploaded with (a signature file's JSON), if any.
    pub signature: Option<String>,
}

/// What a rollback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolledBack {
    /// The version now live.
    pub live: i64,
    /// The version it replaced, now retired.
    pub retired: i64,
}

/// The active version of every uploaded plugin, with bytes, by name.
const ACTIVE_SQL: &str =
    "SELECT name, version, wasm, sha256, binding, active, created_at, signature \
     FROM plugin_uploads WHERE active = 1 ORDER BY name";
/// Every version (without bytes), by name and version.
const VERSIONS_SQL: &str =
    "SELECT name, version, sha256, active, created_at FROM plugin_uploads ORDER BY name, version";

/// The stored plugins as one read saw them ([`Store::plugin_snapshot`]).
#[derive(Debug)]
pub struct PluginSnapshot {
    /// Every version, without bytes.
    pub versions: Vec<UploadVersion>,
    /// The active versions, with bytes.
    pub uploads: Vec<PluginUpload>,
    /// The shadow candidates, with bytes.
    pub shadows: Vec<crate::store::plugin_shadows::PluginShadow>,
}

/// A version without its bytes (for listings and change detection).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct UploadVersion {
    /// Binding name.
    pub name: String,
    /// Version.
    pub version: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// 1 for the live version, 0 for an earlier one, -1 for one rolled back.
    pub active: i64,
    /// Upload time, unix ms.
    pub created_at: i64,
}

impl Store {
    /// Stores a new version of `name` (with the signature it came with) and makes it the
    /// active one; returns its version.
    pub async fn insert_plugin_upload(
        &self,
        name: &str,
        wasm: &[u8],
        sha256: &str,
        binding: &str,
        signature: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let version =
            Self::append_version_in(&mut tx, name, wasm, sha256, binding, signature, now_ms)
                .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Inside `tx`: stores the next version of `name` and makes it the active one (the one
    /// active before stays as the earlier version a rollback returns to); returns it.
    pub(super) async fn append_version_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        name: &str,
        wasm: &[u8],
        sha256: &str,
        binding: &str,
        signature: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let (latest,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM plugin_uploads WHERE name = $1")
                .bind(name)
                .fetch_one(&mut **tx)
                .await?;
        let version = latest.unwrap_or(0) + 1;
        sqlx::query("UPDATE plugin_uploads SET active = 0 WHERE name = $1 AND active = 1")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO plugin_uploads (name, version, wasm, sha256, binding, active, created_at, signature) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
        )
        .bind(name)
        .bind(version)
        .bind(wasm)
        .bind(sha256)
        .bind(binding)
        .bind(now_ms)
        .bind(signature)
        .execute(&mut **tx)
        .await?;
        Ok(version)
    }

    /// The active version of every uploaded plugin, with bytes, by name.
    pub async fn active_plugin_uploads(&self) -> Result<Vec<PluginUpload>, StoreError> {
        Ok(sqlx::query_as(ACTIVE_SQL).fetch_all(self.pool()).await?)
    }

    /// Every version without bytes, the active ones with bytes, and the shadow candidates,
    /// read from one snapshot: a reload builds from exactly the state it fingerprints, even
    /// when a rollback and its undo happen while it reads.
    pub async fn plugin_snapshot(&self) -> Result<PluginSnapshot, StoreError> {
        let mut tx = self.begin_snapshot().await?;
        let versions = sqlx::query_as(VERSIONS_SQL).fetch_all(&mut *tx).await?;
        let uploads = sqlx::query_as(ACTIVE_SQL).fetch_all(&mut *tx).await?;
        let shadows = sqlx::query_as(super::plugin_shadows::SHADOWS_SQL)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PluginSnapshot {
            versions,
            uploads,
            shadows,
        })
    }

    /// Every version (without bytes), by name and version.
    pub async fn plugin_upload_versions(&self) -> Result<Vec<UploadVersion>, StoreError> {
        Ok(sqlx::query_as(VERSIONS_SQL).fetch_all(self.pool()).await?)
    }

    /// Makes the version before the active one active and retires the active one (its
    /// bytes stay, for the record and for [`Store::undo_plugin_rollback`]); returns the
    /// version now live, or `None` when there is no earlier version (none at or above
    /// `floor`, when given), or when `expected` is given and is not the active version
    /// (another instance rolled it back already).
    pub async fn rollback_plugin_upload(
        &self,
        name: &str,
        expected: Option<i64>,
        floor: Option<i64>,
    ) -> Result<Option<RolledBack>, StoreError> {
        let mut tx = self.begin_write().await?;
        let (active,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(version) FROM plugin_uploads WHERE name = $1 AND active = 1",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let Some(active) = active.filter(|a| expected.is_none_or(|e| e == *a)) else {
            return Ok(None);
        };
        let (previous,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(version) FROM plugin_uploads \
             WHERE name = $1 AND version < $2 AND version >= $3 AND active = 0",
        )
        .bind(name)
        .bind(active)
        .bind(floor.unwrap_or(i64::MIN))
        .fetch_one(&mut *tx)
        .await?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        // The rolled-back version is retired, so that a second rollback goes further back and
        // its number is never reused.
        sqlx::query("UPDATE plugin_uploads SET active = -1 WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(active)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE plugin_uploads SET active = 1 WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(previous)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(RolledBack {
            live: previous,
            retired: active,
        }))
    }

    /// Undoes the rollback that gave `rolled_back`: its retired version is the active one
    /// again and the one it brought back an earlier one, as before; false when the versions
    /// changed since (nothing is done then).
    pub async fn undo_plugin_rollback(
        &self,
        name: &str,
        rolled_back: RolledBack,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let live = sqlx::query(
            "UPDATE plugin_uploads SET active = 0 WHERE name = $1 AND version = $2 AND active = 1",
        )
        .bind(name)
        .bind(rolled_back.live)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let retired = sqlx::query(
            "UPDATE plugin_uploads SET active = 1 WHERE name = $1 AND version = $2 AND active = -1",
        )
        .bind(name)
        .bind(rolled_back.retired)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if (live, retired) != (1, 1) {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The signatures (JSON) every stored version of `name` came with, retired ones too.
    pub async fn plugin_upload_signatures(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT signature FROM plugin_uploads WHERE name = $1 AND signature IS NOT NULL",
        )
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Deletes every version of `name`, and its shadow candidate with its disagreements;
    /// false when there was no version.
    pub async fn delete_plugin_uploads(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        for table in ["plugin_shadow_disagreements", "plugin_shadows"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE name = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM plugin_uploads WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
