package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

var appNames = []string{"Pipeline CRM Sync", "Acme Backup", "Calendly Bridge", "DocuFlow", "Zapline", "MailMerge Pro",
	"HR Onboarder", "Drive Archiver", "Expense Bot", "Signal Analytics", "Helpdesk Connector", "Contract Vault",
	"Slides Builder", "Lead Enricher", "Travel Desk", "Invoice Relay", "Recruit Sync", "Survey Hub", "Audit Mirror", "Team Pulse",
	"Gong Recorder", "Clari Forecast", "Outreach Sync", "Notion Importer", "Jira Bridge", "Loom Share", "Miro Boards",
	"Vanta Monitor", "Drata Agent", "Okta Workflows", "Tableau Bridge", "Fivetran Connector", "Census Sync", "Hightouch"}

var vendorUAs = []string{"python-requests/2.31.0", "Go-http-client/1.1", "Apache-HttpClient/4.5.14 (Java/17.0.9)",
	"okhttp/4.9.3", "axios/1.6.8", "node-fetch/1.0", "aiohttp/3.9.3", "Faraday v2.9.0", "Ruby", "curl/7.88.1"}

var delegatedUAs = []string{"Spark/3.1 (iPhone; iOS 17.5)", "Thunderbird/115.10", "Outlook-iOS/2.0", "Fantastical/3.8 (Mac)",
	"Superhuman/1.0 (Macintosh)", "Notion/3.2 (Macintosh)"}

// Google Reports token activity.
var googleAPIs = []struct{ api, method, bucket string }{
	{"gmail", "gmail.users.messages.get", "GMAIL"},
	{"gmail", "gmail.users.messages.list", "GMAIL"},
	{"gmail", "gmail.users.messages.send", "GMAIL"},
	{"drive", "drive.files.get", "DRIVE"},
	{"drive", "drive.files.list", "DRIVE"},
	{"drive", "drive.files.create", "DRIVE"},
	{"calendar", "calendar.events.list", "CALENDAR"},
	{"calendar", "calendar.events.insert", "CALENDAR"},
	{"admin", "directory.users.list", "GSUITE_ADMIN"},
	{"sheets", "sheets.spreadsheets.values.get", "OTHER"},
}

var googleScopes = map[string]string{
	"gmail": "https://www.googleapis.com/auth/gmail.readonly", "drive": "https://www.googleapis.com/auth/drive",
	"calendar": "https://www.googleapis.com/auth/calendar", "admin": "https://www.googleapis.com/auth/admin.directory.user.readonly",
	"sheets": "https://www.googleapis.com/auth/spreadsheets.readonly",
}

var githubActions = []op{
	{name: "git.clone", extra: "access"}, {name: "git.fetch", extra: "access"}, {name: "git.push", write: true},
	{name: "repo.download_zip", extra: "access"}, {name: "pull_request.create", extra: "create", write: true},
	{name: "issue_comment.create", extra: "create", write: true}, {name: "pull_request_review.submit", extra: "create", write: true},
	{name: "workflows.prepared_workflow_job", extra: "create", write: true},
}

var graphAppOps = []op{
	{name: "GET", target: "/v1.0/users"}, {name: "GET", target: "/v1.0/users/{u}"}, {name: "GET", target: "/v1.0/users/{u}/messages"},
	{name: "GET", target: "/v1.0/groups"}, {name: "GET", target: "/v1.0/users/{u}/drive/root/children"},
	{name: "POST", target: "/v1.0/users/{u}/sendMail", write: true}, {name: "GET", target: "/v1.0/users/{u}/calendar/events"},
	{name: "GET", target: "/v1.0/applications"}, {name: "PATCH", target: "/v1.0/users/{u}", write: true},
}

var graphRoles = map[string]string{"/v1.0/users": "User.Read.All", "/v1.0/users/{u}": "User.Read.All", "/v1.0/users/{u}/messages": "Mail.Read",
	"/v1.0/groups": "Group.Read.All", "/v1.0/users/{u}/drive/root/children": "Files.Read.All", "/v1.0/users/{u}/sendMail": "Mail.Send",
	"/v1.0/users/{u}/calendar/events": "Calendars.Read", "/v1.0/applications": "Application.Read.All"}

