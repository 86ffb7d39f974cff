//! PostgreSQL only: the audit tables' daily partitions (migration 0016). Each UTC day has a
//! partition `<table>_pYYYYMMDD` covering `[day start, next day start)` in unix ms;
//! [`Store::ensure_partitions`] creates today's and the next days' ahead of time, and
//! [`Store::drop_partitions_before`] drops whole days past the retention. Rows no daily
//! partition covers land in `<table>_default` (rows from before the migration, or a day
//! whose partition could not be created), which row-by-row pruning empties in time.

use super::{Backend, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};

/// The partitioned tables.
const TABLES: [&str; 2] = ["request_logs", "policy_logs"];
/// Days ahead of today whose partitions exist.
pub const DAYS_AHEAD: i64 = 2;
const DAY_MS: i64 = 86_400_000;
/// The advisory lock under which partitions are created and dropped: every instance runs
/// the same passes, and one at a time changes the partitions.
const PARTITION_LOCK: i64 = 0x4155_4449_5450_4152; // "AUDITPAR"

/// A daily partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyPartition {
    /// Its table (`request_logs`, `policy_logs`).
    pub table: String,
    /// Its name.
    pub name: String,
    /// The first ms it covers (midnight UTC).
    pub from_ms: i64,
}

/// Midnight UTC of the day of `ms`.
fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

fn partition_name(table: &str, from_ms: i64) -> String {
    let day = DateTime::<Utc>::from_timestamp_millis(from_ms)
        .unwrap_or_default()
        .format("%Y%m%d");
    format!("{table}_p{day}")
}

/// The day a partition name stands for, if it is a daily partition of `table`.
fn parse_day(table: &str, name: &str) -> Option<i64> {
    let day = name.strip_prefix(table)?.strip_prefix("_p")?;
    let date = NaiveDate::parse_from_str(day, "%Y%m%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

impl Store {
    /// The daily partitions of the audit tables, oldest first (none on SQLite).
    pub async fn daily_partitions(&self) -> Result<Vec<DailyPartition>, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.relname::text, c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relnamespace = current_schema()::regnamespace \
               AND p.relname IN ('request_logs', 'policy_logs')",
        )
        .fetch_all(self.pool())
        .await?;
        let mut days: Vec<DailyPartition> = rows
            .into_iter()
            .filter_map(|(table, name)| {
                let from_ms = parse_day(&table, &name)?;
                Some(DailyPartition {
                    table,
                    name,
                    from_ms,
                })
            })
            .collect();
        days.sort_by(|a, b| a.from_ms.cmp(&b.from_ms).then(a.name.cmp(&b.name)));
        Ok(days)
    }

    /// Creates the partitions of the day of `now_ms` and the [`DAYS_AHEAD`] days after it,
    /// where missing, moving any of their rows out of the default partition (all in one
    /// transaction per partition); returns how many were created. Nothing on SQLite.
    pub async fn ensure_partitions(&self, now_ms: i64) -> Result<usize, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(0);
        }
        let existing = self.daily_partitions().await?;
        let mut created = 0;
        for table in TABLES {
            for ahead in 0..=DAYS_AHEAD {
                let from_ms = day_start(now_ms) + ahead * DAY_MS;
                let name = partition_name(table, from_ms);
                if existing.iter().any(|p| p.name == name) {
                    continue;
                }
                if self.create_partition(table, &name, from_ms).await? {
                    created += 1;
                }
            }
        }
        Ok(created)
    }

    /// Creates one partition; false when another instance did first.
    async fn create_partition(
        &self,
        table: &str,
        name: &str,
        from_ms: i64,
    ) -> Result<bool, StoreError> {
        let to_ms = from_ms + DAY_MS;
        let mut tx = self.pool().begin().await?;
        if !lock_and_check(&mut tx, name, false).await? {
            return Ok(false); // Another instance created it meanwhile.
        }
        // The day's rows already in the default partition move into the new one: attaching
        // a range the default partition holds rows of is refused.
        for sql in [
            format!("CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
            format!(
                "INSERT INTO {name} SELECT * FROM {table}_default \
                 WHERE created_at >= {from_ms} AND created_at < {to_ms}"
            ),
            format!(
                "DELETE FROM {table}_default WHERE created_at >= {from_ms} AND created_at < {to_ms}"
            ),
            format!(
                "ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({from_ms}) TO ({to_ms})"
            ),
        ] {
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(partition = name, "created an audit partition");
        Ok(true)
    }

    /// Drops the daily partitions that end at or before `before_ms`, whole, taking their
    /// request rows off the row total in the same transaction; returns the rows dropped.
    pub async fn drop_partitions_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut dropped = 0;
        for partition in self.daily_partitions().await? {
            if partition.from_ms + DAY_MS > before_ms {
                continue;
            }
            let mut tx = self.pool().begin().await?;
            if !lock_and_check(&mut tx, &partition.name, true).await? {
                continue; // Another instance dropped it meanwhile.
            }
            let (rows,): (i64,) =
                sqlx::query_as(&format!("SELECT COUNT(*) FROM {}", partition.name))
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(&format!("DROP TABLE {}", partition.name))
                .execute(&mut *tx)
                .await?;
            if partition.table == "request_logs" && rows > 0 {
                Self::add_to_request_log_total_in(&mut tx, -rows).await?;
            }
            tx.commit().await?;
            tracing::info!(partition = %partition.name, rows, "dropped an audit partition past the retention");
            dropped += rows as u64;
        }
        Ok(dropped)
    }
}

/// Takes the partition lock for the transaction and says whether `name` (still) exists as
/// `expected`: the check made under the lock is the one that counts.
async fn lock_and_check(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    expected: bool,
) -> Result<bool, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut **tx)
        .await?;
    let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    Ok(exists == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_and_read_by_utc_day() {
        let noon = NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let start = day_start(noon);
        assert_eq!(noon - start, 12 * 3_600_000);
        let name = partition_name("request_logs", start);
        assert_eq!(name, "request_logs_p20261202");
        assert_eq!(parse_day("request_logs", &name), Some(start));
        assert_eq!(parse_day("policy_logs", &name), None);
        assert_eq!(parse_day("request_logs", "request_logs_default"), None);
    }
}
