//! The `tokens` table: one row per issued token, the record behind revocation.

use super::{Store, StoreError};
use crate::crypto::token::Claims;
use sqlx::FromRow;
use uuid::Uuid;

/// An issued token as stored (its claims, never the token string itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Token id (`jti`).
    pub token_id: Uuid,
    /// The agent it was issued to.
    pub agent_id: Uuid,
    /// Its claims.
    pub claims: Claims,
    /// Issue time, unix ms.
    pub issued_at: i64,
    /// Expiry, unix ms.
    pub expires_at: i64,
    /// Revocation time, unix ms.
    pub revoked_at: Option<i64>,
}

/// A revoked token that has not expired yet: what the revocation mirror holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Token id.
    pub token_id: Uuid,
    /// Expiry, unix ms (after it, the entry can be dropped).
    pub expires_at: i64,
}

#[derive(FromRow)]
struct TokenRow {
    token_id: String,
    agent_id: String,
    claims: String,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

fn corrupt(detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table: "tokens",
        detail: detail.to_string(),
    }
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            token_id: Uuid::parse_str(&r.token_id).map_err(corrupt)?,
            agent_id: Uuid::parse_str(&r.agent_id).map_err(corrupt)?,
            claims: serde_json::from_str(&r.claims).map_err(corrupt)?,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

const COLUMNS: &str = "token_id, agent_id, claims, issued_at, expires_at, revoked_at";

impl Store {
    /// Records an issued token.
    pub async fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let claims = serde_json::to_string(&record.claims).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO tokens (token_id, agent_id, claims, issued_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.token_id.to_string())
        .bind(record.agent_id.to_string())
        .bind(claims)
        .bind(record.issued_at)
        .bind(record.expires_at)
        .bind(record.revoked_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The token with this id, if any.
    pub async fn token(&self, token_id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE token_id = $1"))
                .bind(token_id.to_string())
                .fetch_optional(self.pool())
                .await?;
        row.map(TokenRecord::try_from).transpose()
    }

    /// Newest tokens first, optionally of one agent, `limit` at most.
    pub async fn list_tokens(
        &self,
        agent_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let query = match agent_id {
            Some(_) => format!(
                "SELECT {COLUMNS} FROM tokens WHERE agent_id = $1 ORDER BY issued_at DESC, token_id LIMIT $2"
            ),
            None => format!("SELECT {COLUMNS} FROM tokens ORDER BY issued_at DESC, token_id LIMIT $1"),
        };
        let mut q = sqlx::query_as::<_, TokenRow>(&query);
        if let Some(agent) = agent_id {
            q = q.bind(agent.to_string());
        }
        let rows = q.bind(limit).fetch_all(self.pool()).await?;
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    /// Marks a token revoked (keeping the first revocation time when already revoked).
    /// Returns the record, or `None` when no such token exists.
    pub async fn revoke_token(
        &self,
        token_id: Uuid,
        now_ms: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL")
            .bind(now_ms)
            .bind(token_id.to_string())
            .execute(self.pool())
            .await?;
        self.token(token_id).await
    }

    /// Revokes every token of `agent_id` that is neither revoked nor expired at `now_ms`;
    /// returns them.
    pub async fn revoke_agent_tokens(
        &self,
        agent_id: Uuid,
        now_ms: i64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE tokens SET revoked_at = $1 \
             WHERE agent_id = $2 AND revoked_at IS NULL AND expires_at > $3 \
             RETURNING token_id, expires_at",
        )
        .bind(now_ms)
        .bind(agent_id.to_string())
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        revocations(rows)
    }

    /// Every revoked token that expires after `now_ms`; loads the in-memory mirror.
    pub async fn live_revocations(&self, now_ms: i64) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT token_id, expires_at FROM tokens \
             WHERE revoked_at IS NOT NULL AND expires_at > $1",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        revocations(rows)
    }
}

/// Revocations from `(token_id, expires_at)` rows.
pub(super) fn revocations(rows: Vec<(String, i64)>) -> Result<Vec<Revocation>, StoreError> {
    rows.into_iter()
        .map(|(id, expires_at)| {
            Ok(Revocation {
                token_id: Uuid::parse_str(&id).map_err(corrupt)?,
                expires_at,
            })
        })
        .collect()
}
