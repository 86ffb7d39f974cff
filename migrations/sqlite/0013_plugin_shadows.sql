-- Shadow candidates of uploaded plugins (PUT /api/admin/plugins/{name}/shadow): at most one
-- per binding, judged on `percent` of its live calls and never enforced.
CREATE TABLE plugin_shadows (
    name        TEXT PRIMARY KEY,
    wasm        BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    percent     REAL NOT NULL,
    signature   TEXT,
    created_at  BIGINT NOT NULL
);

-- Calls on which a candidate decided otherwise than the live plugin (newest kept: a bounded
-- number per binding, and no longer than the audit retention).
CREATE TABLE plugin_shadow_disagreements (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL,
    candidate_sha256 TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    correlation_id   TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    tool             TEXT NOT NULL,
    action           TEXT NOT NULL,
    live             TEXT NOT NULL,
    live_code        TEXT,
    candidate        TEXT NOT NULL,
    candidate_code   TEXT
);
CREATE INDEX plugin_shadow_disagreements_by_name ON plugin_shadow_disagreements (name, id);
CREATE INDEX plugin_shadow_disagreements_by_age ON plugin_shadow_disagreements (created_at);

-- Every instance loads the candidates: a change is announced like an upload's.
CREATE TRIGGER plugin_shadows_insert_change AFTER INSERT ON plugin_shadows
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('plugin', NEW.name);
END;

CREATE TRIGGER plugin_shadows_update_change AFTER UPDATE ON plugin_shadows
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('plugin', NEW.name);
END;

CREATE TRIGGER plugin_shadows_delete_change AFTER DELETE ON plugin_shadows
BEGIN
    INSERT INTO changes (topic, subject) VALUES ('plugin', OLD.name);
END;
