//! The `policies` and `policy_logs` tables.

use super::{Store, StoreError};
use sqlx::{Arguments, FromRow};
use uuid::Uuid;

/// A stored policy. `spec` is the normalised PolicySpec JSON.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PolicyRow {
    /// Policy id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// The agent it applies to (exclusive with `role`).
    pub agent_id: Option<String>,
    /// The role it applies to (exclusive with `agent_id`).
    pub role: Option<String>,
    /// Normalised PolicySpec JSON.
    pub spec: String,
    /// SHA-256 of the canonical spec JSON (every nesting level counts).
    pub spec_hash: String,
    /// 1 active, 0 inactive.
    pub active: i64,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

/// Filters of a policy listing.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    /// Only this agent's policies.
    pub agent_id: Option<String>,
    /// Only this role's policies.
    pub role: Option<String>,
    /// Only active (true) or inactive (false) policies.
    pub active: Option<bool>,
}

/// A logged policy decision.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PolicyLogRow {
    /// Log id.
    pub id: String,
    /// Policy that decided, when known.
    pub policy_id: Option<String>,
    /// Agent.
    pub agent_id: String,
    /// Tool.
    pub tool: String,
    /// Action.
    pub action: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// Deny reason.
    pub reason: Option<String>,
    /// Request summary (JSON), when recorded.
    pub request_data: Option<String>,
    /// Response summary (JSON), when recorded.
    pub response_data: Option<String>,
    /// Time, unix ms.
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, name, description, agent_id, role, spec, spec_hash, active, created_at, updated_at";

/// The columns of a policy log row, in the order the writer binds them and readers list them.
const POLICY_LOG_COLUMNS: &str = "id, policy_id, agent_id, tool, action, decision, reason, \
                                  request_data, response_data, created_at";

impl Store {
    /// Inserts a policy.
    pub async fn insert_policy(&self, p: &PolicyRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO policies ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.agent_id)
        .bind(&p.role)
        .bind(&p.spec)
        .bind(&p.spec_hash)
        .bind(p.active)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces a policy's mutable fields; false when it does not exist.
    pub async fn update_policy(&self, p: &PolicyRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE policies SET name = $1, description = $2, spec = $3, spec_hash = $4, \
             active = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.spec)
        .bind(&p.spec_hash)
        .bind(p.active)
        .bind(p.updated_at)
        .bind(&p.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a policy; false when it does not exist.
    pub async fn delete_policy(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM policies WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The policy with this id.
    pub async fn policy(&self, id: &str) -> Result<Option<PolicyRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM policies WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Policies matching `filter`, oldest first.
    pub async fn list_policies(&self, filter: &PolicyFilter) -> Result<Vec<PolicyRow>, StoreError> {
        // Each optional filter is "($n IS NULL OR column = $n)", so one statement serves all.
        let active = filter.active.map(i64::from);
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM policies \
             WHERE ($1 IS NULL OR agent_id = $1) AND ($2 IS NULL OR role = $2) \
             AND ($3 IS NULL OR active = $3) ORDER BY created_at, id"
        ))
        .bind(&filter.agent_id)
        .bind(&filter.role)
        .bind(active)
        .fetch_all(self.pool())
        .await?)
    }

    /// Number of policies ever stored (to seed defaults on a first start).
    pub async fn count_policies(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM policies")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Writes rows inside the transaction `tx`, many rows per statement (the audit batch,
    /// [`Store::insert_audit_batch`], is the one caller).
    pub(super) async fn insert_policy_logs_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        rows: &[PolicyLogRow],
    ) -> Result<(), StoreError> {
        super::insert_many_in(
            self.backend(),
            tx,
            "policy_logs",
            POLICY_LOG_COLUMNS,
            rows,
            |a, r| {
                a.add(r.id.as_str())?;
                a.add(r.policy_id.as_deref())?;
                a.add(r.agent_id.as_str())?;
                a.add(r.tool.as_str())?;
                a.add(r.action.as_str())?;
                a.add(r.decision.as_str())?;
                a.add(r.reason.as_deref())?;
                a.add(r.request_data.as_deref())?;
                a.add(r.response_data.as_deref())?;
                a.add(r.created_at)
            },
        )
        .await
    }

    /// Policy decisions, newest first, by policy (preferred) or agent.
    pub async fn list_policy_logs(
        &self,
        policy_id: Option<&str>,
        agent_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PolicyLogRow>, StoreError> {
        let filter = match (policy_id, agent_id) {
            (Some(p), _) => Some(("policy_id", p)),
            (None, Some(a)) => Some(("agent_id", a)),
            (None, None) => None,
        };
        let sql = policy_logs_sql(filter.map(|(column, _)| column));
        let mut query = sqlx::query_as(&sql);
        if let Some((_, value)) = filter {
            query = query.bind(value);
        }
        let mut rows: Vec<PolicyLogRow> = query.bind(limit).fetch_all(self.pool()).await?;
        // Allows name no policy: none when listing one policy's decisions.
        if policy_id.is_none() {
            let sql = folded_allows_sql(agent_id.is_some());
            let mut query = sqlx::query_as(&sql);
            if let Some(agent) = agent_id {
                query = query.bind(agent);
            }
            let allows: Vec<PolicyLogRow> = query.bind(limit).fetch_all(self.pool()).await?;
            rows.extend(allows);
            rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            rows.truncate(limit.max(0) as usize);
        }
        Ok(rows)
    }
}

