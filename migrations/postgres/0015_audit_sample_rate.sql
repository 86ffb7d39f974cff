-- Allowed, successful calls may be sampled (AUDIT_SAMPLE_ALLOWED): a sampled row records the
-- share of such calls kept, so counts can be scaled back (NULL: every such call is kept).
ALTER TABLE request_logs ADD COLUMN sample_rate DOUBLE PRECISION;