var graphDelegatedOps = []op{
	{name: "GET", target: "/v1.0/me/messages"}, {name: "GET", target: "/v1.0/me/events"},
	{name: "GET", target: "/v1.0/me/drive/root/children"}, {name: "POST", target: "/v1.0/me/sendMail", write: true},
	{name: "GET", target: "/v1.0/me"},
}

var sfObjects = []string{"Account", "Contact", "Opportunity", "Lead", "Case", "Campaign", "Task"}

var slackOps = []op{{name: "file_downloaded"}, {name: "file_downloaded"}, {name: "file_uploaded", write: true}, {name: "file_shared", write: true}}

const graphResource = "00000003-0000-0000-c000-000000000000"

// setupSource gives the integration its vendor identity, operations and scopes.
func setupSource(g *gen, in *integ) {
	r := g.r
	in.name = appNames[r.IntN(len(appNames))]
	in.ua = vendorUAs[r.IntN(len(vendorUAs))]
	if in.kind == kindDelegated {
		in.ua = delegatedUAs[r.IntN(len(delegatedUAs))]
	}
	switch in.src {
	case "google_workspace":
		in.id = fmt.Sprintf("%012d-%s.apps.googleusercontent.com", 100000000000+r.Int64N(899999999999), shortID(r, 32))
		perm := r.Perm(len(googleAPIs))[:2+r.IntN(3)]
		seen := map[string]bool{}
		for _, i := range perm {
			a := googleAPIs[i]
			in.ops = append(in.ops, op{name: a.method, target: a.api, extra: a.bucket, write: isWrite(a.method)})
			if !seen[a.api] {
				seen[a.api] = true
				in.scopes = append(in.scopes, googleScopes[a.api])
			}
		}
	case "github":
		t := tenantByName(in.tenant)
		in.aux["org"] = t.githubOrg
		slug := strings.ToLower(strings.ReplaceAll(in.name, " ", "-")) + "-" + shortID(r, 3)
		switch in.sub {
		case "app":
			in.id, in.aux["slug"] = "github_app:"+slug, slug
			in.ua = fmt.Sprintf("%s/%d.%d", strings.ReplaceAll(in.name, " ", ""), 1+r.IntN(5), r.IntN(20))
		case "oauth":
			n := 100000 + r.IntN(900000)
			in.id, in.aux["oauth"] = fmt.Sprint("oauth_app:", n), fmt.Sprint(n)
			in.scopes = []string{"repo", "read:org"}
		case "pat":
			h := make([]byte, 32)
			for i := range h {
				h[i] = byte(r.IntN(256))
			}
			tok := base64.StdEncoding.EncodeToString(h)
			in.id, in.aux["hashed"] = "pat:"+tok, tok
			in.name = "ci-" + shortID(r, 5)
			in.users = in.users[:1]
			in.scopes = []string{"repo", "workflow"}
		}
		for _, i := range r.Perm(len(githubActions))[:2+r.IntN(4)] {
			in.ops = append(in.ops, githubActions[i])
		}
		for _, i := range r.Perm(repoCount)[:3+r.IntN(10)] {
			in.aux["repos"] += fmt.Sprint(i, ",")
		}
	case "microsoft":
		in.id = g.guid()
		in.aux["sp"] = g.guid()
		in.aux["obj"] = g.guid()
		if in.sub == "apponly" {
			roles := map[string]bool{}
			for _, i := range r.Perm(len(graphAppOps))[:2+r.IntN(4)] {
				o := graphAppOps[i]
				in.ops = append(in.ops, o)
				if ro := graphRoles[o.target]; ro != "" && !roles[ro] {
					roles[ro] = true
					in.scopes = append(in.scopes, ro)
				}
			}
			in.aux["resources"] = "Microsoft Graph"
			if r.IntN(4) == 0 {
				in.aux["resources"] += ",Office 365 Exchange Online"
			}
			in.ua = in.ua + " msgraph-sdk/1.0"
		} else {
			for _, i := range r.Perm(len(graphDelegatedOps))[:2+r.IntN(3)] {
				in.ops = append(in.ops, graphDelegatedOps[i])
			}
			in.scopes = []string{"User.Read", "Mail.Read", "Calendars.Read", "offline_access"}
			for _, u := range in.users {
				u.id = guidFrom(in.tenant, u.email)
			}
		}
	case "okta":
		in.id = "0oa" + b62(r, 17)
		in.aux["as"] = "aus" + b62(r, 17)
		in.ops = []op{{name: "app.oauth2.as.token.grant.access_token"}}
		if in.sub == "delegated" {
			in.ops = []op{{name: "app.oauth2.as.token.grant.refresh_token"}}
			in.scopes = []string{"openid", "profile", "offline_access"}
			for _, u := range in.users {
				u.id = "00u" + b62(r, 17)
			}
		} else {
			res := strings.ToLower(strings.Fields(in.name)[0])
			in.scopes = []string{res + ".read"}
			if r.IntN(2) == 0 {
				in.scopes = append(in.scopes, res+".write")
			}
		}
	case "slack":
		in.id = "A0" + strings.ToUpper(shortID(r, 9))
		in.ops = slackOps[:2+r.IntN(3)]
		in.scopes = []string{"files:read", "chat:write", "channels:read"}
	case "salesforce":
		// One org's connected apps have distinct names (the label an admin
		// gives each); ApiEvent's Application is that name.
		base := in.name
		for n := 2; g.sfNames[in.name]; n++ {
			in.name = fmt.Sprintf("%s %d", base, n)
		}
		g.sfNames[in.name] = true
		// The 18-character ConnectedAppId; the connector keys by its
		// case-sensitive 15-character form.
		in.aux["appid18"] = "0H4" + b62(r, 15)
		in.id = in.aux["appid18"][:15]
		in.aux["user"] = fmt.Sprintf("%s-integration@%s.example", strings.ToLower(strings.Fields(in.name)[0]), in.tenant)
		in.aux["userid"] = "005" + b62(r, 15)
		in.aux["client"] = strings.ReplaceAll(in.name, " ", "") + fmt.Sprintf("/%d.%d", 1+r.IntN(6), r.IntN(10))
		objs := r.Perm(len(sfObjects))[:1+r.IntN(4)]
		for _, i := range objs {
			in.ops = append(in.ops, op{name: "Query", target: sfObjects[i]})
		}
		in.ops = append(in.ops, op{name: "QueryMore", target: sfObjects[objs[0]]})
		if r.IntN(2) == 0 {
			in.ops = append(in.ops, op{name: []string{"Update", "Create", "Upsert"}[r.IntN(3)], target: sfObjects[objs[0]], write: true})
		}
	}
}

