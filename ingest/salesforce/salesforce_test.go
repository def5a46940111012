package salesforce

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
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

const testToken = "00DHs000000abcd!AQ8AQTestAccessToken"

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, appName, credType, credID, category, outcome, principal, action, resource, ip, ua, time string
		records                                                                                                  int64
	}
	cases := []struct {
		name    string
		raw     string
		want    *want
		wantErr string
	}{
		{
			name: "connected app bulk query: rows processed become Records",
			raw:  `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"e1","EventDate":"2026-10-27T02:13:07.412+0000","Username":"crm-sync@example.com","SourceIp":"102.89.0.1","UserAgent":"python-requests/2.31.0","ConnectedAppId":"0H4A","Application":"CRM Sync","Operation":"Query","QueriedEntities":"Contact","RowsProcessed":48211.0,"SessionKey":"sk","LoginKey":"lk"}`,
			want: &want{id: "e1", integration: "0H4A", appName: "CRM Sync", credType: "oauth_token", credID: "lk", category: "access", outcome: "success", principal: "crm-sync@example.com",
				action: "Query", resource: "sobject:Contact", ip: "102.89.0.1", ua: "python-requests/2.31.0", time: "2026-10-27T02:13:07.412Z", records: 48211},
		},
		{
			name: "an update is a modification",
			raw:  `{"EventIdentifier":"e2","EventDate":"2026-10-27T02:20:00.000+0000","UserId":"005B","ConnectedAppId":"0H4B","Operation":"Update","QueriedEntities":"Opportunity","RowsProcessed":125}`,
			want: &want{id: "e2", integration: "0H4B", credType: "oauth_token", category: "modify", outcome: "success", principal: "005B", action: "Update",
				resource: "sobject:Opportunity", time: "2026-10-27T02:20:00.000Z", records: 125},
		},
		{
			name: "no connected app: the API client names the integration",
			raw:  `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"e3","EventDate":"2026-10-27T02:25:30.25Z","Username":"analyst@example.com","ConnectedAppId":"","Client":"Workbench/","Application":"N/A","Operation":"Query","SessionKey":"sk3","RowsProcessed":"12"}`,
			want: &want{id: "e3", integration: "client:Workbench/", appName: "Workbench/", credType: "session", credID: "sk3", category: "access", outcome: "success",
				principal: "analyst@example.com", action: "Query", time: "2026-10-27T02:25:30.250Z", records: 12},
		},
		{
			name: "OAuth login of a connected app authorizes",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya1","LoginTime":"2026-10-27T02:13:05.000+0000","UserId":"005A","SourceIp":"102.89.0.1","LoginType":"Remote Access 2.0","Status":"Success","Application":"CRM Sync","LoginUrl":"login.salesforce.com"}`,
			want: &want{id: "0Ya1", integration: "app:CRM Sync", appName: "CRM Sync", credType: "oauth_token", category: "authorize", outcome: "success", principal: "005A",
				action: "login:Remote Access 2.0", resource: "login_url:login.salesforce.com", ip: "102.89.0.1", time: "2026-10-27T02:13:05.000Z"},
		},
		{
			name: "a failed client-credentials login is an auth failure",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya2","LoginTime":"2026-10-27T02:14:00.000+0000","UserId":"005A","SourceIp":"185.220.101.4","LoginType":"Remote Access 2.0","Status":"Invalid Client Credentials","Application":"CRM Sync"}`,
			want: &want{id: "0Ya2", integration: "app:CRM Sync", appName: "CRM Sync", credType: "oauth_token", category: "auth_failure", outcome: "failure", principal: "005A",
				action: "login:Remote Access 2.0", ip: "185.220.101.4", time: "2026-10-27T02:14:00.000Z"},
		},
		{
			name: "a SOAP API login without an app is keyed by API type",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya3","LoginTime":"2026-10-27T02:30:00.000+0000","UserId":"005Z","LoginType":"Other Apex API","Status":"Success","Application":"N/A","ApiType":"SOAP Partner"}`,
			want: &want{id: "0Ya3", integration: "api:SOAP Partner", appName: "SOAP Partner", credType: "api_session", category: "authorize", outcome: "success", principal: "005Z",
				action: "login:Other Apex API", time: "2026-10-27T02:30:00.000Z"},
		},
		{name: "a browser login is not an integration", raw: `{"attributes":{"type":"LoginHistory"},"Id":"0Ya4","LoginTime":"2026-10-27T02:31:00.000+0000","LoginType":"Application","Status":"Success","Application":"Browser Login"}`},
		{name: "an API call naming nothing is skipped", raw: `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"e9","EventDate":"2026-10-27T02:31:00Z","Application":"N/A","Client":"N/A"}`},
		{name: "ApiEvent without EventDate", raw: `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"x","ConnectedAppId":"0H4A"}`, wantErr: "no EventDate"},
		{name: "LoginHistory with a bad time", raw: `{"attributes":{"type":"LoginHistory"},"Id":"x","LoginTime":"27/10/2026"}`, wantErr: `LoginTime "27/10/2026"`},
		{name: "unknown shape", raw: `{"Id":"x","Name":"Acme"}`, wantErr: "unknown record shape"},
		{name: "another object", raw: `{"attributes":{"type":"Account"},"Id":"001"}`, wantErr: `unsupported object "Account"`},
		{name: "login naming no app", raw: `{"attributes":{"type":"LoginHistory"},"Id":"x","LoginTime":"2026-10-27T02:31:00Z","LoginType":"Remote Access 2.0","Application":"N/A"}`, wantErr: "names no Application"},
	}
	src := NewNormalizer("acme")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, ingesttest.One(c.want), c.wantErr, func(t *testing.T, ev schemas.Event) want {
				return want{id: ev.EventID, integration: ev.Integration.ID, appName: ev.Integration.Name, credType: ev.Credential.Type, credID: ev.Credential.ID,
					category: ev.Action.Category, outcome: ev.Outcome, principal: ev.Principal.ID, action: ev.Action.Name, ip: ev.Network.IP, ua: ev.Network.UserAgent,
					time: ingesttest.TimeString(ev), records: ev.Records, resource: ingesttest.ResourceString(ev)}
			})
		})
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("acme")) }

