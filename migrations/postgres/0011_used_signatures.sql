-- Agent signatures already used to mint a token (SHA-256 of the signature, hex), so that a
-- captured signed request is refused by every instance sharing the database, with or
-- without Redis. Rows are deleted once expired (the replay window has passed).
CREATE TABLE used_signatures (
    digest      TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX used_signatures_expiry ON used_signatures (expires_at);
