-- Cluster layout (optional): each shard keeps its rows in a replicated local
-- table; a Distributed table over them is what tokenwatch writes to and
-- analysts query. Apply with: tokenwatch migrate --cluster NAME
-- ({cluster} is replaced by NAME; {shard} and {replica} are server macros).
-- Sharding by integration keeps one integration's rows on one shard, so
-- per-integration queries touch one shard and FINAL collapses duplicates.
CREATE TABLE IF NOT EXISTS events_local ON CLUSTER '{cluster}' (
    event_id            String,
    source              String,
    tenant              String,
    time                DateTime,
    time_ms             UInt64,
    integration_id      String,
    source_app_id       String,
    integration_name    String,
    credential_type     String,
    credential_id       String,
    principal_id        String,
    principal_type      String,
    action_name         String,
    action_category     String,
    target_app          String,
    resource_type       String,
    resource_id         String,
    scopes              Array(String),
    ip                  String,
    user_agent          String,
    outcome             String,
    bytes               UInt64,
    records             UInt64,
    country             String,
    city                String,
    lat                 Float64,
    lon                 Float64,
    asn                 UInt32,
    as_org              String,
    raw                 String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/events_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, integration_id, time, event_id);

CREATE TABLE IF NOT EXISTS events ON CLUSTER '{cluster}' AS events_local
ENGINE = Distributed('{cluster}', currentDatabase(), events_local, cityHash64(tenant, integration_id));
