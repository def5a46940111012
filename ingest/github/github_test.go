package github

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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

const testToken = "ghp_test_token_0123456789"

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, appName, credType, credID, category, principal, principalType string
		resource, ip, ua, tenant, time                                                 string
		scopes                                                                         []string
	}
	cases := []struct {
		name    string
		raw     string
		want    *want // nil: the record yields no event
		wantErr string
	}{
		{
			name: "GitHub App installation token downloads a repo archive",
			raw:  `{"@timestamp":1761531187412,"_document_id":"yq3G","action":"repo.download_zip","actor":"crm-sync[bot]","actor_ip":"102.89.0.1","user_agent":"python-requests/2.31.0","business":"example-corp","org":"example","repo":"example/payments","operation_type":"access","programmatic_access_type":"GitHub App server-to-server token","integration":"crm-sync","oauth_application_id":0,"token_id":98123,"hashed_token":"k4fV"}`,
			want: &want{id: "yq3G", integration: "github_app:crm-sync", appName: "crm-sync", credType: "app_installation_token", credID: "k4fV",
				category: "access", principal: "crm-sync[bot]", principalType: "bot", resource: "repository:example/payments",
				ip: "102.89.0.1", ua: "python-requests/2.31.0", tenant: "example-corp", time: "2025-10-27T02:13:07.412Z"},
		},
		{
			name: "classic PAT known only by its hash clones over git",
			raw:  `{"@timestamp":1761531190000,"_document_id":"g1","action":"git.clone","actor":"release-bot-user","repository":"example/payments","programmatic_access_type":"Personal access token (classic)","hashed_token":"9sQ1","token_scopes":"repo,read:org"}`,
			want: &want{id: "g1", integration: "pat:9sQ1", appName: "release-bot-user", credType: "pat", credID: "9sQ1", category: "access",
				principal: "release-bot-user", principalType: "user", resource: "repository:example/payments", tenant: "default", time: "2025-10-27T02:13:10.000Z",
				scopes: []string{"repo", "read:org"}},
		},
		{
			name: "fine-grained PAT push is a modification keyed by its hashed token, not its token id",
			raw:  `{"@timestamp":1761531190000,"_document_id":"g2","action":"git.push","actor":"u","org":"example","repository":"example/payments","programmatic_access_type":"Fine-grained personal access token","token_id":"4410332","hashed_token":"Zm9v"}`,
			want: &want{id: "g2", integration: "pat:Zm9v", appName: "u", credType: "pat_fine_grained", credID: "Zm9v", category: "modify",
				principal: "u", principalType: "user", resource: "repository:example/payments", tenant: "example", time: "2025-10-27T02:13:10.000Z"},
		},
		{
			name: "OAuth app authorization is an authorize with the granted scopes",
			raw:  `{"@timestamp":1761531251033,"_document_id":"o1","action":"oauth_authorization.create","actor":"alice","org":"example","operation_type":"create","oauth_application_id":4521,"oauth_application_name":"Pipeline CRM","token_scopes":"repo, read:org"}`,
			want: &want{id: "o1", integration: "oauth_app:4521", appName: "Pipeline CRM", category: "authorize", principal: "alice", principalType: "user",
				resource: "organization:example", tenant: "example", time: "2025-10-27T02:14:11.033Z", scopes: []string{"repo", "read:org"}},
		},
		{
			name: "fine-grained PAT access revoked by an admin",
			raw:  `{"@timestamp":1761531480000,"_document_id":"r1","action":"personal_access_token.access_revoked","actor":"org-admin","org":"example","operation_type":"remove","programmatic_access_type":"Fine-grained personal access token","token_id":"4410332"}`,
			want: &want{id: "r1", integration: "pat:4410332", appName: "org-admin", credType: "pat_fine_grained", credID: "4410332", category: "revoke",
				principal: "org-admin", principalType: "user", resource: "organization:example", tenant: "example", time: "2025-10-27T02:18:00.000Z"},
		},
		{
			name: "app uninstall with an RFC 3339 created_at and no document id",
			raw:  `{"created_at":"2026-10-27T02:20:00.125Z","action":"integration_installation.destroy","actor":"org-admin","org":"example","integration":"old-ci"}`,
			want: &want{id: "h", integration: "github_app:old-ci", appName: "old-ci", category: "revoke", principal: "org-admin", principalType: "user",
				resource: "organization:example", tenant: "example", time: "2026-10-27T02:20:00.125Z"},
		},
		{
			name: "a [bot] actor with no token fields is its app",
			raw:  `{"@timestamp":1761531540999,"_document_id":"d1","action":"pull_request.create","actor":"dependabot[bot]","repo":"example/payments","operation_type":"create"}`,
			want: &want{id: "d1", integration: "github_app:dependabot", appName: "dependabot", category: "modify", principal: "dependabot[bot]", principalType: "bot",
				resource: "repository:example/payments", tenant: "default", time: "2025-10-27T02:19:00.999Z"},
		},
		{
			name: "installation-token git fetch: token_id 0 is no id, the bot's slug is the app, the hash the credential",
			raw:  `{"@timestamp":1761531200000,"_document_id":"it1","action":"git.fetch","actor":"crm-sync[bot]","actor_is_bot":true,"repository":"example/payments","programmatic_access_type":"GitHub App server-to-server token","token_id":0,"hashed_token":"aW5zdA=="}`,
			want: &want{id: "it1", integration: "github_app:crm-sync", appName: "crm-sync", credType: "app_installation_token", credID: "aW5zdA==", category: "access",
				principal: "crm-sync[bot]", principalType: "bot", resource: "repository:example/payments", tenant: "default", time: "2025-10-27T02:13:20.000Z"},
		},
		{
			name: "a null token_id with no hash leaves the credential id empty, never 0",
			raw:  `{"@timestamp":1761531200000,"_document_id":"it2","action":"git.clone","actor":"crm-sync[bot]","repository":"example/payments","programmatic_access_type":"GitHub App server-to-server token","token_id":null}`,
			want: &want{id: "it2", integration: "github_app:crm-sync", appName: "crm-sync", credType: "app_installation_token", category: "access",
				principal: "crm-sync[bot]", principalType: "bot", resource: "repository:example/payments", tenant: "default", time: "2025-10-27T02:13:20.000Z"},
		},
		{
			name: "an integration name is slugged like the bot actor",
			raw:  `{"@timestamp":1761531200000,"_document_id":"it3","action":"integration_installation.create","actor":"org-admin","org":"example","integration":"CRM Sync"}`,
			want: &want{id: "it3", integration: "github_app:crm-sync", appName: "CRM Sync", category: "authorize",
				principal: "org-admin", principalType: "user", resource: "organization:example", tenant: "example", time: "2025-10-27T02:13:20.000Z"},
		},
		{
			name: "api.request with status 404 is a failed read; method and route kept",
			raw:  `{"@timestamp":1761531200000,"_document_id":"a1","action":"api.request","actor":"u","org":"example","programmatic_access_type":"Personal access token (classic)","token_id":77,"hashed_token":"cGF0","request_method":"GET","route":"/repos/{owner}/{repo}/contents/{path}","url_path":"/repos/example/payments/contents/.env","status_code":404}`,
			want: &want{id: "a1", integration: "pat:cGF0", appName: "u", credType: "pat", credID: "cGF0", category: "access",
				principal: "u", principalType: "user", resource: "organization:example", tenant: "example", time: "2025-10-27T02:13:20.000Z"},
		},
		{
			name: "api.request rejected with 401 is an auth failure",
			raw:  `{"@timestamp":1761531200000,"_document_id":"a2","action":"api.request","actor":"u","programmatic_access_type":"Personal access token (classic)","hashed_token":"cGF0","request_method":"POST","route":"/repos/{owner}/{repo}/issues","status_code":"401"}`,
			want: &want{id: "a2", integration: "pat:cGF0", appName: "u", credType: "pat", credID: "cGF0", category: "auth_failure",
				principal: "u", principalType: "user", tenant: "default", time: "2025-10-27T02:13:20.000Z"},
		},
		{
			name: "a person in the web UI is not token activity",
			raw:  `{"@timestamp":1761531360000,"_document_id":"w1","action":"org.update_member","actor":"org-admin","org":"example","operation_type":"modify"}`,
		},
		{name: "missing time", raw: `{"_document_id":"x","action":"git.clone","token_id":1}`, wantErr: "no @timestamp or created_at"},
		{name: "unreadable time", raw: `{"@timestamp":"yesterday","action":"git.clone","token_id":1}`, wantErr: `@timestamp "yesterday"`},
		{name: "not an audit entry", raw: `{"@timestamp":1761531190000,"foo":"bar"}`, wantErr: "no action"},
		{name: "not an object", raw: `["a"]`, wantErr: "decode audit record"},
		{name: "id of the wrong type", raw: `{"@timestamp":1,"action":"a","token_id":{"x":1}}`, wantErr: "decode audit record"},
	}
	src := NewNormalizer("default")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, ingesttest.One(c.want), c.wantErr, func(t *testing.T, ev schemas.Event) want {
				if string(ev.Raw) != c.raw {
					t.Error("Raw is not the input record")
				}
				got := want{id: ev.EventID, integration: ev.Integration.ID, appName: ev.Integration.Name, credType: ev.Credential.Type, credID: ev.Credential.ID,
					category: ev.Action.Category, principal: ev.Principal.ID, principalType: ev.Principal.Type, ip: ev.Network.IP, ua: ev.Network.UserAgent,
					tenant: ev.Tenant, time: ingesttest.TimeString(ev), scopes: ev.Scopes, resource: ingesttest.ResourceString(ev)}
				if c.want.id == "h" && strings.HasPrefix(got.id, "h") && len(got.id) == 25 {
					got.id = "h" // a content hash: stable, checked by the fuzz invariant
				}
				return got
			})
		})
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("default")) }

