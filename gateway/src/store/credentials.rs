//! The `tool_credentials` table: envelope-encrypted tool credentials, one active per tool.

use super::{Store, StoreError};
use sqlx::FromRow;

/// A stored credential. `credential` and `metadata` are sealed envelopes (JSON).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CredentialRow {
    /// Id.
    pub id: String,
    /// Tool it unlocks.
    pub tool: String,
    /// Caller-chosen version label (unique per tool).
    pub version: String,
    /// 1 for the tool's active credential.
    pub is_active: i64,
    /// Sealed credential.
    pub credential: String,
    /// Sealed metadata, when given.
    pub metadata: Option<String>,
    /// Creation, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// Last activation, unix ms.
    pub activated_at: Option<i64>,
    /// Last deactivation, unix ms.
    pub deactivated_at: Option<i64>,
}

const COLUMNS: &str = "id, tool, version, is_active, credential, metadata, created_at, \
                       updated_at, activated_at, deactivated_at";

impl Store {
    /// Inserts a credential (inactive). Returns false when the tool already has `version`.
    pub async fn insert_credential(&self, row: &CredentialRow) -> Result<bool, StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO tool_credentials ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (tool, version) DO NOTHING"
        ))
        .bind(&row.id)
        .bind(&row.tool)
        .bind(&row.version)
        .bind(row.is_active)
        .bind(&row.credential)
        .bind(&row.metadata)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.activated_at)
        .bind(row.deactivated_at)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Makes `id` its tool's only active credential; returns the updated row.
    pub async fn activate_credential(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<CredentialRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query_as::<_, CredentialRow>(&format!(
            "SELECT {COLUMNS} FROM tool_credentials WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE tool_credentials SET is_active = 0, deactivated_at = $1, updated_at = $1 \
             WHERE tool = $2 AND is_active = 1 AND id <> $3",
        )
        .bind(now_ms)
        .bind(&row.tool)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tool_credentials SET is_active = 1, activated_at = $1, updated_at = $1 WHERE id = $2",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let updated = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tool_credentials WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Credentials, newest first: every one, or one tool's.
    pub async fn list_credentials(
        &self,
        tool: Option<&str>,
    ) -> Result<Vec<CredentialRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tool_credentials WHERE ($1 IS NULL OR tool = $1) \
             ORDER BY created_at DESC, id"
        ))
        .bind(tool)
        .fetch_all(self.pool())
        .await?)
    }

    /// The active credential of every tool.
    pub async fn active_credentials(&self) -> Result<Vec<CredentialRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tool_credentials WHERE is_active = 1"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a credential; false when there was none.
    pub async fn delete_credential(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM tool_credentials WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }
}
