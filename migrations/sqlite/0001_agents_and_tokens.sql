-- Agents and the tokens issued to them. Times are unix milliseconds (BIGINT) so that the
-- SQLite and PostgreSQL schemas, and every query, are the same.
CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX agents_updated_at ON agents (updated_at);

CREATE TABLE tokens (
    token_id    TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    claims      TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX tokens_agent_id ON tokens (agent_id);
CREATE INDEX tokens_revoked_at ON tokens (revoked_at);
