-- The most an agent's tokens may grant (tools, permissions, lifetime), set by the operator:
-- JSON `{"tools": [...], "permissions": [...], "max_ttl_minutes": n}`. NULL: derived from
-- the agent's role.
ALTER TABLE agents ADD COLUMN max_scope TEXT;