func FuzzNormalize(f *testing.F) { ingesttest.FuzzNormalize(f, NewNormalizer("acme")) }

// fakeQueryAPI reproduces GET /services/data/vXX.X/query: bearer auth, a
// SOQL query over ApiEvent (big-object order: newest first) or LoginHistory
// (ORDER BY LoginTime ASC) with a ">= <datetime>" cursor, pages of two with
// done/nextRecordsUrl (/services/data/vXX.X/query/<locator>-<offset>), and
// one 429 with Retry-After on the first follow-up page.
type fakeQueryAPI struct {
	*ingesttest.FakeAPI
	objects map[string][][]byte
}

var (
	fromObject = regexp.MustCompile(`FROM (\w+) WHERE \w+ >= (\S+)`)
	locator    = regexp.MustCompile(`^/services/data/v61\.0/query/01g(\w+)-(\d+)-(\d+)$`)
)

func newFakeQueryAPI(t *testing.T, records [][]byte) *fakeQueryAPI {
	f := &fakeQueryAPI{objects: map[string][][]byte{}}
	for _, r := range records {
		var probe record
		json.Unmarshal(r, &probe)
		f.objects[probe.object()] = append(f.objects[probe.object()], r)
	}
	f.FakeAPI = ingesttest.NewFakeAPI(t, nil, "application/json;charset=UTF-8", ingesttest.FakeAuth{Header: "Bearer " + testToken,
		Body: `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`}, f.serve)
	return f
}

