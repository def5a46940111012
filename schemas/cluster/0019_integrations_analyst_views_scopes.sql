-- The rest of the single-server schema on the cluster layout: the
-- integrations table (migration 0003), the analyst views of 0010 and 0016
-- and the least-privilege map and view of 0019. Tables whose rows belong to
-- one integration are sharded as events are, by cityHash64(tenant,
-- integration_id), so an integration's rows meet on one shard and FINAL or
-- the -Merge combinators are right per shard. The views read the Distributed
-- tables; their joins run on the node that was asked (both sides are
-- subqueries). A view whose body is the single-server one is a `-- copy:`
-- line: the loader (schemas/migrations.go) places that statement there.

-- integrations: what is active (enrich/inventory Discovery writes it);
-- ReplacingMergeTree(last_seen) per shard, query with FINAL.
CREATE TABLE IF NOT EXISTS integrations_local ON CLUSTER '{cluster}' (
    tenant          String,
    integration_id  String,
    name            String,
    owner           String,
    catalogued      UInt8,
    first_seen      DateTime,
    last_seen       DateTime,
    sources         Array(String),
    scopes          Array(String)
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/integrations_local', '{replica}', last_seen)
ORDER BY (tenant, integration_id);

CREATE TABLE IF NOT EXISTS integrations ON CLUSTER '{cluster}' AS integrations_local
ENGINE = Distributed('{cluster}', currentDatabase(), integrations_local, cityHash64(tenant, integration_id));

-- integration_activity_hourly: fed on each shard from the rows its
-- events_local receives (a materialized view sees the inserts of its own
-- node; the Replicated target carries them to the shard's other replicas).
-- Read it with the -Merge combinators, as on a single server.
CREATE TABLE IF NOT EXISTS integration_activity_hourly_local ON CLUSTER '{cluster}' (
    tenant          String,
    integration_id  String,
    hour            DateTime,
    events          AggregateFunction(count),
    bytes           AggregateFunction(sum, UInt64),
    records         AggregateFunction(sum, UInt64),
    ips             AggregateFunction(uniq, String),
    resources       AggregateFunction(uniq, String),
    principals      AggregateFunction(uniq, String),
    countries       AggregateFunction(groupUniqArray, String),
    target_apps     AggregateFunction(groupUniqArray, String)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/tokenwatch/integration_activity_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant, integration_id, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS integration_activity_hourly_mv ON CLUSTER '{cluster}' TO integration_activity_hourly_local AS
SELECT
    tenant,
    integration_id,
    toStartOfHour(time) AS hour,
    countState() AS events,
    sumState(bytes) AS bytes,
    sumState(records) AS records,
    uniqState(ip) AS ips,
    uniqState(resource_id) AS resources,
    uniqState(principal_id) AS principals,
    groupUniqArrayState(country) AS countries,
    groupUniqArrayState(target_app) AS target_apps
FROM events_local
GROUP BY tenant, integration_id, hour;

CREATE TABLE IF NOT EXISTS integration_activity_hourly ON CLUSTER '{cluster}' AS integration_activity_hourly_local
ENGINE = Distributed('{cluster}', currentDatabase(), integration_activity_hourly_local, cityHash64(tenant, integration_id));

-- open_alerts: the triage queue without shadow alerts (0016's definition).
-- alerts is sharded by id, so FINAL collapses an alert's copies per shard.
-- copy: migrations/0016_shadow.sql CREATE VIEW IF NOT EXISTS open_alerts

-- unowned_integrations: integrations flagged inventory.unowned, with their
-- recent activity.
-- copy: migrations/0010_analyst_views.sql CREATE VIEW IF NOT EXISTS unowned_integrations

-- integration_geo_footprint: where each integration has acted from.
-- copy: migrations/0010_analyst_views.sql CREATE VIEW IF NOT EXISTS integration_geo_footprint

-- shadow_alert_rates: per shadow detector, alerts per 1,000
-- integration-days (docs/rules.md).
-- copy: migrations/0016_shadow.sql CREATE VIEW IF NOT EXISTS shadow_alert_rates

-- api_method_scopes: the scope <-> API-method map, the same rows on every
-- node. One replication group for the whole cluster (no {shard} in its
-- path), so the migration's one INSERT, on the node it runs on, reaches
-- every replica of every shard, and the view's join reads it locally.
CREATE TABLE IF NOT EXISTS api_method_scopes ON CLUSTER '{cluster}' (
    source      String,
    call        String,
    call_key    String,
    needs       String,
    needs_app   String,
    scopes      Array(String),
    partial     Array(String),
    doc         String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/tokenwatch/api_method_scopes', '{replica}')
ORDER BY (source, call_key);

-- copy: migrations/0019_scope_usage.sql INSERT INTO api_method_scopes

-- integration_scope_usage: held against exercised scopes per integration over
-- the last 30 days of event time (docs/scopes.md).
-- copy: migrations/0019_scope_usage.sql CREATE VIEW IF NOT EXISTS integration_scope_usage
