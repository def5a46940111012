package slack

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sampleYAML []byte

const testToken = "xoxp-1234567890-0987654321-test"

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, appName, credType, category, outcome, principal, resource, ip, ua, time string
		scopes                                                                                   []string
	}
	loc := `"context":{"location":{"type":"workspace","id":"T1"},"ua":"UA/1","ip_address":"198.51.100.7"}`
	cases := []struct {
		name    string
		raw     string
		want    *want
		wantErr string
	}{
		{
			name: "install grants the app's scopes",
			raw:  `{"id":"e1","date_create":1793067187,"action":"app_installed","actor":{"type":"user","user":{"id":"W1","email":"ops@example.com"}},"entity":{"type":"app","app":{"id":"A1","name":"CRM","scopes":["chat:write","users:read"]}},` + loc + `}`,
			want: &want{id: "e1", integration: "A1", appName: "CRM", credType: "oauth_token", category: "authorize", outcome: "success", principal: "ops@example.com",
				resource: "workspace:T1", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T02:13:07.000Z", scopes: []string{"chat:write", "users:read"}},
		},
		{
			name: "scope expansion carries only the new scopes",
			raw:  `{"id":"e2","date_create":1793067187,"action":"app_scopes_expanded","actor":{"type":"user","user":{"id":"W1"}},"entity":{"type":"app","app":{"id":"A1","name":"CRM","scopes":["chat:write","files:read"]}},` + loc + `,"details":{"new_scopes":["files:read"],"previous_scopes":["chat:write"]}}`,
			want: &want{id: "e2", integration: "A1", appName: "CRM", credType: "oauth_token", category: "authorize", outcome: "success", principal: "W1",
				resource: "workspace:T1", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T02:13:07.000Z", scopes: []string{"files:read"}},
		},
		{
			name: "uninstall revokes",
			raw:  `{"id":"e3","date_create":1793073000,"action":"app_uninstalled","actor":{"type":"user","user":{"id":"W0","email":"it@example.com"}},"entity":{"type":"app","app":{"id":"A1","name":"CRM"}},` + loc + `}`,
			want: &want{id: "e3", integration: "A1", appName: "CRM", credType: "oauth_token", category: "revoke", outcome: "success", principal: "it@example.com",
				resource: "workspace:T1", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T03:50:00.000Z"},
		},
		{
			name: "bot token upgrade is an authorize of a bot token",
			raw:  `{"id":"e4","date_create":"1793071000","action":"bot_token_upgraded","actor":{"type":"user","user":{"id":"W1"}},"entity":{"type":"app","app":{"id":"A1","scopes":["files:read"]}},` + loc + `}`,
			want: &want{id: "e4", integration: "A1", credType: "bot_token", category: "authorize", outcome: "success", principal: "W1",
				resource: "workspace:T1", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T03:16:40.000Z", scopes: []string{"files:read"}},
		},
		{
			name: "token preserved after the installer left is admin",
			raw:  `{"id":"e5","date_create":1793072000,"action":"app_token_preserved","actor":{"type":"user","user":{"id":"USLACKUSER"}},"entity":{"type":"app","app":{"id":"A2","name":"Legacy"}},"context":{"location":{"type":"enterprise","id":"E1"}}}`,
			want: &want{id: "e5", integration: "A2", appName: "Legacy", credType: "oauth_token", category: "admin", outcome: "success", principal: "USLACKUSER",
				resource: "enterprise:E1", time: "2026-10-27T03:33:20.000Z"},
		},
		{
			name: "an app downloading a file is access to that file",
			raw:  `{"id":"e6","date_create":1793070000,"action":"file_downloaded","actor":{"type":"user","user":{"id":"W1"}},"entity":{"type":"file","file":{"id":"F1","name":"payroll.xlsx"}},"context":{"location":{"type":"workspace","id":"T1"},"ua":"python-requests/2.31.0","ip_address":"102.89.0.1","app":{"id":"A1","name":"CRM"}}}`,
			want: &want{id: "e6", integration: "A1", appName: "CRM", credType: "oauth_token", category: "access", outcome: "success", principal: "W1",
				resource: "file:F1", ip: "102.89.0.1", ua: "python-requests/2.31.0", time: "2026-10-27T03:00:00.000Z"},
		},
		{
			name: "a blocked download by an app is an auth failure",
			raw:  `{"id":"e7","date_create":1793070000,"action":"file_downloaded_blocked","actor":{"type":"user","user":{"id":"UBOT1","name":"crm-bot"}},"entity":{"type":"file","file":{"id":"F1"}},"context":{"app":{"id":"A1","name":"CRM"}}}`,
			want: &want{id: "e7", integration: "A1", appName: "CRM", credType: "oauth_token", category: "auth_failure", outcome: "failure", principal: "UBOT1",
				resource: "file:F1", time: "2026-10-27T03:00:00.000Z"},
		},
		{
			name: "install details: user and bot scopes, granular bot token with rotation",
			raw:  `{"id":"e9","date_create":1793067187,"action":"app_installed","actor":{"type":"user","user":{"id":"W1"}},"entity":{"type":"app","app":{"id":"A1","name":"CRM"}},` + loc + `,"details":{"scopes":["channels:read"],"bot_scopes":["chat:write","channels:read"],"is_token_rotation_enabled_app":true,"granular_bot_token":true}}`,
			want: &want{id: "e9", integration: "A1", appName: "CRM", credType: "rotating_bot_token", category: "authorize", outcome: "success", principal: "W1",
				resource: "workspace:T1", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T02:13:07.000Z", scopes: []string{"channels:read", "chat:write"}},
		},
		{
			name: "a workflow is its own integration",
			raw:  `{"id":"e10","date_create":1793067187,"action":"workflow_published","actor":{"type":"user","user":{"id":"W1"}},"entity":{"type":"workflow","workflow":{"id":"Wf0123","name":"Onboarding"}},` + loc + `}`,
			want: &want{id: "e10", integration: "workflow:Wf0123", appName: "Onboarding", credType: "oauth_token", category: "authorize", outcome: "success", principal: "W1",
				resource: "workflow:Wf0123", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T02:13:07.000Z"},
		},
		{name: "an actor.app the API does not send is not read", raw: `{"id":"e11","date_create":1793070100,"action":"file_downloaded","actor":{"type":"user","user":{"id":"W9"},"app":{"id":"A1"}},"entity":{"type":"file","file":{"id":"F2"}}}`},
		{name: "a person downloading a file is not app activity", raw: `{"id":"e8","date_create":1793070100,"action":"file_downloaded","actor":{"type":"user","user":{"id":"W9"}},"entity":{"type":"file","file":{"id":"F2"}}}`},
		{name: "missing time", raw: `{"id":"x","action":"app_installed","entity":{"app":{"id":"A1"}}}`, wantErr: "no date_create"},
		{name: "time in the wrong unit", raw: `{"id":"x","date_create":"2026-10-27","action":"app_installed","entity":{"app":{"id":"A1"}}}`, wantErr: `date_create "2026-10-27"`},
		{name: "not an audit entry", raw: `{"ok":true,"entries":[]}`, wantErr: "no action"},
		{name: "scopes of the wrong shape", raw: `{"id":"x","date_create":1,"action":"app_installed","details":{"new_scopes":"files:read"}}`, wantErr: "decode audit entry"},
	}
	src := NewNormalizer("acme")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, ingesttest.One(c.want), c.wantErr, func(t *testing.T, ev schemas.Event) want {
				if ev.Tenant != "acme" || string(ev.Raw) != c.raw || !strings.HasPrefix(ev.Credential.ID, "i-") {
					t.Errorf("tenant %q, credential id %q, or raw not kept", ev.Tenant, ev.Credential.ID)
				}
				return want{id: ev.EventID, integration: ev.Integration.ID, appName: ev.Integration.Name, credType: ev.Credential.Type,
					category: ev.Action.Category, outcome: ev.Outcome, principal: ev.Principal.ID, ip: ev.Network.IP,
					ua: ev.Network.UserAgent, time: ingesttest.TimeString(ev), scopes: ev.Scopes, resource: ingesttest.ResourceString(ev)}
			})
		})
	}
}

func TestInstallationIDSeparatesWorkspaces(t *testing.T) {
	if installationID("A1", "T1") == installationID("A1", "T2") || installationID("A1", "T1") != installationID("A1", "T1") {
		t.Fatal("installation id must be stable per (app, workspace) and differ across workspaces")
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("acme")) }

func FuzzNormalize(f *testing.F) { ingesttest.FuzzNormalize(f, NewNormalizer("acme")) }

// fakeAuditLogs reproduces GET /audit/v1/logs: bearer auth, entries newest
// first, oldest (inclusive, epoch seconds), limit, action, and cursor paging
// through response_metadata.next_cursor (empty on the last page). The first
// request carrying a cursor gets a 429 with Retry-After.
type fakeAuditLogs struct{ *ingesttest.FakeAPI }

func newFakeAuditLogs(t *testing.T, records [][]byte) *fakeAuditLogs {
	f := &fakeAuditLogs{}
	f.FakeAPI = ingesttest.NewFakeAPI(t, records, "application/json", ingesttest.FakeAuth{Header: "Bearer " + testToken,
		Body: `{"ok":false,"error":"invalid_auth"}`}, f.serve)
	return f
}

func (f *fakeAuditLogs) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/audit/v1/logs" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
		return
	}
	q := r.URL.Query()
	f.Queries = append(f.Queries, r.URL.RawQuery)
	if q.Get("action") != strings.Join(DefaultActions, ",") {
		f.T.Errorf("action filter %q, want the default actions", q.Get("action"))
	}
	oldest, _ := strconv.ParseInt(q.Get("oldest"), 10, 64)
	match := ingesttest.Since(f.Records, time.Unix(oldest, 0), recordKey)
	ingesttest.SortByTime(match, recordKey, true)
	off := 0
	if c := q.Get("cursor"); c != "" {
		if f.RateLimitOnce(w, "", `{"ok":false,"error":"ratelimited"}`, "Retry-After", "3") {
			return
		}
		b, _ := base64.StdEncoding.DecodeString(c)
		off, _ = strconv.Atoi(strings.TrimPrefix(string(b), "next:"))
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	page, end := ingesttest.PageOf(match, off, limit)
	next := ""
	if end < len(match) {
		next = base64.StdEncoding.EncodeToString([]byte("next:" + strconv.Itoa(end)))
	}
	fmt.Fprintf(w, `{"entries":%s,"response_metadata":{"next_cursor":%q}}`, ingesttest.JSONArray(page), next)
}