func (f *fakeQueryAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sforce-Query-Options") == "" {
		f.T.Errorf("no Sforce-Query-Options batch size header")
	}
	var object string
	var since time.Time
	var off int
	switch {
	case r.URL.Path == "/services/data/v61.0/query":
		q := r.URL.Query().Get("q")
		f.Queries = append(f.Queries, q)
		m := fromObject.FindStringSubmatch(q)
		if m == nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `[{"message":"unexpected token: %s","errorCode":"MALFORMED_QUERY"}]`, q)
			return
		}
		object = m[1]
		var err error
		if since, err = time.Parse("2006-01-02T15:04:05Z", m[2]); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `[{"message":"line 1: invalid datetime %s","errorCode":"MALFORMED_QUERY"}]`, m[2])
			return
		}
	case locator.MatchString(r.URL.Path):
		if f.RateLimitOnce(w, "", `[{"message":"Too many requests","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, "Retry-After", "4") {
			return
		}
		m := locator.FindStringSubmatch(r.URL.Path)
		object = m[1]
		sec, _ := strconv.ParseInt(m[2], 10, 64)
		since = time.Unix(sec, 0).UTC()
		off, _ = strconv.Atoi(m[3])
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)
		return
	}
	match := ingesttest.Since(f.objects[object], since, recordKey)
	ingesttest.SortByTime(match, recordKey, object == ObjectAPIEvent)
	const pageSize = 2 // Salesforce treats batchSize as a hint
	records, end := ingesttest.PageOf(match, off, pageSize)
	resp := struct {
		TotalSize      int               `json:"totalSize"`
		Done           bool              `json:"done"`
		NextRecordsURL string            `json:"nextRecordsUrl,omitempty"`
		Records        []json.RawMessage `json:"records"`
	}{TotalSize: len(match), Done: end == len(match), Records: []json.RawMessage{}}
	for _, raw := range records {
		resp.Records = append(resp.Records, raw)
	}
	if !resp.Done {
		resp.NextRecordsURL = fmt.Sprintf("/services/data/v61.0/query/01g%s-%d-%d", object, since.Unix(), end)
	}
	json.NewEncoder(w).Encode(resp)
}

func newTestSource(t *testing.T, f *fakeQueryAPI) *Source {
	t.Setenv("SALESFORCE_ACCESS_TOKEN", testToken)
	return ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), nil).(*Source)
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeQueryAPI(t, records)
	res := ingesttest.Run(t, newTestSource(t, f))
	if len(res.Records) != len(records) || res.Pages != 4 {
		t.Errorf("read %d records in %d pages, want %d in 4 (2 per object)", len(res.Records), res.Pages, len(records))
	}
	if rl := res.RateLimits[0]; rl.Status != http.StatusTooManyRequests || rl.RetryAfter != 4*time.Second {
		t.Errorf("rate limit = %+v, want 429 with Retry-After 4s", rl)
	}
	if len(res.Events) != len(records)-1 {
		t.Errorf("got %d events, want one per record but the browser login", len(res.Events))
	}
	var rows int64
	for _, ev := range res.Events {
		rows += ev.Records
	}
	if rows != 48211+2000+125+12 {
		t.Errorf("rows processed sum %d", rows)
	}
	if want := time.Date(2026, 10, 27, 2, 31, 0, 0, time.UTC); !res.Final.Time.Equal(want) || res.Final.Token != "" {
		t.Errorf("final cursor %+v, want %s", res.Final, want)
	}
	if q := f.Queries[len(f.Queries)-1]; !strings.Contains(q, "FROM ApiEvent WHERE EventDate >= 2026-10-27T02:31:00Z") {
		t.Errorf("re-poll query %q does not start at the final cursor", q)
	}
}

func TestFetchDailyLimitIsARateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Sforce-Limit-Info", "api-usage=100000/100000")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	}))
	defer srv.Close()
	src, err := New(ingesttest.YAML([]byte("token: t0k3n\n")), ingest.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if !errors.As(err, &rl) || rl.Status != http.StatusForbidden || rl.RetryAfter != 5*time.Minute {
		t.Fatalf("err = %v, want a 403 REQUEST_LIMIT_EXCEEDED rate limit waiting 5m", err)
	}
}

func TestFetchExpiredSessionIsAnError(t *testing.T) {
	f := newFakeQueryAPI(t, nil)
	src, _ := New(ingesttest.YAML([]byte("token: expired-token\n")), ingest.Options{BaseURL: f.URL})
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "INVALID_SESSION_ID") {
		t.Fatalf("err = %v, want INVALID_SESSION_ID", err)
	}
}

func TestFetchRefusesForeignNextRecordsURL(t *testing.T) {
	src, _ := New(ingesttest.YAML([]byte("instance_url: https://example.my.salesforce.com\ntoken: x\n")), ingest.Options{})
	cur := ingest.Cursor{Token: `{"next":"https://evil.example/services/data/v61.0/query/01g-2"}`}
	if _, err := src.Fetch(context.Background(), cur); err == nil || !strings.Contains(err.Error(), "not an instance path") {
		t.Fatalf("err = %v, want refusal", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"token: x\n", "instance_url: required"},
		{"instance_url: http://example.my.salesforce.com\ntoken: x\n", "https://"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\napi_version: 61\n", `api_version "61"`},
		{"instance_url: https://e.my.salesforce.com\n", "token: required"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nobjects: [EventLogFile]\n", `"EventLogFile"`},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nbatch_size: 50\n", "batch_size 50"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nobjects: [LoginHistory]\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}