const repoCount = 90

func repoName(org string, i int) string {
	parts := []string{"api", "web", "infra", "payments", "billing", "auth", "mobile", "data", "ml", "docs", "search", "edge", "ledger", "notify", "reports"}
	return fmt.Sprintf("%s/%s-%s", org, parts[i%len(parts)], []string{"svc", "lib", "cli", "config", "ops", "ui"}[i/len(parts)%6])
}

func isWrite(method string) bool {
	m := method[strings.LastIndexByte(method, '.')+1:]
	for _, v := range []string{"insert", "update", "patch", "delete", "create", "modify", "send"} {
		if strings.HasPrefix(m, v) {
			return true
		}
	}
	return false
}

// render turns a source's acts into its file: JSON lines of the vendor's
// records (Google: whole Reports API pages, newest first).
func (g *gen) render(src string) ([]byte, int, error) {
	acts := g.acts[src]
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].t.Before(acts[j].t) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	recs := make([]map[string]any, 0, len(acts))
	for i := range acts {
		recs = append(recs, g.record(&acts[i]))
	}
	switch src {
	case "google_workspace":
		// newest first, 1000 activities a page, as activities.list returns them
		for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
			recs[i], recs[j] = recs[j], recs[i]
		}
		for i := 0; i < len(recs); i += 1000 {
			j := min(i+1000, len(recs))
			page := map[string]any{"kind": "admin#reports#activities", "items": recs[i:j]}
			if j < len(recs) {
				page["nextPageToken"] = fmt.Sprintf("A:%d:%s", acts[len(acts)-1-j].t.UnixMilli(), shortID(g.r, 12))
			}
			if err := enc.Encode(page); err != nil {
				return nil, 0, err
			}
		}
	case "microsoft":
		// Graph activity logs arrive from Event Hubs in {"records":[…]} batches;
		// signIns and directoryAudits are one record a line.
		var batch []map[string]any
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := enc.Encode(map[string]any{"records": batch})
			batch = nil
			return err
		}
		for _, rec := range recs {
			if _, ok := rec["properties"]; ok {
				batch = append(batch, rec)
				if len(batch) == 50 {
					if err := flush(); err != nil {
						return nil, 0, err
					}
				}
				continue
			}
			if err := flush(); err != nil {
				return nil, 0, err
			}
			if err := enc.Encode(rec); err != nil {
				return nil, 0, err
			}
		}
		if err := flush(); err != nil {
			return nil, 0, err
		}
	default:
		for _, rec := range recs {
			if err := enc.Encode(rec); err != nil {
				return nil, 0, err
			}
		}
	}
	return buf.Bytes(), len(recs), nil
}

