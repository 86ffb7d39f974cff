-- Rows of calls refused before their agent was known (agent_id NULL: a malformed body, a
-- token that never was one) are the first the row bound (AUDIT_MAX_ROWS) prunes: this
-- index covers only them, so finding the oldest of them reads no other row and costs the
-- authenticated calls' rows nothing.
CREATE INDEX request_logs_anonymous ON request_logs (created_at) WHERE agent_id IS NULL;
