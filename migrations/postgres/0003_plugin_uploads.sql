-- Plugins uploaded through the admin API: every version is kept for rollback; one is active.
CREATE TABLE plugin_uploads (
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    wasm        BYTEA NOT NULL,
    sha256      TEXT NOT NULL,
    binding     TEXT NOT NULL,
    active      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
