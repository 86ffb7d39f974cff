-- The change feed: every change another instance must learn of (a revocation, an agent's
-- status, a policy, an uploaded plugin, a tool credential, a chaos rule) appends one row,
-- in the same transaction, by trigger. Instances resume from the last `seq` they applied
-- and are woken by NOTIFY on `gateway_changes`; no instance clock is involved.
--
-- Sequence values must become visible in order, or a reader that saw 6 would never read a
-- 5 committed later: each writer takes one transaction-scoped advisory lock before it takes
-- its number, so numbers are handed out in commit order.
CREATE TABLE changes (
    seq     BIGSERIAL PRIMARY KEY,
    topic   TEXT NOT NULL,
    subject TEXT NOT NULL
);

-- Chaos rules by tool (`*` for every tool), shared by every instance and kept across restarts.
CREATE TABLE chaos_rules (
    tool    TEXT PRIMARY KEY,
    mode    TEXT NOT NULL,
    pct     DOUBLE PRECISION NOT NULL,
    min_ms  BIGINT NOT NULL,
    max_ms  BIGINT NOT NULL
);

CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed JSONB;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    PERFORM pg_advisory_xact_lock(4242017001);
    INSERT INTO changes (topic, subject) VALUES (TG_ARGV[0], changed ->> TG_ARGV[1]);
    PERFORM pg_notify('gateway_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_change AFTER UPDATE OF revoked_at ON tokens
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
    EXECUTE FUNCTION record_change('token', 'token_id');
CREATE TRIGGER agents_change AFTER INSERT OR UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION record_change('agent', 'id');
CREATE TRIGGER policies_change AFTER INSERT OR UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION record_change('policy', 'id');
CREATE TRIGGER plugin_uploads_change AFTER INSERT OR UPDATE OR DELETE ON plugin_uploads
    FOR EACH ROW EXECUTE FUNCTION record_change('plugin', 'name');
CREATE TRIGGER tool_credentials_change AFTER INSERT OR UPDATE OR DELETE ON tool_credentials
    FOR EACH ROW EXECUTE FUNCTION record_change('credential', 'tool');
CREATE TRIGGER chaos_rules_change AFTER INSERT OR UPDATE OR DELETE ON chaos_rules
    FOR EACH ROW EXECUTE FUNCTION record_change('chaos', 'tool');
