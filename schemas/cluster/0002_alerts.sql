-- Alerts on the cluster: sharded by alert id, so re-delivered copies of one
-- alert meet on one shard and ReplacingMergeTree collapses them.
CREATE TABLE IF NOT EXISTS alerts_local ON CLUSTER '{cluster}' (
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
    query           String,
    created_at      DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/alerts_local', '{replica}', created_at)
PARTITION BY toYYYYMM(first_seen)
ORDER BY id;

CREATE TABLE IF NOT EXISTS alerts ON CLUSTER '{cluster}' AS alerts_local
ENGINE = Distributed('{cluster}', currentDatabase(), alerts_local, cityHash64(id));