func newTestSource(t *testing.T, f *fakeAuditLogs, limit int) *Source {
	t.Setenv("SLACK_AUDIT_TOKEN", testToken)
	return ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), func(v any) { v.(*Config).Limit = limit }).(*Source)
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeAuditLogs(t, records)
	res := ingesttest.Run(t, newTestSource(t, f, 3))
	if len(res.Records) != len(records) || res.Pages != 3 {
		t.Errorf("read %d records in %d pages, want %d in 3", len(res.Records), res.Pages, len(records))
	}
	if rl := res.RateLimits[0]; rl.Status != http.StatusTooManyRequests || rl.RetryAfter != 3*time.Second {
		t.Errorf("rate limit = %+v, want 429 with Retry-After 3s", rl)
	}
	if len(res.Events) != len(records)-1 {
		t.Errorf("got %d events, want one per record but the person's download", len(res.Events))
	}
	// Newest first: the window's end is only known from the first page, and
	// must survive the later pages in the token.
	if want := time.Unix(1793073500, 0).UTC(); !res.Final.Time.Equal(want) || res.Final.Token != "" {
		t.Errorf("final cursor %+v, want time %s", res.Final, want)
	}
	for _, q := range f.Queries[1 : len(f.Queries)-1] { // the last is the re-poll from the final cursor
		if !strings.Contains(q, "cursor=") {
			t.Errorf("follow-up request %q has no cursor", q)
		}
	}
}