func (g *gen) record(a *act) map[string]any {
	switch a.in.src {
	case "google_workspace":
		return g.google(a)
	case "github":
		return g.github(a)
	case "okta":
		return g.okta(a)
	case "slack":
		return g.slack(a)
	case "microsoft":
		return g.microsoft(a)
	default:
		return g.salesforce(a)
	}
}

func (g *gen) google(a *act) map[string]any {
	in := a.in
	ps := []map[string]any{}
	name := "activity"
	switch a.kind {
	case actAuthorize, actRevoke:
		name = "authorize"
		if a.kind == actRevoke {
			name = "revoke"
		}
		ps = append(ps, map[string]any{"name": "client_id", "value": in.id}, map[string]any{"name": "app_name", "value": in.name},
			map[string]any{"name": "client_type", "value": "WEB"})
		scopes := a.scopes
		if a.kind == actRevoke {
			scopes = in.scopes
		}
		if len(scopes) > 0 {
			ps = append(ps, map[string]any{"name": "scope", "multiValue": scopes})
		}
	default:
		ps = append(ps, map[string]any{"name": "api_name", "value": a.op.target}, map[string]any{"name": "method_name", "value": a.op.name},
			map[string]any{"name": "client_id", "value": in.id}, map[string]any{"name": "num_response_bytes", "intValue": fmt.Sprint(a.bytes)},
			map[string]any{"name": "product_bucket", "value": a.op.extra}, map[string]any{"name": "app_name", "value": in.name},
			map[string]any{"name": "client_type", "value": "WEB"})
	}
	t := tenantByName(in.tenant)
	return map[string]any{
		"kind": "admin#reports#activity",
		"id": map[string]any{"time": a.t.UTC().Format("2006-01-02T15:04:05.000Z"), "uniqueQualifier": fmt.Sprint(-g.r.Int64()),
			"applicationName": "token", "customerId": t.googleCustomer},
		"etag":      fmt.Sprintf("\"%s/%s\"", b62(g.r, 27), b62(g.r, 12)),
		"actor":     map[string]any{"callerType": "USER", "email": a.u.email, "profileId": fmt.Sprintf("1%020d", hashN(a.u.email))},
		"ipAddress": a.ip,
		"events":    []map[string]any{{"type": "auth", "name": name, "parameters": ps}},
	}
}

func login(email string) string {
	l, _, _ := strings.Cut(email, "@")
	return strings.ReplaceAll(l, ".", "-")
}

