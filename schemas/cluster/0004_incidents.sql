-- Incidents on the cluster: sharded by incident id, so every version of one
-- incident meets on one shard and ReplacingMergeTree(version) keeps the
-- newest. (incident_learned and the incident views are single-server
-- conveniences: on a cluster, rank by argMax over the Distributed table.)
CREATE TABLE IF NOT EXISTS incidents_local ON CLUSTER '{cluster}' (
    id              String,
    version         UInt32,
    status          String,
    tenant          String,
    integration_id  String,
    integration_ids Array(String),
    key             String,
    severity        Enum8('info' = 0, 'low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    risk_score      Float64,
    first_seen      DateTime,
    last_seen       DateTime,
    updated_at      DateTime,
    detectors       Array(String),
    alert_ids       Array(String),
    title           String,
    summary         String,
    timeline        String,
    blast_radius    String,
    blast_events    UInt64,
    blast_bytes     UInt64,
    blast_records   UInt64,
    owner           String,
    purpose         String,
    criticality     String,
    source          String,
    next            String,
    written_at      DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/incidents_local', '{replica}', version)
ORDER BY id;

CREATE TABLE IF NOT EXISTS incidents ON CLUSTER '{cluster}' AS incidents_local
ENGINE = Distributed('{cluster}', currentDatabase(), incidents_local, cityHash64(id));
