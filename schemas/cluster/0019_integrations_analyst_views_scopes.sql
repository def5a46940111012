-- The rest of the single-server schema on the cluster layout: the
-- integrations table (migration 0003), the analyst views of 0010 and 0016
-- and the least-privilege map and view of 0019. Tables whose rows belong to
-- one integration are sharded as events are, by cityHash64(tenant,
-- integration_id), so an integration's rows meet on one shard and FINAL or
-- the -Merge combinators are right per shard. The views read the Distributed
-- tables; their joins run on the node that was asked (both sides are
-- subqueries). View bodies are the single-server ones unchanged.

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
CREATE VIEW IF NOT EXISTS open_alerts ON CLUSTER '{cluster}' AS
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

-- unowned_integrations: integrations flagged inventory.unowned, with their
-- recent activity.
CREATE VIEW IF NOT EXISTS unowned_integrations ON CLUSTER '{cluster}' AS
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

-- integration_geo_footprint: where each integration has acted from.
CREATE VIEW IF NOT EXISTS integration_geo_footprint ON CLUSTER '{cluster}' AS
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

-- shadow_alert_rates: per shadow detector, alerts per 1,000
-- integration-days (docs/rules.md).
CREATE VIEW IF NOT EXISTS shadow_alert_rates ON CLUSTER '{cluster}' AS
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

-- BEGIN generated from enrich/inventory/scopemap/map.yaml (go test ./enrich/inventory/scopemap/ -update-sql)
INSERT INTO api_method_scopes (source, call, call_key, needs, needs_app, scopes, partial, doc)
SELECT tupleElement(r, 1), tupleElement(r, 2), tupleElement(r, 3), tupleElement(r, 4), tupleElement(r, 5),
    arrayFilter(x -> x != '', splitByChar(' ', tupleElement(r, 6))), arrayFilter(x -> x != '', splitByChar(' ', tupleElement(r, 7))), tupleElement(r, 8)
