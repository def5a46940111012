-- Migration 0020 on the cluster layout: api_method_scopes (replicated to
-- every node, 0019) emptied on every node and refilled with the map checked
-- against the vendors' pages.
TRUNCATE TABLE IF EXISTS api_method_scopes ON CLUSTER '{cluster}';

-- copy: migrations/0020_scope_map_checked.sql INSERT INTO api_method_scopes