func TestFetchResumesFromCursorWithoutGapOrDuplicate(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeAuditLogs(t, records[:2]) // both at 1793067187
	src := newTestSource(t, f, 1000)
	page, err := src.Fetch(context.Background(), ingest.Cursor{})
	if err != nil || !page.Done || len(page.Records) != 2 {
		t.Fatalf("first poll: %d records, done %v, err %v", len(page.Records), page.Done, err)
	}
	sameSecond := `{"id":"late-same-second","date_create":1793067187,"action":"app_resources_added","entity":{"type":"app","app":{"id":"A0W1CRMSYNC"}}}`
	f.Records = append(f.Records, []byte(sameSecond), records[2])
	page, err = src.Fetch(context.Background(), page.Next)
	if err != nil {
		t.Fatal(err)
	}
	ids := ingesttest.IDs(page.Records, recordKey)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"2123a45b-6c7d-8e9f-a0b1-c2d3e4f5a6b9", "late-same-second"}) {
		t.Errorf("second poll delivered %v, want only the two new entries", ids)
	}
	if !strings.Contains(f.Queries[1], "oldest=1793067187") {
		t.Errorf("second poll %q does not start at the cursor second", f.Queries[1])
	}
}

func TestFetchAuthErrorIsNotRetried(t *testing.T) {
	f := newFakeAuditLogs(t, nil)
	src, _ := New(ingesttest.YAML([]byte("token: xoxp-wrong\n")), ingest.Options{BaseURL: f.URL})
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "invalid_auth") {
		t.Fatalf("err = %v, want an invalid_auth error", err)
	}
	if strings.Contains(err.Error(), "xoxp-wrong") {
		t.Fatal("error leaks the token")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"limit: 10\n", "token: required"},
		{"token: x\nlimit: 0\n", "limit 0"},
		{"token: x\nactions: ['app_installed,app_uninstalled']\n", "not an audit action name"},
		{"token: x\nactions: [app_installed]\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}

// TestIdentityIsStable: one app installed in one workspace → one integration
// id and one credential id, whatever optional fields an entry carries.
func TestIdentityIsStable(t *testing.T) {
	records := []string{
		`{"id":"s1","date_create":1793067187,"action":"app_installed","actor":{"type":"user","user":{"id":"W1"}},"entity":{"type":"app","app":{"id":"A1","name":"CRM"}},"context":{"location":{"type":"workspace","id":"T1"}}}`,
		`{"id":"s2","date_create":1793067187,"action":"app_scopes_expanded","actor":{"type":"user","user":{"id":"W1","email":"a@example.com"}},"entity":{"type":"app","app":{"id":"A1","name":"CRM","is_distributed":false,"scopes":["chat:write"]}},"context":{"location":{"type":"workspace","id":"T1"},"ua":"x","ip_address":"198.51.100.7"},"details":{"new_scopes":["files:read"],"previous_scopes":["chat:write"],"is_token_rotation_enabled_app":false,"granular_bot_token":true}}`,
		`{"id":"s3","date_create":1793067187,"action":"file_downloaded","actor":{"type":"user","user":{"id":"UBOT"}},"entity":{"type":"file","file":{"id":"F1"}},"context":{"location":{"type":"workspace","id":"T1"},"app":{"id":"A1"}}}`,
	}
	n := NewNormalizer("acme")
	var cred string
	for i, raw := range records {
		evs, err := n.Normalize([]byte(raw))
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %d events, err %v", raw, len(evs), err)
		}
		if i == 0 {
			cred = evs[0].Credential.ID
		}
		if evs[0].Integration.ID != "A1" || evs[0].Credential.ID != cred {
			t.Errorf("%s: integration %q credential %q, want A1 %q", raw, evs[0].Integration.ID, evs[0].Credential.ID, cred)
		}
	}
}

// TestNormalizeDocumentedShapes: entries written from Slack's Audit Logs API
// documentation (actor with type and user only, context.app, install and
// scope-change details, a workflow entity) against their golden events.
func TestNormalizeDocumentedShapes(t *testing.T) {
	ingesttest.GoldenEvents(t, NewNormalizer("acme"), ingesttest.ReadLines(t, "testdata/golden/documented.jsonl"),
		"testdata/golden/documented.normalized.jsonl", *ingesttest.Update)
}
