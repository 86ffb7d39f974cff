-- No query reads request_logs by agent: the index only cost a write per proxied request.
DROP INDEX IF EXISTS request_logs_agent;
