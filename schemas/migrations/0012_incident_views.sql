-- Incident views for analysts (docs/analyst-queries.md uses them).
--
-- open_incidents: the newest version of each incident that is open or
-- acknowledged, with when tokenwatch learned of it (learned_at, wall clock)
-- and how long after the first signal's evidence that was (detection_lag_s).
CREATE VIEW IF NOT EXISTS open_incidents AS
SELECT
    id,
    version,
    status,
    tenant,
    integration_id,
    integration_ids,
    key,
    severity,
    toInt8(severity) AS severity_rank,
    risk_score,
    first_seen,
    last_seen,
    updated_at,
    detectors,
    alert_ids,
    length(alert_ids) AS alerts,
    title,
    summary,
    blast_events,
    blast_bytes,
    blast_records,
    owner,
    criticality,
    source,
    learned_at,
    toInt64(learned_at) - toInt64(first_seen) AS detection_lag_s
FROM
(
    SELECT *
    FROM incidents FINAL
    WHERE status IN ('open', 'acknowledged')
)
ANY LEFT JOIN
(
    SELECT id, minMerge(learned_at) AS learned_at
    FROM incident_learned
    GROUP BY id
) USING (id);

-- incident_alerts: one row per (incident, alert) of the newest version of
-- each incident, with the alert's detector, severity, title, times and
-- evidence event ids from the alerts table (empty when the alert row is not
-- there). arrayJoin(alert_event_ids) pivots on to the events.
CREATE VIEW IF NOT EXISTS incident_alerts AS
SELECT
    incident_id,
    incident_version,
    incident_status,
    tenant,
    risk_score,
    alert_id,
    alert_detector,
    alert_severity,
    alert_title,
    alert_first_seen,
    alert_last_seen,
    alert_event_ids
FROM
(
    SELECT
        id AS incident_id,
        version AS incident_version,
        status AS incident_status,
        tenant,
        risk_score,
        arrayJoin(alert_ids) AS alert_id
    FROM incidents FINAL
)
ANY LEFT JOIN
(
    SELECT
        id AS alert_id,
        detector AS alert_detector,
        toString(severity) AS alert_severity,
        title AS alert_title,
        first_seen AS alert_first_seen,
        last_seen AS alert_last_seen,
        event_ids AS alert_event_ids
    FROM alerts FINAL
) USING (alert_id);

-- incident_events: one row per (incident, alert, evidence event), with the
-- event's columns. The events side is filtered to the incidents' evidence
-- ids before the join, so the join's in-memory side is the (small) set of
-- incident evidence, never the events table.
CREATE VIEW IF NOT EXISTS incident_events AS
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
    WHERE event_id IN (SELECT arrayJoin(alert_event_ids) FROM incident_alerts)
    GROUP BY event_id
)
ALL INNER JOIN
(
    SELECT incident_id, alert_id, alert_detector, arrayJoin(alert_event_ids) AS event_id
    FROM incident_alerts
) USING (event_id);
