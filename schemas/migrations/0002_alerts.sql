-- Alerts, one row per alert id. Ids are deterministic, so a re-delivered or
-- re-detected alert replaces its earlier row (query with FINAL, or argMax on
-- created_at, to see one row per id before merges run).
CREATE TABLE IF NOT EXISTS alerts (
    id              String,
    detector        String,
    severity        Enum8('info' = 0, 'low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    integration_id  String,
    tenant          String,
    title           String,
    summary         String,
    first_seen      DateTime,
    last_seen       DateTime,
    event_ids       Array(String),
    observed        String,
    baseline        String,
    created_at      DateTime
) ENGINE = ReplacingMergeTree(created_at)
PARTITION BY toYYYYMM(first_seen)
ORDER BY id;
