//! The `chaos_rules` table: the fault rules of the `chaos` plugin by tool, shared by every
//! instance on the database and kept across restarts.

use super::{Store, StoreError};
use gateway_wire::ChaosRule;

type RuleRow = (String, String, f64, i64, i64);

impl Store {
    /// Every rule, by tool.
    pub async fn chaos_rules(&self) -> Result<Vec<(String, ChaosRule)>, StoreError> {
        let rows: Vec<RuleRow> =
            sqlx::query_as("SELECT tool, mode, pct, min_ms, max_ms FROM chaos_rules ORDER BY tool")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(tool, mode, pct, min_ms, max_ms)| {
                let delay = |ms: i64| {
                    u32::try_from(ms).map_err(|_| StoreError::Corrupt {
                        table: "chaos_rules",
                        detail: format!("delay {ms} ms out of range"),
                    })
                };
                let rule = ChaosRule {
                    mode,
                    pct,
                    min_ms: delay(min_ms)?,
                    max_ms: delay(max_ms)?,
                };
                Ok((tool, rule))
            })
            .collect()
    }

    /// Sets the rule of `tool`, replacing any; with `only_if_absent`, keeps an existing one.
    pub async fn put_chaos_rule(
        &self,
        tool: &str,
        rule: &ChaosRule,
        only_if_absent: bool,
    ) -> Result<(), StoreError> {
        let on_conflict = if only_if_absent {
            "DO NOTHING"
        } else {
            "DO UPDATE SET mode = excluded.mode, pct = excluded.pct, \
             min_ms = excluded.min_ms, max_ms = excluded.max_ms"
        };
        sqlx::query(&format!(
            "INSERT INTO chaos_rules (tool, mode, pct, min_ms, max_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tool) {on_conflict}"
        ))
        .bind(tool)
        .bind(&rule.mode)
        .bind(rule.pct)
        .bind(i64::from(rule.min_ms))
        .bind(i64::from(rule.max_ms))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes the rule of `tool`; true when there was one.
    pub async fn delete_chaos_rule(&self, tool: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM chaos_rules WHERE tool = $1")
            .bind(tool)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
