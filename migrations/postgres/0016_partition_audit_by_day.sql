-- The audit tables become partitioned by day (declarative range partitioning on created_at,
-- unix ms): retention then drops a whole day's partition instead of deleting its rows one
-- by one. The gateway creates each day's partition ahead of time (today and the next two
-- days) and moves any of that day's rows out of the default partition as it does; the
-- default partition takes the rows that were there before this migration, and any row no
-- daily partition covers, so a write never fails for want of a partition.

ALTER TABLE request_logs RENAME TO request_logs_unpartitioned;
ALTER TABLE request_logs_unpartitioned RENAME CONSTRAINT request_logs_pkey TO request_logs_unpartitioned_pkey;
CREATE TABLE request_logs (
    id               TEXT NOT NULL,
    correlation_id   TEXT NOT NULL,
    agent_id         TEXT,
    tool             TEXT NOT NULL,
    action           TEXT NOT NULL,
    status_code      BIGINT NOT NULL,
    success          BIGINT NOT NULL,
    error_code       TEXT,
    response_time_ms DOUBLE PRECISION NOT NULL,
    cached           BIGINT NOT NULL,
    policy_decision  TEXT,
    chaos_fault      TEXT,
    created_at       BIGINT NOT NULL,
    sample_rate      DOUBLE PRECISION,
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);
CREATE TABLE request_logs_default PARTITION OF request_logs DEFAULT;
INSERT INTO request_logs (id, correlation_id, agent_id, tool, action, status_code, success,
    error_code, response_time_ms, cached, policy_decision, chaos_fault, created_at, sample_rate)
SELECT id, correlation_id, agent_id, tool, action, status_code, success, error_code,
    response_time_ms, cached, policy_decision, chaos_fault, created_at, sample_rate
FROM request_logs_unpartitioned;
DROP TABLE request_logs_unpartitioned;

ALTER TABLE policy_logs RENAME TO policy_logs_unpartitioned;
ALTER TABLE policy_logs_unpartitioned RENAME CONSTRAINT policy_logs_pkey TO policy_logs_unpartitioned_pkey;
ALTER INDEX policy_logs_agent RENAME TO policy_logs_unpartitioned_agent;
ALTER INDEX policy_logs_policy RENAME TO policy_logs_unpartitioned_policy;
ALTER INDEX policy_logs_created RENAME TO policy_logs_unpartitioned_created;
CREATE TABLE policy_logs (
    id            TEXT NOT NULL,
    policy_id     TEXT,
    agent_id      TEXT NOT NULL,
    tool          TEXT NOT NULL,
    action        TEXT NOT NULL,
    decision      TEXT NOT NULL,
    reason        TEXT,
    request_data  TEXT,
    response_data TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);
CREATE INDEX policy_logs_agent ON policy_logs (agent_id, created_at);
CREATE INDEX policy_logs_policy ON policy_logs (policy_id, created_at) WHERE policy_id IS NOT NULL;
CREATE TABLE policy_logs_default PARTITION OF policy_logs DEFAULT;
INSERT INTO policy_logs (id, policy_id, agent_id, tool, action, decision, reason, request_data,
    response_data, created_at)
SELECT id, policy_id, agent_id, tool, action, decision, reason, request_data, response_data,
    created_at
FROM policy_logs_unpartitioned;
DROP TABLE policy_logs_unpartitioned;
