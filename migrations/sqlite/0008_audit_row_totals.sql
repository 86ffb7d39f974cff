-- `GET /api/proxy/logs` answers the log's total row count on every call, and counting the
-- table each time costs time in proportion to its size (measured on PostgreSQL: 0.15-0.3 s
-- per 5 million rows; the log gains millions a day under load). The audit writer and the
-- pruning keep the count here instead, in the transactions that add and delete the rows.
CREATE TABLE audit_totals (
    table_name TEXT PRIMARY KEY,
    row_count  BIGINT NOT NULL
);
INSERT INTO audit_totals (table_name, row_count)
SELECT 'request_logs', COUNT(*) FROM request_logs;