func (g *gen) github(a *act) map[string]any {
	in := a.in
	ms := a.t.UnixMilli()
	org := in.aux["org"]
	rec := map[string]any{"@timestamp": ms, "created_at": ms, "_document_id": b62(g.r, 22), "org": org,
		"org_id": 7700 + int(hashN(org)%100), "actor_ip": a.ip, "request_id": fmt.Sprintf("%04X:%04X:%X:%X:%X", g.r.IntN(65536), g.r.IntN(65536), g.r.Uint32(), g.r.Uint32(), uint32(a.t.Unix()))}
	if a.kind == actAuthorize {
		rec["actor"], rec["actor_id"], rec["user_agent"] = login(a.u.email), 1000+hashN(a.u.email)%90000, a.ua
		rec["operation_type"] = "create"
		switch in.sub {
		case "app":
			rec["action"], rec["integration"], rec["installation_id"], rec["repository_selection"] = "integration_installation.create", in.aux["slug"], 50000000+hashN(in.id)%9999999, "selected"
		default:
			rec["action"], rec["oauth_application_id"], rec["oauth_application_name"], rec["token_scopes"] = "oauth_authorization.create", in.aux["oauth"], in.name, strings.Join(in.scopes, ",")
		}
		return rec
	}
	rec["action"] = a.op.name
	if a.op.extra != "" {
		rec["operation_type"] = a.op.extra
	}
	rec["user_agent"] = a.ua
	rec["repo"] = a.res
	if a.res == "" {
		repos := strings.Split(strings.TrimSuffix(in.aux["repos"], ","), ",")
		var i int
		fmt.Sscan(repos[g.r.IntN(len(repos))], &i)
		rec["repo"] = repoName(org, i)
	}
	git := strings.HasPrefix(a.op.name, "git.")
	switch in.sub {
	case "app":
		rec["actor"], rec["actor_id"], rec["actor_is_bot"] = in.aux["slug"]+"[bot]", 100000+hashN(in.id)%900000, true
		rec["programmatic_access_type"] = "GitHub App server-to-server token"
		// installation tokens live an hour; each region's workers mint their own
		tok := a.cred
		if tok == "" {
			tok = fmt.Sprint(hashN(in.id, fmt.Sprint(a.t.Unix()/3600), fmt.Sprint(a.region)) % 1e9)
		}
		rec["hashed_token"] = hashedToken(tok)
		if git {
			// Git events made with an installation token carry token_id 0
			// and no integration: only the [bot] actor names the app.
			rec["token_id"] = 0
		} else {
			rec["token_id"], rec["integration"] = tok, in.aux["slug"]
		}
	case "oauth":
		rec["actor"], rec["actor_id"], rec["actor_is_bot"] = login(a.u.email), 1000+hashN(a.u.email)%90000, false
		rec["programmatic_access_type"], rec["oauth_application_id"], rec["oauth_application_name"] = "OAuth access token", in.aux["oauth"], in.name
		tok := fmt.Sprint(hashN(in.id, a.u.email) % 1e9)
		rec["token_id"], rec["hashed_token"], rec["token_scopes"] = tok, hashedToken(tok), strings.Join(in.scopes, ",")
		if git {
			rec["token_id"] = 0
		}
	case "pat":
		rec["actor"], rec["actor_id"], rec["actor_is_bot"] = login(a.u.email), 1000+hashN(a.u.email)%90000, false
		rec["programmatic_access_type"], rec["hashed_token"], rec["token_scopes"] = "Personal access token (classic)", in.aux["hashed"], strings.Join(in.scopes, ",")
		rec["user_programmatic_access_name"] = in.name
		// API events also carry the PAT's token_id; git events do not.
		if !git {
			rec["token_id"] = hashN(in.id) % 1e8
		}
	}
	if git {
		rec["repository"], rec["transport_protocol_name"] = rec["repo"], "http"
		delete(rec, "repo")
	}
	return rec
}

