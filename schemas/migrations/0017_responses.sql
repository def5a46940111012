-- The respond stage's audit trail (schemas.Response): one row per step of
-- an action — planned or skipped, then executed, already_done or failed;
-- a request_approval's approved or denied (actor says who) —
-- kept as a log. id is a pure function of incident id, version, action and
-- target, so the steps of one action share it; the executor reads this
-- table before sending, and an id already executed or already_done is not
-- sent again. at is the incident's event time, recorded_at the wall clock.
CREATE TABLE IF NOT EXISTS responses (
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
) ENGINE = MergeTree
PARTITION BY toYYYYMM(recorded_at)
ORDER BY (incident_id, id, recorded_ns);

-- response_state: where each action stands (its latest step).
CREATE VIEW IF NOT EXISTS response_state AS
SELECT
    id,
    any(incident_id) AS incident_id,
    any(integration_id) AS integration_id,
    any(action) AS action,
    argMax(status, recorded_ns) AS status,
    argMax(error, recorded_ns) AS error,
    max(recorded_at) AS last_recorded_at
FROM responses
GROUP BY id;
