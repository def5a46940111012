-- Views for SOC analysts (docs/analyst-queries.md uses them). Numbered 0010 so
-- table migrations (0003…0009) can land before it without a clash; it reads
-- only events and alerts, never a later table, so it does not depend on them.
--
-- integration_activity_hourly: one row per (tenant, integration, hour) with
-- aggregate states, fed by a materialized view on every INSERT into events.
-- Read it with the -Merge combinators:
--   SELECT integration_id, hour, countMerge(events), sumMerge(bytes),
--          uniqMerge(ips), groupUniqArrayMerge(countries)
--   FROM integration_activity_hourly GROUP BY integration_id, hour
-- The materialized view sees inserts, not merges. The events writer leaves
-- out events already stored (deliver/clickhouse: it looks their ids up before
-- each INSERT), so a re-poll, a restart or a redelivery counts once here.
-- Only a writer that bypasses tokenwatch (a hand-made INSERT) can count twice
-- in events/bytes/records; the uniq and groupUniqArray columns are exact
-- about that anyway. It starts empty: rows inserted before this migration are
-- not in it (docs/analyst-queries.md has the one-off backfill).
CREATE TABLE IF NOT EXISTS integration_activity_hourly (
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
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant, integration_id, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS integration_activity_hourly_mv TO integration_activity_hourly AS
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
FROM events
GROUP BY tenant, integration_id, hour;

-- open_alerts: one row per alert id (FINAL collapses re-deliveries) whose
-- last_seen is within 7 days, newest first, most severe first within a
-- second. "Open" is by age: tokenwatch keeps no triage state.
CREATE VIEW IF NOT EXISTS open_alerts AS
SELECT
    id,
    severity,
    toInt8(severity) AS severity_rank,
    detector,
    tenant,
    integration_id,
    title,
    summary,
    first_seen,
    last_seen,
    length(event_ids) AS evidence_events,
    event_ids,
    observed,
    baseline,
    created_at
FROM alerts FINAL
WHERE last_seen >= now() - INTERVAL 7 DAY
ORDER BY last_seen DESC, severity_rank DESC, id;

-- unowned_integrations: integrations the inventory enricher flagged as not
-- in the catalog (detector inventory.unowned), with their recent activity from
-- integration_activity_hourly. Based on alerts rather than a catalog table so
-- it needs no later migration.
CREATE VIEW IF NOT EXISTS unowned_integrations AS
SELECT
    tenant,
    integration_id,
    first_flagged,
    last_flagged,
    alerts,
    title,
    events_30d,
    bytes_30d,
    last_active_hour
FROM
(
    SELECT
        tenant,
        integration_id,
        min(first_seen) AS first_flagged,
        max(last_seen) AS last_flagged,
        count() AS alerts,
        argMax(title, last_seen) AS title
    FROM alerts FINAL
    WHERE detector = 'inventory.unowned'
    GROUP BY tenant, integration_id
)
ANY LEFT JOIN
(
    SELECT
        tenant,
        integration_id,
        countMerge(events) AS events_30d,
        sumMerge(bytes) AS bytes_30d,
        max(hour) AS last_active_hour
    FROM integration_activity_hourly
    WHERE hour >= toStartOfHour(now() - INTERVAL 30 DAY)
    GROUP BY tenant, integration_id
) USING (tenant, integration_id)
ORDER BY last_flagged DESC, tenant, integration_id;

-- integration_geo_footprint: where each integration has acted from. events
-- counts distinct event ids, so re-polled duplicates not yet merged away do
-- not inflate it (cheaper than FINAL on the largest table).
CREATE VIEW IF NOT EXISTS integration_geo_footprint AS
SELECT
    tenant,
    integration_id,
    country,
    city,
    asn,
    as_org,
    min(time) AS first_seen,
    max(time) AS last_seen,
    uniqExact(event_id) AS events
FROM events
GROUP BY tenant, integration_id, country, city, asn, as_org;
