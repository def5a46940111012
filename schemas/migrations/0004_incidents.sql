-- Incidents, one row per version of each incident (schemas.Incident on
-- tokenwatch.incidents). ReplacingMergeTree(version) keeps the newest version
-- of each id once parts merge: query with FINAL (or argMax(…, version)) to see
-- one row per incident before then. Scalars are columns; the timeline, blast
-- radius and next steps are JSON text (18.16 has no JSON type), with the
-- blast radius totals also as columns for ranking. written_at is when
-- tokenwatch wrote the version (wall clock); incident_learned keeps the first.
-- No partitioning: incidents are few, and every version of an id must share
-- a partition to collapse.
CREATE TABLE IF NOT EXISTS incidents (
    id              String,
    version         UInt32,
    status          String,
    tenant          String,
    integration_id  String,
    integration_ids Array(String),
    key             String,
    severity        Enum8('info' = 0, 'low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    risk_score      Float64,
    first_seen      DateTime,
    last_seen       DateTime,
    updated_at      DateTime,
    detectors       Array(String),
    alert_ids       Array(String),
    title           String,
    summary         String,
    timeline        String,
    blast_radius    String,
    blast_events    UInt64,
    blast_bytes     UInt64,
    blast_records   UInt64,
    owner           String,
    purpose         String,
    criticality     String,
    source          String,
    next            String,
    written_at      DateTime
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- incident_learned: when tokenwatch first wrote each incident (its first
-- version's written_at), which FINAL on incidents no longer shows once the
-- versions have merged. Read with minMerge(learned_at), minMerge(first_version).
CREATE TABLE IF NOT EXISTS incident_learned (
    id              String,
    tenant          String,
    learned_at      AggregateFunction(min, DateTime),
    first_version   AggregateFunction(min, UInt32)
) ENGINE = AggregatingMergeTree
ORDER BY (tenant, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_learned_mv TO incident_learned AS
SELECT
    id,
    tenant,
    minState(written_at) AS learned_at,
    minState(version) AS first_version
FROM incidents
GROUP BY id, tenant;