// hashedToken is how GitHub's audit log names a token: base64 of its SHA-256.
func hashedToken(tok string) string {
	sum := sha256.Sum256([]byte("ghs_" + tok))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (g *gen) okta(a *act) map[string]any {
	in := a.in
	client := map[string]any{"id": in.id, "type": "PublicClientApp", "alternateId": in.id, "displayName": in.name, "detailEntry": nil}
	dbg := map[string]any{"requestUri": "/oauth2/" + in.aux["as"] + "/v1/token", "requestId": b62(g.r, 27), "threatSuspected": "false"}
	target := []map[string]any{}
	evType := in.ops[0].name
	if a.op != nil {
		evType = a.op.name
	}
	if in.sub == "delegated" {
		dbg["grantType"] = "refresh_token"
		target = append(target, map[string]any{"id": "rt." + fmt.Sprint(hashN(in.id, a.u.id)%1e12), "type": "refresh_token", "displayName": "Refresh Token"},
			map[string]any{"id": a.u.id, "type": "User", "alternateId": a.u.email, "displayName": a.u.email})
	} else {
		dbg["grantType"] = "client_credentials"
		target = append(target, map[string]any{"id": "AT." + b62(g.r, 32), "type": "access_token", "alternateId": nil, "displayName": "Access Token"})
	}
	target = append(target, map[string]any{"id": in.aux["as"], "type": "AuthorizationServer", "alternateId": "api", "displayName": "Default API"})
	outcome := map[string]any{"result": "SUCCESS", "reason": nil}
	msg := "OAuth2 access token is granted"
	scopes := strings.Join(in.scopes, " ")
	if len(a.scopes) > 0 {
		scopes = strings.Join(a.scopes, " ")
	}
	if a.fail {
		outcome = map[string]any{"result": "FAILURE", "reason": "invalid_client"}
		msg = "OAuth2 access token request"
		dbg["requestedScopes"] = scopes
		target = target[len(target)-1:]
		evType = "app.oauth2.as.token.grant"
	} else {
		dbg["grantedScopes"] = scopes
	}
	return map[string]any{
		"uuid": g.guid(), "published": a.t.UTC().Format("2006-01-02T15:04:05.000Z"), "eventType": evType, "version": "0",
		"severity": "INFO", "displayMessage": msg, "legacyEventType": nil,
		"actor":   client,
		"client":  map[string]any{"userAgent": map[string]any{"rawUserAgent": a.ua, "os": "Unknown", "browser": "UNKNOWN"}, "zone": "null", "device": "Unknown", "ipAddress": a.ip},
		"outcome": outcome, "target": target,
		"debugContext":          map[string]any{"debugData": dbg},
		"authenticationContext": map[string]any{"authenticationStep": 0, "externalSessionId": "trs" + b62(g.r, 22)},
		"transaction":           map[string]any{"type": "WEB", "id": b62(g.r, 27), "detail": map[string]any{}},
	}
}

func (g *gen) slack(a *act) map[string]any {
	in := a.in
	t := tenantByName(in.tenant)
	loc := map[string]any{"type": "workspace", "id": "T0" + strings.ToUpper(t.name) + "01", "name": t.name, "domain": t.name}
	usr := map[string]any{"id": "W" + strings.ToUpper(fmt.Sprintf("%08x", uint32(hashN(a.u.email)))), "name": login(a.u.email), "email": a.u.email, "team": loc["id"]}
	app := map[string]any{"id": in.id, "name": in.name}
	rec := map[string]any{"id": g.guid(), "date_create": a.t.Unix(), "actor": map[string]any{"type": "user", "user": usr}}
	switch a.kind {
	case actAuthorize, actScopes:
		ent := map[string]any{"id": in.id, "name": in.name, "is_distributed": true, "is_directory_approved": false, "scopes": a.scopes}
		rec["entity"] = map[string]any{"type": "app", "app": ent}
		rec["context"] = map[string]any{"location": loc, "ua": a.ua, "ip_address": a.ip, "session_id": fmt.Sprint(hashN(a.u.email) % 1e13)}
		rec["action"] = "app_installed"
		if a.kind == actScopes {
			rec["action"] = "app_scopes_expanded"
			ent["scopes"] = append(append([]string{}, a.prev...), a.scopes...)
			rec["details"] = map[string]any{"new_scopes": a.scopes, "previous_scopes": a.prev, "is_internal_integration": false, "is_token_rotation_enabled_app": false}
		}
		return rec
	}
	file := a.res
	if file == "" {
		file = "F0" + strings.ToUpper(shortID(g.r, 9))
	}
	action := a.op.name
	if a.fail {
		action = "file_downloaded_blocked"
	}
	rec["action"] = action
	rec["entity"] = map[string]any{"type": "file", "file": map[string]any{"id": file, "name": strings.ToLower(file) + ".pdf", "filetype": "pdf", "title": strings.ToLower(file) + ".pdf"}}
	rec["context"] = map[string]any{"location": loc, "ua": a.ua, "ip_address": a.ip, "app": app}
	return rec
}

func (g *gen) microsoft(a *act) map[string]any {
	in := a.in
	ts := a.t.UTC().Format("2006-01-02T15:04:05.000Z")
	d := int(a.t.Sub(g.opt.Start).Hours() / 24)
	tenantID := guidFrom("tenant", in.tenant)
	switch a.kind {
	case actSignIn:
		res := a.res
		if res == "" {
			opts := strings.Split(in.aux["resources"], ",")
			res = opts[g.r.IntN(len(opts))]
		}
		code := 0
		reason := "Other."
		if a.fail {
			code, reason = 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."
		}
		key := a.cred
		if key == "" {
			key = in.keyID(d)
		}
		return map[string]any{"id": g.guid(), "createdDateTime": ts, "userDisplayName": nil, "userPrincipalName": nil, "userId": "",
			"appId": in.id, "appDisplayName": in.name, "ipAddress": a.ip, "status": map[string]any{"errorCode": code, "failureReason": reason},
			"clientAppUsed": nil, "userAgent": nil, "correlationId": g.guid(), "conditionalAccessStatus": "notApplied", "isInteractive": false,
			"tokenIssuerType": "AzureAD", "servicePrincipalId": in.aux["sp"], "servicePrincipalName": in.name,
			"resourceDisplayName": res, "resourceId": resourceIDs[res], "resourceTenantId": tenantID, "homeTenantId": tenantID,
			"signInEventTypes": []string{"servicePrincipal"}, "servicePrincipalCredentialKeyId": key, "servicePrincipalCredentialThumbprint": "",
			"clientCredentialType": "clientSecret"}
	case actAuthorize, actAdmin:
		initiator := map[string]any{"user": map[string]any{"id": guidFrom(in.tenant, a.u.email), "displayName": nil, "userPrincipalName": a.u.email, "ipAddress": a.ip, "userType": nil}, "app": nil}
		rec := map[string]any{"id": "Directory_" + g.guid() + "_" + strings.ToUpper(shortID(g.r, 5)) + "_" + fmt.Sprint(g.r.IntN(1e8)), "category": "ApplicationManagement",
			"correlationId": g.guid(), "result": "success", "resultReason": "", "activityDateTime": ts, "loggedByService": "Core Directory",
			"initiatedBy": initiator, "additionalDetails": []map[string]any{{"key": "User-Agent", "value": a.ua}, {"key": "AppId", "value": in.id}}}
		if a.kind == actAdmin {
			rec["activityDisplayName"], rec["operationType"] = a.op.name, "Update"
			rec["targetResources"] = []map[string]any{{"id": in.aux["obj"], "displayName": in.name, "type": "Application", "modifiedProperties": []map[string]any{
				{"displayName": "KeyDescription", "oldValue": "[]", "newValue": fmt.Sprintf("[\"[KeyIdentifier=%s,KeyType=Password,KeyUsage=Verify,DisplayName=rotated]\"]", in.keyID(d+1))}}}}
			return rec
		}
		consent := fmt.Sprintf("\"[] => [[Id: %s, ClientId: %s, PrincipalId: , ResourceId: %s, ConsentType: AllPrincipals, Scope:  %s, CreatedDateTime: , LastModifiedDateTime ]]; \"",
			b62(g.r, 20), in.aux["sp"], guidFrom("graph", in.tenant), strings.Join(in.scopes, " "))
		rec["activityDisplayName"], rec["operationType"] = "Consent to application", "Assign"
		rec["targetResources"] = []map[string]any{{"id": in.aux["sp"], "displayName": in.name, "type": "ServicePrincipal", "modifiedProperties": []map[string]any{
			{"displayName": "ConsentContext.IsAdminConsent", "oldValue": nil, "newValue": "\"True\""},
			{"displayName": "ConsentContext.IsAppOnly", "oldValue": nil, "newValue": fmt.Sprintf("\"%v\"", in.sub == "apponly")},
			{"displayName": "ConsentAction.Permissions", "oldValue": nil, "newValue": consent},
			{"displayName": "TargetId.ServicePrincipalNames", "oldValue": nil, "newValue": fmt.Sprintf("\"%s;https://%s.example.com\"", in.id, strings.ToLower(strings.Fields(in.name)[0]))}}}}
		return rec
	}
	path := a.res
	if path == "" {
		path = a.op.target
		if strings.Contains(path, "{u}") {
			u := a.u.id
			if in.sub == "apponly" {
				u = guidFrom(in.tenant, in.users[g.r.IntN(len(in.users))].email)
			}
			path = strings.ReplaceAll(path, "{u}", u)
		}
	}
	status := 200
	if a.op.name == "POST" {
		status = 202
	}
	if a.fail {
		status = 403
	}
	p := map[string]any{"timeGenerated": ts, "location": "westeurope", "requestId": g.guid(), "operationId": g.guid(), "clientRequestId": g.guid(),
		"apiVersion": "v1.0", "requestMethod": a.op.name, "responseStatusCode": status, "tenantId": tenantID, "durationMs": 20 + g.r.IntN(400),
		"responseSizeBytes": a.bytes, "ipAddress": a.ip, "userAgent": a.ua, "requestUri": "https://graph.microsoft.com" + path,
		"appId": in.id, "tokenIssuedAt": a.t.Add(-time.Duration(g.r.IntN(3000)) * time.Second).UTC().Format("2006-01-02T15:04:05Z"),
		"identityProvider": "https://sts.windows.net/" + tenantID + "/"}
	if in.sub == "apponly" {
		p["servicePrincipalId"], p["roles"], p["scopes"], p["userId"], p["clientAuthMethod"] = in.aux["sp"], strings.Join(in.scopes, " "), "", "", 1
		p["signInActivityId"] = b62from(in.id, fmt.Sprint(a.t.Unix()/3600), fmt.Sprint(a.region))
	} else {
		p["userId"], p["scopes"], p["roles"], p["clientAuthMethod"] = a.u.id, strings.Join(in.scopes, " "), "", 0
		p["signInActivityId"] = b62from(in.id, a.u.id, fmt.Sprint(d))
	}
	return map[string]any{"time": ts, "resourceId": "/TENANTS/" + tenantID + "/PROVIDERS/MICROSOFT.AADIAM", "operationName": "Microsoft Graph Activity",
		"operationVersion": "v1.0", "category": "MicrosoftGraphActivityLogs", "tenantId": tenantID, "resultSignature": fmt.Sprint(status),
		"callerIpAddress": a.ip, "level": "Informational", "properties": p}
}

var resourceIDs = map[string]string{
	"Microsoft Graph":                      graphResource,
	"Office 365 Exchange Online":           "00000002-0000-0ff1-ce00-000000000000",
	"Office 365 SharePoint Online":         "00000003-0000-0ff1-ce00-000000000000",
	"Azure Key Vault":                      "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
	"Windows Azure Service Management API": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
	"Microsoft Teams Services":             "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
	"Office 365 Management APIs":           "c5393580-f805-4401-95e8-94b7a6ef2fc2",
	"Windows Azure Active Directory":       "00000002-0000-0000-c000-000000000000",
}

func b62from(parts ...string) string {
	const s = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	h := hashN(parts...)
	b := make([]byte, 22)
	for i := range b {
		b[i] = s[h%62]
		h = h*6364136223846793005 + 1442695040888963407
	}
	return string(b)
}

func (g *gen) salesforce(a *act) map[string]any {
	in := a.in
	d := int(a.t.Sub(g.opt.Start).Hours() / 24)
	login := a.cred
	if login == "" {
		login = b62from(in.id, "login", fmt.Sprint(d), fmt.Sprint(a.region))[:16]
	}
	rows := a.rows
	ent := a.op.target
	if a.res != "" {
		ent = a.res
	}
	// Salesforce names the connected app on the call that opens a session
	// and leaves ConnectedAppId null on the calls that reuse its token
	// (about two in three here, by a hash so the draw of the rest stays).
	var appID any = in.aux["appid18"]
	if hashN(in.id, login, a.t.UTC().Format(time.RFC3339Nano))%3 != 0 {
		appID = nil
	}
	return map[string]any{"attributes": map[string]any{"type": "ApiEvent", "url": "/services/data/v61.0/sobjects/ApiEvent/" + b62(g.r, 18)},
		"EventIdentifier": g.guid(), "EventDate": a.t.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"UserId": in.aux["userid"], "Username": in.aux["user"], "SourceIp": a.ip, "UserAgent": a.ua,
		"ConnectedAppId": appID, "Client": in.aux["client"], "Application": in.name, "Operation": a.op.name, "QueriedEntities": ent,
		"RowsProcessed": float64(rows), "SessionKey": b62from(in.id, "session", login)[:16], "LoginKey": login,
		"ApiType": "REST API", "ApiVersion": 61.0, "Platform": "Unknown", "SessionLevel": "STANDARD"}
}
