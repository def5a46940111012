-- Shadow mode (docs/rules.md): shadow = 1 on an alert of a detector or rule
-- marked `shadow: true`, recorded to measure it on live data; it never pages
-- and never joins an incident. Rows written before this migration read 0:
-- nothing ran in shadow then. No IF NOT EXISTS (18.16 lacks it); migrations
-- run once by version.
ALTER TABLE alerts ADD COLUMN shadow UInt8 DEFAULT 0 AFTER purpose;

-- open_alerts is the triage queue: a detector on trial must not fill it, so
-- the view is redefined (same columns, as 0010 wrote it) without shadow
-- alerts. Drop and create rather than editing 0010, which has been applied.
DROP TABLE IF EXISTS open_alerts;

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
WHERE last_seen >= now() - INTERVAL 7 DAY AND shadow = 0
ORDER BY last_seen DESC, severity_rank DESC, id;

-- shadow_alert_rates: per shadow detector, its alerts per 1,000
-- integration-days over everything stored, the figure `tokenwatch eval`
-- reports for shadow detectors. An integration's days are the calendar days
-- (UTC) from its first to its last event in events, inclusive, summed over
-- every (tenant, integration): eval.IntegrationDays' definition. The
-- denominator spans all of events, so a rule shadowed only recently reads
-- low until it has run as long as the data reaches back (docs/rules.md has
-- the windowed query).
CREATE VIEW IF NOT EXISTS shadow_alert_rates AS
SELECT
    detector,
    alerts,
    integrations,
    first_alert,
    last_alert,
    integration_days,
    alerts * 1000 / integration_days AS alerts_per_1k_integration_days
FROM
(
    SELECT
        1 AS all_data,
        detector,
        count() AS alerts,
        uniqExact(tenant, integration_id) AS integrations,
        min(first_seen) AS first_alert,
        max(last_seen) AS last_alert
    FROM alerts FINAL
    WHERE shadow = 1
    GROUP BY detector
)
ANY LEFT JOIN
(
    SELECT 1 AS all_data, sum(days) AS integration_days
    FROM
    (
        SELECT toRelativeDayNum(max(time)) - toRelativeDayNum(min(time)) + 1 AS days
        FROM events
        GROUP BY tenant, integration_id
    )
) USING (all_data)
ORDER BY alerts_per_1k_integration_days DESC, detector;
