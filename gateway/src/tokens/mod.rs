//! Token issue and validation: the domain behind generate-token, introspection, and (later)
//! every proxied request.
//!
//! Validation costs at most one AES-GCM open and two in-memory look-ups; no RSA operation
//! and no database query happen on that path (except a one-off look-up of an agent the
//! mirror has not seen yet, which a sealed token can only name if the agent exists). An
//! agent sends the same token many times, so the claims of tokens that opened are kept in a
//! bounded cache keyed by the whole token text: a repeat skips the open (base64, AES-GCM,
//! JSON), never the expiry, revocation and agent checks.

pub mod mirror;

use crate::catalog::{Permission, ToolName};
use crate::crypto::token::{Claims, OpenError, TokenSealer};
use crate::metrics::Metrics;
use crate::store::agents::{Agent, AgentStatus};
use crate::store::tokens::{Revocation, TokenRecord};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use mirror::AccessMirror;
use moka::future::Cache;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Under this much remaining lifetime, responses advise the agent to rotate its token.
pub const ROTATION_ADVICE_SECS: i64 = 300;

/// Most opened tokens whose claims are kept.
const OPENED_CAPACITY: u64 = 10_000;
/// An opened token unused this long leaves the cache.
const OPENED_IDLE: Duration = Duration::from_secs(600);

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a token of this gateway's shape.
    #[error("malformed token")]
    Malformed,
    /// Tampered with or forged.
    #[error("token seal does not verify")]
    BadSeal,
    /// Sealed under a key this gateway does not hold.
    #[error("unknown token key")]
    UnknownKey,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Revoked by an administrator.
    #[error("token revoked")]
    Revoked,
    /// Its agent is suspended.
    #[error("agent is not active")]
    AgentNotActive,
    /// Its agent is not in this gateway's database: sealed by a gateway with the same
    /// secret and another database, or the agent was deleted. Told to callers as a forged
    /// token is, so that the answer does not confirm that the seal held.
    #[error("agent is unknown")]
    UnknownAgent,
}

impl Rejection {
    /// Every reason, for series created at zero.
    pub const ALL: [Rejection; 7] = [
        Rejection::Malformed,
        Rejection::BadSeal,
        Rejection::UnknownKey,
        Rejection::Expired,
        Rejection::Revoked,
        Rejection::AgentNotActive,
        Rejection::UnknownAgent,
    ];

    /// Metric label and internal name of the reason.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::BadSeal => "bad_seal",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Expired => "expired",
            Rejection::Revoked => "revoked",
            Rejection::AgentNotActive => "agent_not_active",
            Rejection::UnknownAgent => "unknown_agent",
        }
    }

    /// The reason as told to callers: the three cryptographic failures and an unknown agent
    /// are one `invalid`, so that a caller learns nothing about which check a forged token
    /// failed.
    pub fn public_reason(self) -> &'static str {
        match self {
            Rejection::Malformed
            | Rejection::BadSeal
            | Rejection::UnknownKey
            | Rejection::UnknownAgent => "invalid",
            other => other.label(),
        }
    }
}

impl From<OpenError> for Rejection {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Malformed => Rejection::Malformed,
            OpenError::BadSeal => Rejection::BadSeal,
            OpenError::UnknownKey => Rejection::UnknownKey,
        }
    }
}

/// A token just issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The opaque token string for the agent.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
}

/// Issues and validates tokens.
pub struct TokenService {
    sealer: TokenSealer,
    /// Claims of tokens that opened, by token text.
    opened: Cache<String, Arc<Claims>>,
    mirror: Arc<AccessMirror>,
    store: Store,
    metrics: Arc<Metrics>,
}

