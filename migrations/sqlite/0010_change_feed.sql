-- The change feed: every change another instance must learn of (a revocation, an agent's
-- status, a policy, an uploaded plugin, a tool credential, a chaos rule) appends one row,
-- in the same transaction, by trigger. Instances resume from the last `seq` they applied
-- (polled: instances share a SQLite file only on one host). SQLite has one writer at a
-- time, so numbers are handed out in commit order; AUTOINCREMENT never reuses one.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    subject TEXT NOT NULL
);

-- Chaos rules by tool (`*` for every tool), shared by every instance and kept across restarts.
CREATE TABLE chaos_rules (
    tool    TEXT PRIMARY KEY,
    mode    TEXT NOT NULL,
    pct     REAL NOT NULL,
    min_ms  INTEGER NOT NULL,
    max_ms  INTEGER NOT NULL
);

CREATE TRIGGER tokens_change AFTER UPDATE OF revoked_at ON tokens
    FOR EACH ROW WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('token', NEW.token_id);
END;

CREATE TRIGGER agents_insert_change AFTER INSERT ON agents
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('agent', NEW.id);
END;

CREATE TRIGGER agents_update_change AFTER UPDATE ON agents
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('agent', NEW.id);
END;

CREATE TRIGGER policies_insert_change AFTER INSERT ON policies
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('policy', NEW.id);
END;

CREATE TRIGGER policies_update_change AFTER UPDATE ON policies
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('policy', NEW.id);
END;

CREATE TRIGGER policies_delete_change AFTER DELETE ON policies
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('policy', OLD.id);
END;

CREATE TRIGGER plugin_uploads_insert_change AFTER INSERT ON plugin_uploads
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('plugin', NEW.name);
END;

CREATE TRIGGER plugin_uploads_update_change AFTER UPDATE ON plugin_uploads
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('plugin', NEW.name);
END;

CREATE TRIGGER plugin_uploads_delete_change AFTER DELETE ON plugin_uploads
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('plugin', OLD.name);
END;

CREATE TRIGGER tool_credentials_insert_change AFTER INSERT ON tool_credentials
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('credential', NEW.tool);
END;

CREATE TRIGGER tool_credentials_update_change AFTER UPDATE ON tool_credentials
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('credential', NEW.tool);
END;

CREATE TRIGGER tool_credentials_delete_change AFTER DELETE ON tool_credentials
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('credential', OLD.tool);
END;

CREATE TRIGGER chaos_rules_insert_change AFTER INSERT ON chaos_rules
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('chaos', NEW.tool);
END;

CREATE TRIGGER chaos_rules_update_change AFTER UPDATE ON chaos_rules
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('chaos', NEW.tool);
END;

CREATE TRIGGER chaos_rules_delete_change AFTER DELETE ON chaos_rules
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('chaos', OLD.tool);
END;