func FuzzNormalize(f *testing.F) { ingesttest.FuzzNormalize(f, NewNormalizer("default")) }

// fakeAuditLog reproduces GET /orgs/{org}/audit-log: bearer auth, the API
// version header, phrase created:>= filtering at whole seconds, per_page, an
// opaque after= cursor in a Link rel="next" header, and one 429 with
// Retry-After on the first follow-up page.
type fakeAuditLog struct{ *ingesttest.FakeAPI }

func newFakeAuditLog(t *testing.T, records [][]byte) *fakeAuditLog {
	f := &fakeAuditLog{}
	f.FakeAPI = ingesttest.NewFakeAPI(t, records, "application/json", ingesttest.FakeAuth{Header: "Bearer " + testToken,
		Body: `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`}, f.serve)
	return f
}

func (f *fakeAuditLog) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-GitHub-Api-Version") != apiVersion || r.Header.Get("Accept") != "application/vnd.github+json" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"message":"missing API version or Accept header"}`)
		return
	}
	if r.URL.Path != "/orgs/example/audit-log" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	f.Queries = append(f.Queries, r.URL.RawQuery)
	if q.Get("order") != "asc" {
		f.T.Errorf("audit log requested in order %q, want asc", q.Get("order"))
	}
	var since time.Time
	for _, term := range strings.Fields(q.Get("phrase")) {
		if v, ok := strings.CutPrefix(term, "created:>="); ok {
			var err error
			if since, err = time.Parse(time.RFC3339, v); err != nil {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprintf(w, `{"message":"bad created qualifier %q"}`, v)
				return
			}
		}
	}
	match := ingesttest.Since(f.Records, since, recordKey)
	off := 0
	if a := q.Get("after"); a != "" {
		if f.RateLimitOnce(w, "", `{"message":"You have exceeded a secondary rate limit."}`, "Retry-After", "7") {
			return
		}
		b, _ := base64.RawURLEncoding.DecodeString(a)
		off, _ = strconv.Atoi(strings.TrimPrefix(string(b), "off:"))
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	page, end := ingesttest.PageOf(match, off, per)
	if end < len(match) {
		q.Set("after", base64.RawURLEncoding.EncodeToString([]byte("off:"+strconv.Itoa(end))))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next", <%s%s?per_page=%d>; rel="first"`, f.URL, r.URL.Path, q.Encode(), f.URL, r.URL.Path, per))
	}
	fmt.Fprint(w, ingesttest.JSONArray(page))
}

