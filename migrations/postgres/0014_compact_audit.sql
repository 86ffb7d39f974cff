-- The audit log in fewer bytes per request (measured with `bench audit-size`: 625 bytes per
-- request before this migration).
--
-- 1. The request log's primary key is (created_at, id): the listing (newest first) and the
--    pruning (oldest first) read it, so the separate index on created_at goes.
ALTER TABLE request_logs DROP CONSTRAINT request_logs_pkey;
ALTER TABLE request_logs ADD PRIMARY KEY (created_at, id);
DROP INDEX IF EXISTS request_logs_created;

-- 2. A call's allow decision is its request row's `policy_decision`: the policy row that
--    repeated it is no longer written, and the copies already stored go (the listing of
--    decisions reads allows from the request log).
DELETE FROM policy_logs WHERE decision = 'allow' AND policy_id IS NULL;
