-- Analysts' decisions on incidents (tokenwatch incident ack|resolve|suppress),
-- kept as a log: the latest per incident is the one in force (incident_decision).
-- until is the end of a suppression (event time of signals), 0 otherwise.
CREATE TABLE IF NOT EXISTS incident_decisions (
    incident_id     String,
    tenant          String,
    key             String,
    integration_id  String,
    action          Enum8('acknowledge' = 1, 'resolve' = 2, 'suppress' = 3),
    reason          String,
    actor           String,
    decided_at      DateTime,
    until           DateTime
) ENGINE = MergeTree
ORDER BY (incident_id, decided_at);

-- incident_decision: the decision in force for each incident.
CREATE VIEW IF NOT EXISTS incident_decision AS
SELECT
    incident_id,
    argMax(action, decided_at) AS action,
    argMax(reason, decided_at) AS reason,
    argMax(actor, decided_at) AS actor,
    argMax(until, decided_at) AS until,
    max(decided_at) AS last_decided_at
FROM incident_decisions
GROUP BY incident_id;
