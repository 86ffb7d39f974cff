-- Only decisions that name a policy (denials and failures) are read by policy; an allowed
-- call names none. The index now holds those rows only, instead of a NULL entry for every
-- allowed call (most rows, each an index write on the proxy's path).
DROP INDEX IF EXISTS policy_logs_policy;
CREATE INDEX policy_logs_policy ON policy_logs (policy_id, created_at) WHERE policy_id IS NOT NULL;
