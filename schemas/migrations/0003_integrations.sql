-- Integrations seen in events, one row per (tenant, integration_id): what is
-- actually active, from which sources, with which scopes, and whether the
-- catalog knows it (enrich/inventory Discovery writes it). The tracker
-- re-sends a row whenever it changes; ReplacingMergeTree(last_seen) keeps the
-- latest, so query with FINAL (or argMax(…, last_seen)) before merges run.
CREATE TABLE IF NOT EXISTS integrations (
    tenant          String,
    integration_id  String,
    name            String,
    owner           String,
    catalogued      UInt8,
    first_seen      DateTime,
    last_seen       DateTime,
    sources         Array(String),
    scopes          Array(String)
) ENGINE = ReplacingMergeTree(last_seen)
ORDER BY (tenant, integration_id);