/// The allow decisions folded into request rows (`policy_decision = 'allow'`), shaped as
/// policy log rows: the row's id, no policy, the call's correlation id as `request_data`
/// (as the policy row said it). Correlation ids hold only `[A-Za-z0-9._-]`, so the JSON
/// needs no escaping. Filtered on the agent (`$1`) when `by_agent`.
fn folded_allows_sql(by_agent: bool) -> String {
    let (filter, limit) = if by_agent {
        ("AND agent_id = $1 ", "$2")
    } else {
        ("", "$1")
    };
    format!(
        "SELECT id, CAST(NULL AS TEXT) AS policy_id, COALESCE(agent_id, '') AS agent_id, tool, \
         action, 'allow' AS decision, CAST(NULL AS TEXT) AS reason, \
         '{{\"correlation_id\":\"' || correlation_id || '\"}}' AS request_data, \
         CAST(NULL AS TEXT) AS response_data, created_at \
         FROM request_logs WHERE policy_decision = 'allow' {filter}\
         ORDER BY created_at DESC, id DESC LIMIT {limit}"
    )
}

/// The listing of policy decisions, filtered on `column` (`$1`) when there is one, with the
/// limit the last parameter. A filter is written only when there is one: a condition such as
/// `$1 IS NULL OR agent_id = $1` keeps the database from using the column's index (SQLite
/// then scans every row, newest first, for the few that match).
fn policy_logs_sql(column: Option<&str>) -> String {
    let (filter, limit) = match column {
        Some(column) => (format!("WHERE {column} = $1 "), "$2"),
        None => (String::new(), "$1"),
    };
    format!(
        "SELECT {POLICY_LOG_COLUMNS} FROM policy_logs {filter}ORDER BY created_at DESC, id \
         LIMIT {limit}"
    )
}

/// A fresh policy id.
pub fn new_policy_id() -> String {
    Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How SQLite reads the policy-log listing with this filter.
    async fn sqlite_plan(store: &Store, column: Option<&str>) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {}", policy_logs_sql(column));
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
        if column.is_some() {
            query = query.bind("x");
        }
        let rows = query.bind(10_i64).fetch_all(store.pool()).await.unwrap();
        rows.into_iter()
            .map(|(_, _, _, step)| step)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn each_policy_log_listing_reads_through_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plans.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        for (column, index) in [
            (
                Some("agent_id"),
                "USING INDEX policy_logs_agent (agent_id=?)",
            ),
            (
                Some("policy_id"),
                "USING INDEX policy_logs_policy (policy_id=?)",
            ),
            (None, "USING INDEX policy_logs_created"),
        ] {
            let plan = sqlite_plan(&store, column).await;
            assert!(plan.contains(index), "{column:?}: {plan}");
        }
    }
}
