//! What the audit log occupies on disk, object by object (each table and each of its
//! indexes): SQLite's `dbstat` (every page of the object, used or free within it) or
//! PostgreSQL's relation sizes (a table's size includes its TOAST data and maps). It reads
//! every page of the objects on SQLite, so it is for measurement and checks, not for a
//! scrape. On PostgreSQL a partitioned table or index counts its partitions.

use super::{Backend, Store, StoreError};

/// Tables of the audit log.
pub const AUDIT_TABLES: [&str; 2] = ["request_logs", "policy_logs"];

/// One table or index and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSize {
    /// The table it belongs to.
    pub table: String,
    /// The table itself, or one of its indexes.
    pub object: String,
    /// Bytes on disk.
    pub bytes: i64,
}

impl Store {
    /// The size of each audit table and index, largest first (on SQLite, pages still in
    /// the write-ahead log count as the database will hold them).
    pub async fn audit_object_sizes(&self) -> Result<Vec<ObjectSize>, StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT m.tbl_name, s.name, CAST(SUM(s.pgsize) AS BIGINT) \
                 FROM dbstat s JOIN sqlite_master m ON m.name = s.name \
                 WHERE m.tbl_name IN ('request_logs', 'policy_logs') \
                 GROUP BY m.tbl_name, s.name"
            }
            // A partitioned table or index stores nothing itself: its partitions are summed.
            Backend::Postgres => {
                "SELECT c.relname::text, c.relname::text, \
                   (SELECT COALESCE(SUM(pg_table_size(p.relid)), 0) \
                    FROM pg_partition_tree(c.oid) p)::bigint \
                 FROM pg_class c \
                 WHERE c.relnamespace = current_schema()::regnamespace \
                   AND c.relname IN ('request_logs', 'policy_logs') \
                 UNION ALL \
                 SELECT t.relname::text, i.relname::text, \
                   (SELECT COALESCE(SUM(pg_relation_size(p.relid)), 0) \
                    FROM pg_partition_tree(i.oid) p)::bigint \
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                   JOIN pg_class t ON t.oid = x.indrelid \
                 WHERE t.relnamespace = current_schema()::regnamespace \
                   AND t.relname IN ('request_logs', 'policy_logs')"
            }
        };
        let rows: Vec<(String, String, i64)> = sqlx::query_as(sql).fetch_all(self.pool()).await?;
        let mut sizes: Vec<ObjectSize> = rows
            .into_iter()
            .map(|(table, object, bytes)| ObjectSize {
                table,
                object,
                bytes,
            })
            .collect();
        sizes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.object.cmp(&b.object)));
        Ok(sizes)
    }
}
