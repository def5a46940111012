-- Normalized, enriched token-usage events: one row per schemas.Event.
-- ReplacingMergeTree on (integration_id, time, event_id) collapses re-polled
-- duplicates; partitions are months so retention drops whole partitions (18.16
-- has no TTL). Monthly, not daily: audit APIs deliver late and a batch spans
-- many days, and every INSERT writes one part per partition it touches.
CREATE TABLE IF NOT EXISTS events (
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
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, integration_id, time, event_id);