impl TokenService {
    /// A service over the given sealer, mirror and store.
    pub fn new(
        sealer: TokenSealer,
        mirror: Arc<AccessMirror>,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Self {
        // Every result exists from the start, so that a rate of failures reads 0, not nothing.
        for label in std::iter::once("valid").chain(Rejection::ALL.map(Rejection::label)) {
            metrics.token_validations.with_label_values(&[label]);
        }
        Self {
            sealer,
            opened: Cache::builder()
                .max_capacity(OPENED_CAPACITY)
                .time_to_idle(OPENED_IDLE)
                .build(),
            mirror,
            store,
            metrics,
        }
    }

    /// Issues a token for `agent`, records it, and returns it.
    pub async fn issue(
        &self,
        agent: &Agent,
        tools: Vec<ToolName>,
        permissions: Vec<Permission>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedToken, StoreError> {
        let claims = Claims {
            jti: Uuid::new_v4(),
            sub: agent.id,
            name: agent.name.clone(),
            role: agent.role.clone(),
            tools,
            permissions,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        self.store
            .insert_token(&TokenRecord {
                token_id: claims.jti,
                agent_id: agent.id,
                claims: claims.clone(),
                issued_at: now.timestamp_millis(),
                expires_at: expires_at.timestamp_millis(),
                revoked_at: None,
            })
            .await?;
        self.metrics.token_generations.inc();
        Ok(IssuedToken {
            token: self.sealer.seal(&claims),
            claims,
        })
    }

    /// Validates a token at time `now`: seal, expiry, revocation, agent status.
    pub async fn validate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Claims>, Rejection> {
        let verdict = self.check(token, now).await;
        let label = match &verdict {
            Ok(_) => "valid",
            Err(r) => r.label(),
        };
        self.metrics
            .token_validations
            .with_label_values(&[label])
            .inc();
        if verdict == Err(Rejection::Expired) {
            self.metrics.token_expirations.inc();
        }
        verdict
    }

    async fn check(&self, token: &str, now: DateTime<Utc>) -> Result<Arc<Claims>, Rejection> {
        let claims = self.open(token).await?;
        if claims.exp <= now.timestamp() {
            return Err(Rejection::Expired);
        }
        if self.mirror.is_revoked(&claims.jti) {
            return Err(Rejection::Revoked);
        }
        let status = match self.mirror.agent(&claims.sub) {
            Some(access) => access.status,
            None => self.agent_status_from_store(claims.sub).await?,
        };
        if status != AgentStatus::Active {
            return Err(Rejection::AgentNotActive);
        }
        Ok(claims)
    }

    /// The token's claims: from the cache of opened tokens, else opened (and then cached).
    async fn open(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        if let Some(claims) = self.opened.get(token).await {
            return Ok(claims);
        }
        let claims = Arc::new(self.sealer.open(token)?);
        self.opened
            .insert(token.to_owned(), Arc::clone(&claims))
            .await;
        Ok(claims)
    }

    /// One-off look-up of an agent created on another instance since the last refresh.
    /// Fails closed: a storage error counts as "not active".
    async fn agent_status_from_store(&self, id: Uuid) -> Result<AgentStatus, Rejection> {
        match self.store.agent(id).await {
            Ok(Some(agent)) => {
                self.mirror.record_agent(&agent);
                Ok(agent.status)
            }
            Ok(None) => Err(Rejection::UnknownAgent),
            Err(e) => {
                tracing::error!(error = %e, "agent look-up during token validation failed");
                Ok(AgentStatus::Suspended)
            }
        }
    }

    /// Revokes a token; returns its record, or `None` when no such token was issued.
    pub async fn revoke(
        &self,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let record = self
            .store
            .revoke_token(token_id, now.timestamp_millis())
            .await?;
        if let Some(r) = &record {
            self.mirror.record_revocation(Revocation {
                token_id: r.token_id,
                expires_at: r.expires_at,
            });
        }
        Ok(record)
    }
}

/// True when the token has less than [`ROTATION_ADVICE_SECS`] left.
pub fn rotation_recommended(claims: &Claims, now: DateTime<Utc>) -> bool {
    claims.exp - now.timestamp() < ROTATION_ADVICE_SECS
}
