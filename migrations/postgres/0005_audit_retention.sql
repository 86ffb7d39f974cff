-- Pruning old policy decisions by age (request_logs already has its created_at index).
CREATE INDEX policy_logs_created ON policy_logs (created_at);