func newTestSource(t *testing.T, f *fakeAuditLog, perPage int) *Source {
	t.Setenv("GITHUB_AUDIT_TOKEN", testToken)
	return ingesttest.FromSample(t, sampleYAML, New, f.Options("default"), func(v any) { v.(*Config).PerPage = perPage }).(*Source)
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeAuditLog(t, records)
	res := ingesttest.Run(t, newTestSource(t, f, 3))
	if len(res.Records) != len(records) {
		t.Errorf("read %d records, the log has %d", len(res.Records), len(records))
	}
	if res.Pages != 4 {
		t.Errorf("read %d pages of 3 from %d records, want 4", res.Pages, len(records))
	}
	if res.RateLimits[0].Status != http.StatusTooManyRequests || res.RateLimits[0].RetryAfter != 7*time.Second {
		t.Errorf("rate limit = %+v, want 429 with Retry-After 7s", res.RateLimits[0])
	}
	if len(res.Events) != len(records)-1 {
		t.Errorf("got %d events, want one per record but the web-UI one", len(res.Events))
	}
	last := res.Final
	if want := time.Date(2026, 10, 27, 2, 20, 0, 125e6, time.UTC); !last.Time.Equal(want) || last.Token != "" {
		t.Errorf("final cursor %+v, want time %s and no token", last, want)
	}
}

