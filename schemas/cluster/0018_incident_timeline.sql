-- incident_timeline on the cluster layout (migrations/0018_incident_timeline.sql),
-- over the Distributed incident_alerts view's tables and responses.
--
-- incident_timeline: an incident as an analyst reads it, one row per thing
-- that happened on it: the alerts of its newest version (kind 'alert', at
-- the alert's first_seen, state its severity) and every step of the
-- respond stage's actions on it (kind 'response', at recorded_at: planned
-- or skipped, approved or denied with the actor, executed, already_done,
-- failed with the error). ORDER BY time, seq gives the order the steps were
-- taken in (seq is recorded_ns for responses, which tells apart steps in
-- the same second).
--
--   SELECT time, kind, what, state, detail, actor FROM incident_timeline
--   WHERE incident_id = '…' ORDER BY time, seq
CREATE VIEW IF NOT EXISTS incident_timeline ON CLUSTER '{cluster}' AS
SELECT
    incident_id,
    alert_first_seen AS time,
    toUInt64(toUnixTimestamp(alert_first_seen)) * 1000000000 AS seq,
    'alert' AS kind,
    alert_id AS id,
    alert_detector AS what,
    alert_severity AS state,
    alert_title AS detail,
    '' AS actor
FROM incident_alerts
UNION ALL
SELECT
    incident_id,
    recorded_at AS time,
    recorded_ns AS seq,
    'response' AS kind,
    id,
    toString(action) AS what,
    toString(status) AS state,
    concat(source, ' ', if(target = '', integration_id, target), if(principal = '', '', concat(' / ', principal)),
        if(error != '', concat(': ', error), if(reason != '', concat(': ', reason), ''))) AS detail,
    actor
FROM responses;
