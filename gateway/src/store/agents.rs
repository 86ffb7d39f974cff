//! The `agents` table.

use super::{Store, StoreError};
use gateway_wire::MintScope;
use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

/// Whether an agent may obtain and use tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// May obtain and use tokens.
    Active,
    /// Its tokens are refused until it is made active again.
    Suspended,
}

impl AgentStatus {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(AgentStatus::Active),
            "suspended" => Ok(AgentStatus::Suspended),
            other => Err(StoreError::Corrupt {
                table: "agents",
                detail: format!("status {other:?}"),
            }),
        }
    }
}

/// An agent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Agent id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Role, which selects the role policies.
    pub role: String,
    /// Who created it.
    pub created_by: String,
    /// SPKI PEM public key, used to verify the agent's request signatures.
    pub public_key: String,
    /// Current status.
    pub status: AgentStatus,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// The most its tokens may grant, as the operator set it (`None`: from its role; see
    /// [`Agent::mint_scope`]).
    pub max_scope: Option<MintScope>,
}

impl Agent {
    /// The most this agent's tokens may grant: the operator's scope, or its role's.
    pub fn mint_scope(&self) -> MintScope {
        self.max_scope
            .clone()
            .unwrap_or_else(|| MintScope::for_role(&self.role))
    }
}

#[derive(FromRow)]
struct AgentRow {
    id: String,
    name: String,
    role: String,
    created_by: String,
    public_key: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    max_scope: Option<String>,
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;
    fn try_from(r: AgentRow) -> Result<Self, StoreError> {
        Ok(Agent {
            id: Uuid::parse_str(&r.id).map_err(|e| StoreError::Corrupt {
                table: "agents",
                detail: e.to_string(),
            })?,
            name: r.name,
            role: r.role,
            created_by: r.created_by,
            public_key: r.public_key,
            status: AgentStatus::parse(&r.status)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
            max_scope: r
                .max_scope
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    table: "agents",
                    detail: format!("max_scope: {e}"),
                })?,
        })
    }
}

const COLUMNS: &str =
    "id, name, role, created_by, public_key, status, created_at, updated_at, max_scope";

impl Store {
    /// Inserts a new agent.
    pub async fn insert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agents (id, name, role, created_by, public_key, status, created_at, updated_at, max_scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(agent.id.to_string())
        .bind(&agent.name)
        .bind(&agent.role)
        .bind(&agent.created_by)
        .bind(&agent.public_key)
        .bind(agent.status.as_str())
        .bind(agent.created_at)
        .bind(agent.updated_at)
        .bind(scope_text(agent.max_scope.as_ref()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The agent with this id, if any.
    pub async fn agent(&self, id: Uuid) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM agents WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        row.map(Agent::try_from).transpose()
    }

    /// Agents in creation order, `limit` at most, after skipping `offset`.
    pub async fn list_agents(&self, limit: i64, offset: i64) -> Result<Vec<Agent>, StoreError> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM agents ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    /// Every agent; loads the in-memory mirror.
    pub async fn all_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM agents"))
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    /// The agents among `ids` (at most a few hundred; see `agents_by_ids`).
    pub(super) async fn agents_where_id_in(&self, ids: &[&str]) -> Result<Vec<Agent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM agents WHERE id IN ({})",
            super::changes::placeholders(ids.len())
        );
        let mut query = sqlx::query_as::<_, AgentRow>(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    /// Sets an agent's maximum token scope (`None`: back to its role's); returns the updated
    /// agent, or `None` when it does not exist.
    pub async fn set_agent_max_scope(
        &self,
        id: Uuid,
        max_scope: Option<&MintScope>,
        now_ms: i64,
    ) -> Result<Option<Agent>, StoreError> {
        self.set_agent_column(id, AgentColumn::MaxScope, scope_text(max_scope), now_ms)
            .await
    }

    /// Sets an agent's status; returns the updated agent, or `None` when it does not exist.
    pub async fn set_agent_status(
        &self,
        id: Uuid,
        status: AgentStatus,
        now_ms: i64,
    ) -> Result<Option<Agent>, StoreError> {
        let status = Some(status.as_str().to_string());
        self.set_agent_column(id, AgentColumn::Status, status, now_ms)
            .await
    }

    /// Sets one column of an agent and its change time; returns the updated agent, or
    /// `None` when it does not exist.
    async fn set_agent_column(
        &self,
        id: Uuid,
        column: AgentColumn,
        value: Option<String>,
        now_ms: i64,
    ) -> Result<Option<Agent>, StoreError> {
        let name = match column {
            AgentColumn::Status => "status",
            AgentColumn::MaxScope => "max_scope",
        };
        let done = sqlx::query(&format!(
            "UPDATE agents SET {name} = $1, updated_at = $2 WHERE id = $3"
        ))
        .bind(value)
        .bind(now_ms)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.agent(id).await
    }
}

/// The columns of an agent that change after its creation.
#[derive(Debug, Clone, Copy)]
enum AgentColumn {
    Status,
    MaxScope,
}

/// The stored form of a scope.
fn scope_text(scope: Option<&MintScope>) -> Option<String> {
    // Invariant: a scope is plain lists and a number; it always serialises.
    scope.map(|s| serde_json::to_string(s).expect("a scope serialises"))
}