func TestFetchResumesFromCursorWithoutGapOrDuplicate(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeAuditLog(t, records[:3]) // the last two share one second
	f.SkipRateLimit()
	src := newTestSource(t, f, 100)
	page, err := src.Fetch(context.Background(), ingest.Cursor{})
	if err != nil || !page.Done || len(page.Records) != 3 {
		t.Fatalf("first poll: %d records, done %v, err %v", len(page.Records), page.Done, err)
	}
	// A record lands in the same second as the cursor, then a later one.
	late := `{"@timestamp":1761531190500,"_document_id":"same-second-later","action":"git.fetch","token_id":"4410332","programmatic_access_type":"Fine-grained personal access token"}`
	f.Records = append(f.Records, []byte(late), records[3])
	page, err = src.Fetch(context.Background(), page.Next)
	if err != nil {
		t.Fatal(err)
	}
	ids := ingesttest.IDs(page.Records, recordKey)
	if !slices.Equal(ids, []string{"same-second-later", "bW9yZS1kb2NzLWlkLTAwMw"}) {
		t.Errorf("second poll delivered %v, want only the two new records", ids)
	}
	if !strings.Contains(f.Queries[1], "created%3A%3E%3D2025-10-27T02%3A13%3A10%2B00%3A00") {
		t.Errorf("second poll query %q does not start at the cursor second", f.Queries[1])
	}
}

func TestFetchPrimaryRateLimitWaitsUntilReset(t *testing.T) {
	now := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "1750")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(90*time.Second).Unix(), 10))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"API rate limit exceeded for user ID 1."}`)
	}))
	defer srv.Close()
	src, err := New(ingesttest.YAML([]byte("org: example\ntoken: t0k3n\n")), ingest.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	src.(*Source).now = func() time.Time { return now }
	_, err = src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if !errors.As(err, &rl) || rl.Status != http.StatusForbidden || rl.RetryAfter != 91*time.Second {
		t.Fatalf("err = %v, want a 403 rate limit waiting 91s (reset plus the reset second)", err)
	}
}

func TestFetchTreatsPlainForbiddenAsError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Must have admin rights to Repository."}`)
	}))
	defer srv.Close()
	src, _ := New(ingesttest.YAML([]byte("org: example\ntoken: t0k3n\n")), ingest.Options{BaseURL: srv.URL})
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("err = %v, want a plain HTTP 403 error", err)
	}
}

func TestFetchRefusesNextLinkToAnotherHost(t *testing.T) {
	src, _ := New(ingesttest.YAML([]byte("org: example\ntoken: t0k3n\n")), ingest.Options{BaseURL: "https://api.github.com"})
	cur := ingest.Cursor{Token: `{"next":"https://evil.example/orgs/example/audit-log?after=x"}`}
	if _, err := src.Fetch(context.Background(), cur); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("err = %v, want refusal to send the token to another host", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"token: x\n", "exactly one of org or enterprise"},
		{"org: a\nenterprise: b\ntoken: x\n", "exactly one of org or enterprise"},
		{"org: a\n", "token: required"},
		{"org: a\ntoken: x\ninclude: everything\n", `include "everything"`},
		{"org: a\ntoken: x\nper_page: 500\n", "per_page 500"},
		{"enterprise: corp\ntoken: x\ninclude: git\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}

func TestNextLink(t *testing.T) {
	h := `<https://api.github.com/orgs/x/audit-log?after=MS4y&per_page=100>; rel="next", <https://api.github.com/orgs/x/audit-log?before=MS4x>; rel="prev"`
	if got := nextLink(h); got != "https://api.github.com/orgs/x/audit-log?after=MS4y&per_page=100" {
		t.Errorf("nextLink = %q", got)
	}
	if got := nextLink(`<https://x/y?before=a>; rel="prev"`); got != "" {
		t.Errorf("nextLink without next = %q", got)
	}
}

// TestNormalizeDocumentedShapes: records written from GitHub's audit-log
// streaming documentation (installation-token git events with token_id 0,
// api.request with route, method and status) against their golden events.
func TestNormalizeDocumentedShapes(t *testing.T) {
	ingesttest.GoldenEvents(t, NewNormalizer("default"), ingesttest.ReadLines(t, "testdata/golden/documented.jsonl"),
		"testdata/golden/documented.normalized.jsonl", *ingesttest.Update)
}
