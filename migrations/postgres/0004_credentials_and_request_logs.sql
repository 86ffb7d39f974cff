-- Tool credentials (envelope-encrypted under the key-encryption key; one active per tool)
-- and the audit log of proxy requests.
CREATE TABLE tool_credentials (
    id             TEXT PRIMARY KEY,
    tool           TEXT NOT NULL,
    version        TEXT NOT NULL,
    is_active      BIGINT NOT NULL,
    credential     TEXT NOT NULL,
    metadata       TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    activated_at   BIGINT,
    deactivated_at BIGINT,
    UNIQUE (tool, version)
);

CREATE TABLE request_logs (
    id               TEXT PRIMARY KEY,
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
    created_at       BIGINT NOT NULL
);
CREATE INDEX request_logs_created ON request_logs (created_at);
CREATE INDEX request_logs_agent ON request_logs (agent_id, created_at);
