-- Policies (PolicySpec documents for an agent or a role) and the log of policy decisions.
CREATE TABLE policies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    agent_id    TEXT REFERENCES agents (id),
    role        TEXT,
    spec        TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    active      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX policies_agent_id ON policies (agent_id);
CREATE INDEX policies_role ON policies (role);

CREATE TABLE policy_logs (
    id            TEXT PRIMARY KEY,
    policy_id     TEXT,
    agent_id      TEXT NOT NULL,
    tool          TEXT NOT NULL,
    action        TEXT NOT NULL,
    decision      TEXT NOT NULL,
    reason        TEXT,
    request_data  TEXT,
    response_data TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX policy_logs_agent ON policy_logs (agent_id, created_at);
CREATE INDEX policy_logs_policy ON policy_logs (policy_id, created_at);