FROM (SELECT arrayJoin([
    ('google_workspace', 'gmail.users.messages.list', 'gmail.users.messages.list', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', 'https://www.googleapis.com/auth/gmail.metadata', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/list'),
    ('google_workspace', 'gmail.users.messages.get', 'gmail.users.messages.get', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', 'https://www.googleapis.com/auth/gmail.metadata', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/get'),
    ('google_workspace', 'gmail.users.messages.attachments.get', 'gmail.users.messages.attachments.get', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages.attachments/get'),
    ('google_workspace', 'gmail.users.messages.send', 'gmail.users.messages.send', 'https://www.googleapis.com/auth/gmail.send', 'https://www.googleapis.com/auth/gmail.send', 'https://www.googleapis.com/auth/gmail.send https://www.googleapis.com/auth/gmail.compose https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/send'),
    ('google_workspace', 'gmail.users.messages.modify', 'gmail.users.messages.modify', 'https://www.googleapis.com/auth/gmail.modify', 'https://www.googleapis.com/auth/gmail.modify', 'https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/modify'),
    ('google_workspace', 'gmail.users.messages.trash', 'gmail.users.messages.trash', 'https://www.googleapis.com/auth/gmail.modify', 'https://www.googleapis.com/auth/gmail.modify', 'https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/trash'),
    ('google_workspace', 'gmail.users.messages.delete', 'gmail.users.messages.delete', 'https://mail.google.com/', 'https://mail.google.com/', 'https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/delete'),
    ('google_workspace', 'gmail.users.messages.insert', 'gmail.users.messages.insert', 'https://www.googleapis.com/auth/gmail.insert', 'https://www.googleapis.com/auth/gmail.insert', 'https://www.googleapis.com/auth/gmail.insert https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/insert'),
    ('google_workspace', 'gmail.users.threads.list', 'gmail.users.threads.list', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', 'https://www.googleapis.com/auth/gmail.metadata', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.threads/list'),
    ('google_workspace', 'gmail.users.threads.get', 'gmail.users.threads.get', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', 'https://www.googleapis.com/auth/gmail.metadata', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.threads/get'),
    ('google_workspace', 'gmail.users.labels.list', 'gmail.users.labels.list', 'https://www.googleapis.com/auth/gmail.labels', 'https://www.googleapis.com/auth/gmail.labels', 'https://www.googleapis.com/auth/gmail.labels https://www.googleapis.com/auth/gmail.metadata https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/list'),
    ('google_workspace', 'gmail.users.labels.create', 'gmail.users.labels.create', 'https://www.googleapis.com/auth/gmail.labels', 'https://www.googleapis.com/auth/gmail.labels', 'https://www.googleapis.com/auth/gmail.labels https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/create'),
    ('google_workspace', 'gmail.users.drafts.create', 'gmail.users.drafts.create', 'https://www.googleapis.com/auth/gmail.compose', 'https://www.googleapis.com/auth/gmail.compose', 'https://www.googleapis.com/auth/gmail.compose https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.drafts/create'),
    ('google_workspace', 'gmail.users.getProfile', 'gmail.users.getProfile', 'https://www.googleapis.com/auth/gmail.metadata', 'https://www.googleapis.com/auth/gmail.metadata', 'https://www.googleapis.com/auth/gmail.metadata https://www.googleapis.com/auth/gmail.compose https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/getProfile'),
    ('google_workspace', 'gmail.users.history.list', 'gmail.users.history.list', 'https://www.googleapis.com/auth/gmail.metadata', 'https://www.googleapis.com/auth/gmail.metadata', 'https://www.googleapis.com/auth/gmail.metadata https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.modify https://mail.google.com/', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.history/list'),
    ('google_workspace', 'gmail.users.settings.filters.create', 'gmail.users.settings.filters.create', 'https://www.googleapis.com/auth/gmail.settings.basic', 'https://www.googleapis.com/auth/gmail.settings.basic', 'https://www.googleapis.com/auth/gmail.settings.basic', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.settings.filters/create'),
    ('google_workspace', 'gmail.users.settings.forwardingAddresses.create', 'gmail.users.settings.forwardingAddresses.create', 'https://www.googleapis.com/auth/gmail.settings.sharing', 'https://www.googleapis.com/auth/gmail.settings.sharing', 'https://www.googleapis.com/auth/gmail.settings.sharing', '', 'https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.settings.forwardingAddresses/create'),
    ('google_workspace', 'drive.files.list', 'drive.files.list', 'https://www.googleapis.com/auth/drive.metadata.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly https://www.googleapis.com/auth/drive.metadata https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.appdata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/list'),
    ('google_workspace', 'drive.files.get', 'drive.files.get', 'https://www.googleapis.com/auth/drive.readonly', 'https://www.googleapis.com/auth/drive.readonly', 'https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.metadata.readonly https://www.googleapis.com/auth/drive.metadata https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.appdata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/get'),
    ('google_workspace', 'drive.files.export', 'drive.files.export', 'https://www.googleapis.com/auth/drive.readonly', 'https://www.googleapis.com/auth/drive.readonly', 'https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/export'),
    ('google_workspace', 'drive.files.create', 'drive.files.create', 'https://www.googleapis.com/auth/drive.file', 'https://www.googleapis.com/auth/drive.file', 'https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.appdata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/create'),
    ('google_workspace', 'drive.files.update', 'drive.files.update', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.appdata https://www.googleapis.com/auth/drive.metadata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/update'),
    ('google_workspace', 'drive.files.delete', 'drive.files.delete', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.appdata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/delete'),
    ('google_workspace', 'drive.files.copy', 'drive.files.copy', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.appdata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/files/copy'),
    ('google_workspace', 'drive.permissions.create', 'drive.permissions.create', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/permissions/create'),
    ('google_workspace', 'drive.permissions.list', 'drive.permissions.list', 'https://www.googleapis.com/auth/drive.metadata.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly https://www.googleapis.com/auth/drive.metadata https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/permissions/list'),
    ('google_workspace', 'drive.changes.list', 'drive.changes.list', 'https://www.googleapis.com/auth/drive.metadata.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly https://www.googleapis.com/auth/drive.metadata https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/drive', 'https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/drive.appdata', 'https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/list'),
    ('google_workspace', 'calendar.events.list', 'calendar.events.list', 'https://www.googleapis.com/auth/calendar.events.readonly', 'https://www.googleapis.com/auth/calendar.events.readonly', 'https://www.googleapis.com/auth/calendar.events.readonly https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/events/list'),
    ('google_workspace', 'calendar.events.get', 'calendar.events.get', 'https://www.googleapis.com/auth/calendar.events.readonly', 'https://www.googleapis.com/auth/calendar.events.readonly', 'https://www.googleapis.com/auth/calendar.events.readonly https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/events/get'),
    ('google_workspace', 'calendar.events.insert', 'calendar.events.insert', 'https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/events/insert'),
    ('google_workspace', 'calendar.events.update', 'calendar.events.update', 'https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/events/update'),
    ('google_workspace', 'calendar.events.delete', 'calendar.events.delete', 'https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/events/delete'),
    ('google_workspace', 'calendar.calendarList.list', 'calendar.calendarList.list', 'https://www.googleapis.com/auth/calendar.readonly', 'https://www.googleapis.com/auth/calendar.readonly', 'https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/calendarList/list'),
    ('google_workspace', 'calendar.freebusy.query', 'calendar.freebusy.query', 'https://www.googleapis.com/auth/calendar.freebusy', 'https://www.googleapis.com/auth/calendar.freebusy', 'https://www.googleapis.com/auth/calendar.freebusy https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar', '', 'https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query'),
    ('google_workspace', 'directory.users.list', 'directory.users.list', 'https://www.googleapis.com/auth/admin.directory.user.readonly', 'https://www.googleapis.com/auth/admin.directory.user.readonly', 'https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.user', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/list'),
    ('google_workspace', 'directory.users.get', 'directory.users.get', 'https://www.googleapis.com/auth/admin.directory.user.readonly', 'https://www.googleapis.com/auth/admin.directory.user.readonly', 'https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.user', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/get'),
    ('google_workspace', 'directory.users.update', 'directory.users.update', 'https://www.googleapis.com/auth/admin.directory.user', 'https://www.googleapis.com/auth/admin.directory.user', 'https://www.googleapis.com/auth/admin.directory.user', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/update'),
    ('google_workspace', 'directory.groups.list', 'directory.groups.list', 'https://www.googleapis.com/auth/admin.directory.group.readonly', 'https://www.googleapis.com/auth/admin.directory.group.readonly', 'https://www.googleapis.com/auth/admin.directory.group.readonly https://www.googleapis.com/auth/admin.directory.group', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/groups/list'),
    ('google_workspace', 'directory.members.list', 'directory.members.list', 'https://www.googleapis.com/auth/admin.directory.group.member.readonly', 'https://www.googleapis.com/auth/admin.directory.group.member.readonly', 'https://www.googleapis.com/auth/admin.directory.group.member.readonly https://www.googleapis.com/auth/admin.directory.group.readonly https://www.googleapis.com/auth/admin.directory.group.member https://www.googleapis.com/auth/admin.directory.group', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/members/list'),
    ('google_workspace', 'directory.members.insert', 'directory.members.insert', 'https://www.googleapis.com/auth/admin.directory.group.member', 'https://www.googleapis.com/auth/admin.directory.group.member', 'https://www.googleapis.com/auth/admin.directory.group.member https://www.googleapis.com/auth/admin.directory.group', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/members/insert'),
    ('google_workspace', 'directory.tokens.list', 'directory.tokens.list', 'https://www.googleapis.com/auth/admin.directory.user.security', 'https://www.googleapis.com/auth/admin.directory.user.security', 'https://www.googleapis.com/auth/admin.directory.user.security', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/tokens/list'),
    ('google_workspace', 'directory.orgunits.list', 'directory.orgunits.list', 'https://www.googleapis.com/auth/admin.directory.orgunit.readonly', 'https://www.googleapis.com/auth/admin.directory.orgunit.readonly', 'https://www.googleapis.com/auth/admin.directory.orgunit.readonly https://www.googleapis.com/auth/admin.directory.orgunit', '', 'https://developers.google.com/workspace/admin/directory/reference/rest/v1/orgunits/list'),
    ('google_workspace', 'reports.activities.list', 'reports.activities.list', 'https://www.googleapis.com/auth/admin.reports.audit.readonly', 'https://www.googleapis.com/auth/admin.reports.audit.readonly', 'https://www.googleapis.com/auth/admin.reports.audit.readonly', '', 'https://developers.google.com/workspace/admin/reports/reference/rest/v1/activities/list'),
    ('microsoft', 'GET /users/{id}/messages', 'get /users/{id}/messages', 'Mail.Read', 'Mail.Read', 'Mail.Read Mail.ReadWrite', 'Mail.ReadBasic Mail.ReadBasic.All', 'https://learn.microsoft.com/graph/api/user-list-messages'),
    ('microsoft', 'GET /users/{id}/messages/{id}', 'get /users/{id}/messages/{id}', 'Mail.Read', 'Mail.Read', 'Mail.Read Mail.ReadWrite', 'Mail.ReadBasic Mail.ReadBasic.All', 'https://learn.microsoft.com/graph/api/message-get'),
    ('microsoft', 'GET /users/{id}/mailFolders/{id}/messages', 'get /users/{id}/mailfolders/{id}/messages', 'Mail.Read', 'Mail.Read', 'Mail.Read Mail.ReadWrite', 'Mail.ReadBasic Mail.ReadBasic.All', 'https://learn.microsoft.com/graph/api/mailfolder-list-messages'),
    ('microsoft', 'GET /users/{id}/mailFolders', 'get /users/{id}/mailfolders', 'Mail.ReadBasic', 'Mail.ReadBasic.All', 'Mail.ReadBasic Mail.ReadBasic.All Mail.Read Mail.ReadWrite', '', 'https://learn.microsoft.com/graph/api/user-list-mailfolders'),
    ('microsoft', 'GET /users/{id}/messages/{id}/attachments', 'get /users/{id}/messages/{id}/attachments', 'Mail.Read', 'Mail.Read', 'Mail.Read Mail.ReadWrite', '', 'https://learn.microsoft.com/graph/api/message-list-attachments'),
    ('microsoft', 'POST /users/{id}/sendMail', 'post /users/{id}/sendmail', 'Mail.Send', 'Mail.Send', 'Mail.Send', '', 'https://learn.microsoft.com/graph/api/user-sendmail'),
    ('microsoft', 'POST /users/{id}/messages', 'post /users/{id}/messages', 'Mail.ReadWrite', 'Mail.ReadWrite', 'Mail.ReadWrite', '', 'https://learn.microsoft.com/graph/api/user-post-messages'),
    ('microsoft', 'PATCH /users/{id}/messages/{id}', 'patch /users/{id}/messages/{id}', 'Mail.ReadWrite', 'Mail.ReadWrite', 'Mail.ReadWrite', '', 'https://learn.microsoft.com/graph/api/message-update'),
    ('microsoft', 'DELETE /users/{id}/messages/{id}', 'delete /users/{id}/messages/{id}', 'Mail.ReadWrite', 'Mail.ReadWrite', 'Mail.ReadWrite', '', 'https://learn.microsoft.com/graph/api/message-delete'),
    ('microsoft', 'POST /users/{id}/messages/{id}/send', 'post /users/{id}/messages/{id}/send', 'Mail.Send', 'Mail.Send', 'Mail.Send', '', 'https://learn.microsoft.com/graph/api/message-send'),
    ('microsoft', 'POST /users/{id}/messages/{id}/move', 'post /users/{id}/messages/{id}/move', 'Mail.ReadWrite', 'Mail.ReadWrite', 'Mail.ReadWrite', '', 'https://learn.microsoft.com/graph/api/message-move'),
    ('microsoft', 'POST /users/{id}/mailFolders/{id}/messageRules', 'post /users/{id}/mailfolders/{id}/messagerules', 'MailboxSettings.ReadWrite', 'MailboxSettings.ReadWrite', 'MailboxSettings.ReadWrite', '', 'https://learn.microsoft.com/graph/api/mailfolder-post-messagerules'),
    ('microsoft', 'GET /users/{id}/mailboxSettings', 'get /users/{id}/mailboxsettings', 'MailboxSettings.Read', 'MailboxSettings.Read', 'MailboxSettings.Read MailboxSettings.ReadWrite', '', 'https://learn.microsoft.com/graph/api/user-get-mailboxsettings'),
    ('microsoft', 'GET /users/{id}/events', 'get /users/{id}/events', 'Calendars.Read', 'Calendars.Read', 'Calendars.Read Calendars.ReadWrite', 'Calendars.ReadBasic', 'https://learn.microsoft.com/graph/api/user-list-events'),
    ('microsoft', 'GET /users/{id}/calendarView', 'get /users/{id}/calendarview', 'Calendars.Read', 'Calendars.Read', 'Calendars.Read Calendars.ReadWrite', 'Calendars.ReadBasic', 'https://learn.microsoft.com/graph/api/user-list-calendarview'),
    ('microsoft', 'GET /users/{id}/calendars', 'get /users/{id}/calendars', 'Calendars.ReadBasic', 'Calendars.ReadBasic', 'Calendars.ReadBasic Calendars.Read Calendars.ReadWrite', '', 'https://learn.microsoft.com/graph/api/user-list-calendars'),
    ('microsoft', 'POST /users/{id}/events', 'post /users/{id}/events', 'Calendars.ReadWrite', 'Calendars.ReadWrite', 'Calendars.ReadWrite', '', 'https://learn.microsoft.com/graph/api/user-post-events'),
    ('microsoft', 'POST /users/{id}/calendar/getSchedule', 'post /users/{id}/calendar/getschedule', 'Calendars.ReadBasic', 'Calendars.ReadBasic', 'Calendars.ReadBasic Calendars.Read Calendars.ReadWrite', '', 'https://learn.microsoft.com/graph/api/calendar-getschedule'),
    ('microsoft', 'GET /users/{id}/contacts', 'get /users/{id}/contacts', 'Contacts.Read', 'Contacts.Read', 'Contacts.Read Contacts.ReadWrite', '', 'https://learn.microsoft.com/graph/api/user-list-contacts'),
    ('microsoft', 'GET /me', 'get /me', 'User.Read', 'User.Read', 'User.Read User.ReadWrite User.ReadBasic.All User.Read.All User.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/user-get'),
    ('microsoft', 'GET /users', 'get /users', 'User.ReadBasic.All', 'User.ReadBasic.All', 'User.ReadBasic.All User.Read.All User.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/user-list'),
    ('microsoft', 'GET /users/{id}', 'get /users/{id}', 'User.ReadBasic.All', 'User.ReadBasic.All', 'User.ReadBasic.All User.Read.All User.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/user-get'),
    ('microsoft', 'PATCH /users/{id}', 'patch /users/{id}', 'User.ReadWrite.All', 'User.ReadWrite.All', 'User.ReadWrite.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/user-update'),
    ('microsoft', 'GET /users/{id}/drive/root/children', 'get /users/{id}/drive/root/children', 'Files.Read', 'Files.Read.All', 'Files.Read Files.ReadWrite Files.Read.All Files.ReadWrite.All Sites.Read.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-list-children'),
    ('microsoft', 'GET /drives/{id}/items/{id}/children', 'get /drives/{id}/items/{id}/children', 'Files.Read', 'Files.Read.All', 'Files.Read Files.ReadWrite Files.Read.All Files.ReadWrite.All Sites.Read.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-list-children'),
    ('microsoft', 'GET /drives/{id}/items/{id}', 'get /drives/{id}/items/{id}', 'Files.Read', 'Files.Read.All', 'Files.Read Files.ReadWrite Files.Read.All Files.ReadWrite.All Sites.Read.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-get'),
    ('microsoft', 'GET /drives/{id}/items/{id}/content', 'get /drives/{id}/items/{id}/content', 'Files.Read', 'Files.Read.All', 'Files.Read Files.ReadWrite Files.Read.All Files.ReadWrite.All Sites.Read.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-get-content'),
    ('microsoft', 'PUT /drives/{id}/items/{id}/content', 'put /drives/{id}/items/{id}/content', 'Files.ReadWrite', 'Files.ReadWrite.All', 'Files.ReadWrite Files.ReadWrite.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-put-content'),
    ('microsoft', 'DELETE /drives/{id}/items/{id}', 'delete /drives/{id}/items/{id}', 'Files.ReadWrite', 'Files.ReadWrite.All', 'Files.ReadWrite Files.ReadWrite.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-delete'),
    ('microsoft', 'POST /drives/{id}/items/{id}/invite', 'post /drives/{id}/items/{id}/invite', 'Files.ReadWrite', 'Files.ReadWrite.All', 'Files.ReadWrite Files.ReadWrite.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/driveitem-invite'),
    ('microsoft', 'GET /sites', 'get /sites', 'Sites.Read.All', 'Sites.Read.All', 'Sites.Read.All Sites.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/site-list'),
    ('microsoft', 'GET /sites/{id}', 'get /sites/{id}', 'Sites.Read.All', 'Sites.Read.All', 'Sites.Read.All Sites.ReadWrite.All', 'Sites.Selected', 'https://learn.microsoft.com/graph/api/site-get'),
    ('microsoft', 'GET /groups', 'get /groups', 'GroupMember.Read.All', 'GroupMember.Read.All', 'GroupMember.Read.All Group.Read.All GroupMember.ReadWrite.All Group.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/group-list'),
    ('microsoft', 'GET /groups/{id}/members', 'get /groups/{id}/members', 'GroupMember.Read.All', 'GroupMember.Read.All', 'GroupMember.Read.All Group.Read.All GroupMember.ReadWrite.All Group.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/group-list-members'),
    ('microsoft', 'POST /groups/{id}/members/$ref', 'post /groups/{id}/members/$ref', 'GroupMember.ReadWrite.All', 'GroupMember.ReadWrite.All', 'GroupMember.ReadWrite.All Group.ReadWrite.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/group-post-members'),
    ('microsoft', 'GET /applications', 'get /applications', 'Application.Read.All', 'Application.Read.All', 'Application.Read.All Application.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/application-list'),
    ('microsoft', 'POST /applications/{id}/addPassword', 'post /applications/{id}/addpassword', 'Application.ReadWrite.All', 'Application.ReadWrite.OwnedBy', 'Application.ReadWrite.OwnedBy Application.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/application-addpassword'),
    ('microsoft', 'GET /servicePrincipals', 'get /serviceprincipals', 'Application.Read.All', 'Application.Read.All', 'Application.Read.All Application.ReadWrite.All Directory.Read.All Directory.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/serviceprincipal-list'),
    ('microsoft', 'GET /auditLogs/signIns', 'get /auditlogs/signins', 'AuditLog.Read.All', 'AuditLog.Read.All', 'AuditLog.Read.All', '', 'https://learn.microsoft.com/graph/api/signin-list'),
    ('microsoft', 'GET /auditLogs/directoryAudits', 'get /auditlogs/directoryaudits', 'AuditLog.Read.All', 'AuditLog.Read.All', 'AuditLog.Read.All', '', 'https://learn.microsoft.com/graph/api/directoryaudit-list'),
    ('microsoft', 'GET /chats/{id}/messages', 'get /chats/{id}/messages', 'Chat.Read', 'Chat.Read.All', 'Chat.Read Chat.ReadWrite Chat.Read.All Chat.ReadWrite.All', '', 'https://learn.microsoft.com/graph/api/chat-list-messages')
]) AS r);
-- END generated

-- integration_scope_usage: held against exercised scopes per integration over
-- the last 30 days of event time (docs/scopes.md).
CREATE VIEW IF NOT EXISTS integration_scope_usage ON CLUSTER '{cluster}' AS
SELECT
    tenant,
    integration_id,
    source,
    held,
    calls,
    mapped_calls,
    toUInt64(calls - mapped_calls) AS unmapped_calls,
    needed,
    -- 18.16's lambdas cannot capture a column: serving is handed to the
    -- lambda as a second array, one copy per held scope (replicate).
    arrayFilter((s, sv) -> NOT has(sv, s), held, replicate(serving, held)) AS unused_held,
    methods,
    unmapped_methods
FROM
(
SELECT tenant, integration_id, source, held, calls, mapped_calls, needed, serving, methods, unmapped_methods
FROM
(
    SELECT
        tenant,
        integration_id,
        source,
        groupUniqArrayArray(scopes) AS held
    FROM events
    WHERE time >= now() - INTERVAL 30 DAY
    GROUP BY tenant, integration_id, source
)
ANY LEFT JOIN
(
    SELECT
        tenant,
        integration_id,
        source,
        sum(n) AS calls,
        sumIf(n, map_needs != '') AS mapped_calls,
        groupUniqArrayIf(if(delegation = 'app_only', map_needs_app, map_needs), map_needs != '') AS needed,
        groupUniqArrayArray(serves) AS serving,
        groupUniqArray(call_key) AS methods,
        groupUniqArrayIf(call_key, map_needs = '') AS unmapped_methods
    FROM
    (
        SELECT
            tenant,
            integration_id,
            source,
            call_key,
            delegation,
            uniqExact(event_id) AS n
        FROM
        (
            SELECT
                tenant,
                integration_id,
                source,
                event_id,
                delegation,
                if(resource_type = 'api_method', resource_id,
                    concat(lower(http_method), ' ',
                        replaceRegexpAll(
                            replaceRegexpOne(replaceRegexpOne(replaceRegexpOne(lower(http_route), '/$', ''), '^/(v1\\.0|beta)/', '/'), '^/me/', '/users/{id}/'),
                            '/(users|messages|mailfolders|childfolders|drives|items|groups|applications|serviceprincipals|sites|chats|events|calendars|contacts|attachments)/[^/]+', '/\\1/{id}'))) AS call_key
            FROM events
            WHERE time >= now() - INTERVAL 30 DAY
              AND outcome != 'failure'
              AND (resource_type = 'api_method' OR http_method != '')
        )
        GROUP BY tenant, integration_id, source, call_key, delegation
    )
    ANY LEFT JOIN
    (
        SELECT
            source,
            call_key,
            needs AS map_needs,
            needs_app AS map_needs_app,
            arrayConcat(scopes, partial) AS serves
        FROM api_method_scopes
    ) USING (source, call_key)
    GROUP BY tenant, integration_id, source
) USING (tenant, integration_id, source)
)
ORDER BY tenant, integration_id, source;
