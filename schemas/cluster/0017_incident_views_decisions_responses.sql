-- The incident views, analysts' decisions and the respond stage's audit
-- trail on the cluster layout (single-server: migrations 0004, 0012, 0015
-- and 0017). Every table is sharded by incident id, as incidents are, so an
-- incident's versions, decisions and actions meet on one shard and the
-- views' GROUP BYs and FINALs are right per shard. The views read the
-- Distributed tables; their joins run on the node that was asked (the left
-- side is a subquery), and the one IN over a Distributed table is GLOBAL.

-- incident_learned: the first written_at of each incident, fed on each
-- shard from the rows its incidents_local receives.
CREATE TABLE IF NOT EXISTS incident_learned_local ON CLUSTER '{cluster}' (
    id              String,
    tenant          String,
    learned_at      AggregateFunction(min, DateTime),
    first_version   AggregateFunction(min, UInt32)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/tokenwatch/incident_learned_local', '{replica}')
ORDER BY (tenant, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_learned_mv ON CLUSTER '{cluster}' TO incident_learned_local AS
SELECT
    id,
    tenant,
    minState(written_at) AS learned_at,
    minState(version) AS first_version
FROM incidents_local
GROUP BY id, tenant;

CREATE TABLE IF NOT EXISTS incident_learned ON CLUSTER '{cluster}' AS incident_learned_local
ENGINE = Distributed('{cluster}', currentDatabase(), incident_learned_local, cityHash64(id));

-- open_incidents: the newest version of each incident that is open or
-- acknowledged, with when tokenwatch learned of it (learned_at, wall clock)
-- and how long after the first signal's evidence that was (detection_lag_s).
-- copy: migrations/0012_incident_views.sql CREATE VIEW IF NOT EXISTS open_incidents

-- incident_alerts: one row per (incident, alert) of the newest version of
-- each incident, with the alert's detector, severity, title, times and
-- evidence event ids from the alerts table (empty when the alert row is not
-- there). arrayJoin(alert_event_ids) pivots on to the events.
-- copy: migrations/0012_incident_views.sql CREATE VIEW IF NOT EXISTS incident_alerts

-- incident_events: one row per (incident, alert, evidence event), with the
-- event's columns. The events side is filtered to the incidents' evidence
-- ids before the join, so the join's in-memory side is the (small) set of
-- incident evidence, never the events table.
CREATE VIEW IF NOT EXISTS incident_events ON CLUSTER '{cluster}' AS
SELECT
    incident_id,
    alert_id,
    alert_detector,
    event_id,
    time,
    integration_id,
    credential_id,
    principal_id,
    action_name,
    target_app,
    resource_type,
    resource_id,
    ip,
    country,
    city,
    asn,
    as_org,
    user_agent,
    outcome,
    bytes,
    records
FROM
(
    SELECT event_id, any(time) AS time, any(integration_id) AS integration_id, any(credential_id) AS credential_id,
        any(principal_id) AS principal_id, any(action_name) AS action_name, any(target_app) AS target_app,
        any(resource_type) AS resource_type, any(resource_id) AS resource_id, any(ip) AS ip, any(country) AS country,
        any(city) AS city, any(asn) AS asn, any(as_org) AS as_org, any(user_agent) AS user_agent,
        any(outcome) AS outcome, any(bytes) AS bytes, any(records) AS records
    FROM events
    WHERE event_id GLOBAL IN (SELECT arrayJoin(alert_event_ids) FROM incident_alerts)
    GROUP BY event_id
)
ALL INNER JOIN
(
    SELECT incident_id, alert_id, alert_detector, arrayJoin(alert_event_ids) AS event_id
    FROM incident_alerts
) USING (event_id);

-- Analysts' decisions (tokenwatch incident ack|resolve|suppress).
CREATE TABLE IF NOT EXISTS incident_decisions_local ON CLUSTER '{cluster}' (
    incident_id     String,
    tenant          String,
    key             String,
    integration_id  String,
    action          Enum8('acknowledge' = 1, 'resolve' = 2, 'suppress' = 3),
    reason          String,
    actor           String,
    decided_at      DateTime,
    until           DateTime
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/tokenwatch/incident_decisions_local', '{replica}')
ORDER BY (incident_id, decided_at);

CREATE TABLE IF NOT EXISTS incident_decisions ON CLUSTER '{cluster}' AS incident_decisions_local
ENGINE = Distributed('{cluster}', currentDatabase(), incident_decisions_local, cityHash64(incident_id));

-- incident_decision: the decision in force for each incident.
-- copy: migrations/0015_incident_decisions.sql CREATE VIEW IF NOT EXISTS incident_decision

-- The respond stage's audit trail (schemas.Response).
CREATE TABLE IF NOT EXISTS responses_local ON CLUSTER '{cluster}' (
    id               String,
    incident_id      String,
    incident_version UInt32,
    tenant           String,
    source           String,
    integration_id   String,
    target           String,
    principal        String,
    action           Enum8('notify' = 1, 'request_approval' = 2, 'revoke' = 3),
    mode             Enum8('dry_run' = 1, 'enforce' = 2),
    status           Enum8('planned' = 1, 'skipped' = 2, 'executed' = 3, 'already_done' = 4, 'failed' = 5, 'approved' = 6, 'denied' = 7),
    rule             String,
    reason           String,
    requests         Array(String),
    error            String,
    actor            String,
    at               DateTime,
    recorded_at      DateTime,
    -- recorded_ns orders the steps of one action: two steps often fall in
    -- the same second, which DateTime cannot tell apart.
    recorded_ns      UInt64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/tokenwatch/responses_local', '{replica}')
PARTITION BY toYYYYMM(recorded_at)
ORDER BY (incident_id, id, recorded_ns);

CREATE TABLE IF NOT EXISTS responses ON CLUSTER '{cluster}' AS responses_local
ENGINE = Distributed('{cluster}', currentDatabase(), responses_local, cityHash64(incident_id));

-- response_state: where each action stands (its latest step).
-- copy: migrations/0017_responses.sql CREATE VIEW IF NOT EXISTS response_state
