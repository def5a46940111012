-- Least privilege for the analyst (docs/scopes.md): the scope <-> API-method
-- map as a table, and integration_scope_usage, per integration over the last
-- 30 days of event time, the scopes seen on its events against the scopes
-- its API calls needed.
--
-- api_method_scopes: one row per API method of enrich/inventory/scopemap/
-- map.yaml, joined to events on call_key:
--   Google: the method id, as events.resource_id when resource_type = 'api_method'
--   Graph:  the call in lower case ('get /users/{id}/messages'); an event's
--           key is lower(http_method) and its http_route in lower case
--           without /v1.0 or /beta, /me/ as /users/{id}/, and the segment
--           after each collection named below as {id} (18.16's match()
--           cannot take a pattern from a table, so the route is rewritten
--           with constant patterns instead; scopemap.SQLCallKey is its Go
--           twin, tested against every entry)
-- needs is the least-privileged scope serving the call in full (needs_app
-- for an app-only token); scopes every scope serving it in full; partial
-- those serving it on part of the data. The rows are the map's, generated:
-- changing map.yaml means a new migration that drops, recreates and refills
-- the table (a test in scopemap fails until the newest INSERT equals the map).
CREATE TABLE IF NOT EXISTS api_method_scopes (
    source      String,
    call        String,
    call_key    String,
    needs       String,
    needs_app   String,
    scopes      Array(String),
    partial     Array(String),
    doc         String
) ENGINE = MergeTree
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

-- integration_scope_usage: one row per (tenant, integration, source) active
-- in the last 30 days.
--   held              distinct scopes on its events (grants, tokens)
--   calls             successful API calls; mapped_calls those the map knows
--   needed            least-privileged scopes of the mapped calls
--   unused_held       held scopes that serve none of the calls: candidates
--                     to remove (the CLI also credits each call to the
--                     narrowest held scope, so a broad scope shadowed by a
--                     narrow one is unused there but not here)
--   methods           distinct call keys; unmapped_methods those the map lacks
-- The 30 days are event time; for another window run the SELECT below with
-- its two INTERVALs changed (docs/scopes.md).
CREATE VIEW IF NOT EXISTS integration_scope_usage AS
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
