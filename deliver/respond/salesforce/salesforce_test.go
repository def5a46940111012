package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const (
	adminToken = "00Dxx0000001gPL!AQ4AQ-salesforce-admin-secret"
	appID      = "0H4fj000000CaFE"
	// A name with a quote: the SOQL must escape it.
	appName = "Bob's Data Sync"
	locator = "/services/data/v60.0/query/01gRO0000016PIAYA2-500"
)

// answer is one scripted error answer.
type answer struct {
	status     int
	body       string
	retryAfter string
}

// Salesforce's documented error answers.
var (
	invalidSession = answer{http.StatusUnauthorized, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, ""}
	apiDisabled    = answer{http.StatusForbidden, `[{"message":"The REST API is not enabled for this Organization.","errorCode":"API_DISABLED_FOR_ORG"}]`, ""}
	limitExceeded  = answer{http.StatusForbidden, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, "3"}
	unavailable    = answer{http.StatusServiceUnavailable, `[{"message":"Server unavailable","errorCode":"SERVER_UNAVAILABLE"}]`, ""}
	notFound       = answer{http.StatusNotFound, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`, ""}
	invalidToken   = answer{http.StatusBadRequest, `{"error":"invalid_token","error_description":"invalid token"}`, ""}
	echoesSecret   = answer{http.StatusForbidden, `[{"message":"no access for ` + adminToken + `","errorCode":"INSUFFICIENT_ACCESS"}]`, ""}
)

// fakeOrg is a Salesforce org answering the documented query and revoke
// calls. It checks each request and records them; fail maps a step
// ("query", "page", "revoke") to the error answers it gives first.
type fakeOrg struct {
	t      *testing.T
	tokens [][]string // pages of DeleteTokens (first page, then the locator's)
	fail   map[string][]answer
	mu     sync.Mutex
	seen   []string // "GET query:<soql>", "GET page", "POST revoke:<token>"
}

func (f *fakeOrg) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	step := ""
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/services/data/v60.0/query":
		step = "query"
		f.seen = append(f.seen, "GET query:"+r.URL.Query().Get("q"))
	case r.Method == http.MethodGet && r.URL.Path == locator:
		step = "page"
		f.seen = append(f.seen, "GET page")
	case r.Method == http.MethodPost && r.URL.Path == "/services/oauth2/revoke":
		step = "revoke"
		form, err := url.ParseQuery(string(body))
		if err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || len(form) != 1 {
			f.t.Errorf("revoke: Content-Type %q, body %q", r.Header.Get("Content-Type"), body)
		}
		f.seen = append(f.seen, "POST revoke:"+form.Get("token"))
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	auth := r.Header.Get("Authorization")
	if step == "revoke" && auth != "" {
		f.t.Errorf("the revoke endpoint got Authorization %q: the admin token must not go there", auth)
	}
	if step != "revoke" && auth != "Bearer "+adminToken {
		f.t.Errorf("%s: Authorization %q", step, auth)
	}
	if s := f.fail[step]; len(s) > 0 {
		f.fail[step] = s[1:]
		if s[0].retryAfter != "" {
			w.Header().Set("Retry-After", s[0].retryAfter)
		}
		w.WriteHeader(s[0].status)
		io.WriteString(w, s[0].body)
		return
	}
	switch step {
	case "revoke":
		w.WriteHeader(http.StatusOK)
	case "query":
		q := r.URL.Query().Get("q")
		if strings.Contains(q, "FROM ConnectedApplication") {
			fmt.Fprintf(w, `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"ConnectedApplication","url":"/services/data/v60.0/sobjects/ConnectedApplication/%sAAA"},"Id":"%sAAA","Name":%q}]}`, appID, appID, appName)
			return
		}
		f.page(w, 0)
	case "page":
		f.page(w, 1)
	}
}

func (f *fakeOrg) page(w io.Writer, n int) {
	var recs []string
	var toks []string
	if n < len(f.tokens) {
		toks = f.tokens[n]
	}
	for i, tok := range toks {
		recs = append(recs, fmt.Sprintf(`{"attributes":{"type":"OauthToken"},"AppName":%q,"UserId":"005fj00000User%d","DeleteToken":%q}`, appName, n*10+i, tok))
	}
	more := ""
	if n == 0 && len(f.tokens) > 1 {
		more = `,"nextRecordsUrl":"` + locator + `"`
	}
	fmt.Fprintf(w, `{"totalSize":%d,"done":%t%s,"records":[%s]}`, len(toks), more == "", more, strings.Join(recs, ","))
}

func newRevoker(t *testing.T, base string) *Revoker {
	t.Helper()
	r, err := New(Config{InstanceURL: base, AccessToken: secret.New(adminToken)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run executes an enforced revoke of vendorID against org.
func run(t *testing.T, org *fakeOrg, vendorID string) ([]schemas.Response, []time.Duration, string) {
	t.Helper()
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	rv := newRevoker(t, srv.URL)
	target := respond.Target{Source: Source, IntegrationID: vendorID, VendorID: vendorID}
	reqs, err := rv.Plan(target)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	sender := respond.NewHTTPSender(5 * time.Second)
	sender.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	var logs bytes.Buffer
	store := &respond.MemoryStore{}
	ex := &respond.Executor{Revokers: map[string]respond.Revoker{Source: rv}, Sender: sender, Store: store, Audit: []respond.Recorder{store},
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	r := schemas.Response{ID: "rev-1", IncidentID: "inc", IncidentVersion: 1, Source: Source, IntegrationID: vendorID, Target: vendorID,
		Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned}
	for _, q := range reqs {
		r.Requests = append(r.Requests, q.String())
	}
	out, err := ex.Execute(context.Background(), []respond.Planned{{Response: r, Target: target, Requests: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(out)
	for what, text := range map[string]string{"logs": logs.String(), "records": string(rec)} {
		if strings.Contains(text, adminToken) {
			t.Errorf("the admin token appears in the %s", what)
		}
		if strings.Contains(text, "dtk") {
			t.Errorf("a DeleteToken appears in the %s: %s", what, text)
		}
	}
	return out, waits, srv.URL
}

var (
	appQuery   = "SELECT Id, Name FROM ConnectedApplication WHERE Id = '" + appID + "'"
	tokenQuery = `SELECT AppName, UserId, DeleteToken FROM OauthToken WHERE AppName = 'Bob\'s Data Sync'`
)

// The documented flow: the app's name from its id, its tokens over two
// pages, one revoke per token without the admin credential; every step on
// the record.
func TestRevokesEveryListedTokenAcrossPages(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		first    []string
	}{
		{"by connected app id", appID, []string{"GET query:" + appQuery}},
		{"by app name", "app:" + appName, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org := &fakeOrg{t: t, tokens: [][]string{{"dtkA-revocation-handle", "dtkB-revocation-handle"}, {"dtkC-revocation-handle"}}}
			out, waits, base := run(t, org, tc.id)
			want := append(tc.first, "GET query:"+tokenQuery, "GET page", "POST revoke:dtkA-revocation-handle", "POST revoke:dtkB-revocation-handle", "POST revoke:dtkC-revocation-handle")
			if strings.Join(org.seen, "\n") != strings.Join(want, "\n") {
				t.Errorf("the org got\n%s\nwant\n%s", strings.Join(org.seen, "\n"), strings.Join(want, "\n"))
			}
			if len(out) != 2 || out[0].Status != schemas.ResponsePlanned || out[1].Status != schemas.ResponseExecuted || len(waits) != 0 {
				t.Fatalf("records %+v (waits %v), want planned then executed", out, waits)
			}
			q := func(soql string) string {
				return "GET " + base + "/services/data/v60.0/query?" + url.Values{"q": {soql}}.Encode() + " (" + respond.DiscoverNote + ")"
			}
			first := q(tokenQuery)
			if tc.first != nil {
				first = q(appQuery)
			}
			if len(out[0].Requests) != 1 || out[0].Requests[0] != first {
				t.Errorf("planned requests %q, want [%q]", out[0].Requests, first)
			}
			trail := []string{first}
			if tc.first != nil {
				trail = append(trail, q(tokenQuery))
			}
			trail = append(trail, "GET "+base+locator+" ("+respond.DiscoverNote+")",
				"POST "+base+"/services/oauth2/revoke (token of user 005fj00000User0)",
				"POST "+base+"/services/oauth2/revoke (token of user 005fj00000User1)",
				"POST "+base+"/services/oauth2/revoke (token of user 005fj00000User10)")
			if strings.Join(out[1].Requests, "\n") != strings.Join(trail, "\n") {
				t.Errorf("executed record's requests\n%s\nwant\n%s", strings.Join(out[1].Requests, "\n"), strings.Join(trail, "\n"))
			}
		})
	}
}

// Outcomes per the documented answers.
func TestSalesforceAnswers(t *testing.T) {
	one := [][]string{{"dtkA-revocation-handle"}}
	for _, tc := range []struct {
		name     string
		tokens   [][]string
		fail     map[string][]answer
		want     string
		waits    []time.Duration
		errHas   string
		revokeN  int
		queriesN int
	}{
		{"no token listed is already done", nil, nil, schemas.ResponseAlreadyDone, nil, "", 0, 1},
		{"invalid_token on every revoke is already done", one, map[string][]answer{"revoke": {invalidToken}}, schemas.ResponseAlreadyDone, nil, "", 1, 1},
		{"one revoked, one already gone", [][]string{{"dtkA-revocation-handle", "dtkB-revocation-handle"}}, map[string][]answer{"revoke": {invalidToken}}, schemas.ResponseExecuted, nil, "", 2, 1},
		{"NOT_FOUND on a revoke is already done", one, map[string][]answer{"revoke": {notFound}}, schemas.ResponseAlreadyDone, nil, "", 1, 1},
		{"REQUEST_LIMIT_EXCEEDED waits its Retry-After", one, map[string][]answer{"query": {limitExceeded}}, schemas.ResponseExecuted, []time.Duration{3 * time.Second}, "", 1, 2},
		{"503 is retried with backoff", one, map[string][]answer{"query": {unavailable, unavailable}}, schemas.ResponseExecuted, []time.Duration{time.Second, 2 * time.Second}, "", 1, 3},
		{"a 503 on a revoke is retried", one, map[string][]answer{"revoke": {unavailable}}, schemas.ResponseExecuted, []time.Duration{time.Second}, "", 2, 1},
		{"NOT_FOUND on the query lists nothing", nil, map[string][]answer{"query": {notFound}}, schemas.ResponseAlreadyDone, nil, "", 0, 1},
		{"INVALID_SESSION_ID names the fix", one, map[string][]answer{"query": {invalidSession}}, schemas.ResponseFailed, nil, "INVALID_SESSION_ID", 0, 1},
		{"API_DISABLED_FOR_ORG names the permissions", one, map[string][]answer{"query": {apiDisabled}}, schemas.ResponseFailed, nil, "Customize Application", 0, 1},
		{"INSUFFICIENT_ACCESS echoing the token is redacted", one, map[string][]answer{"query": {echoesSecret}}, schemas.ResponseFailed, nil, "API Enabled", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org := &fakeOrg{t: t, tokens: tc.tokens, fail: tc.fail}
			out, waits, _ := run(t, org, "app:"+appName)
			if len(out) != 2 || out[1].Status != tc.want {
				t.Fatalf("records %+v, want planned then %s", out, tc.want)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tc.waits) {
				t.Errorf("waited %v, want %v", waits, tc.waits)
			}
			if tc.errHas != "" && !strings.Contains(out[1].Error, tc.errHas) {
				t.Errorf("error %q does not name %q", out[1].Error, tc.errHas)
			}
			revokes, queries := 0, 0
			for _, s := range org.seen {
				if strings.HasPrefix(s, "POST") {
					revokes++
				} else {
					queries++
				}
			}
			if revokes != tc.revokeN || queries != tc.queriesN {
				t.Errorf("the org got %d queries and %d revokes, want %d and %d: %v", queries, revokes, tc.queriesN, tc.revokeN, org.seen)
			}
		})
	}
}

func TestResolveTakesWhatIngestEmits(t *testing.T) {
	r := newRevoker(t, "https://acme.my.salesforce.com")
	for id, want := range map[string]bool{
		appID: true, appID + "AAA": true, "app:Data Loader": true, "app:" + appName: true,
		"app:": false, "app:a\nb": false, "client:Workbench": false, "user:005fj000001AbCd": false, "api:REST": false,
		"001fj000000CaFEZ": false, "0H4short": false,
	} {
		if _, ok := r.Resolve(id); ok != want {
			t.Errorf("Resolve(%q) = %v, want %v", id, ok, want)
		}
	}
}

// A dry run's request is the discovery, marked as such; the revokes are
// not known until it is answered.
func TestPlanIsTheDiscoveryQuery(t *testing.T) {
	r := newRevoker(t, "https://acme.my.salesforce.com")
	reqs, err := r.Plan(respond.Target{Source: Source, VendorID: "app:" + appName})
	if err != nil || len(reqs) != 1 || !reqs[0].Discover {
		t.Fatalf("Plan = %+v, %v", reqs, err)
	}
	want := "GET https://acme.my.salesforce.com/services/data/v60.0/query?q=SELECT+AppName%2C+UserId%2C+DeleteToken+FROM+OauthToken+WHERE+AppName+%3D+%27Bob%5C%27s+Data+Sync%27 (discover: the revokes depend on its answer)"
	if reqs[0].String() != want {
		t.Errorf("dry run prints\n%s\nwant\n%s", reqs[0], want)
	}
	if _, err := r.Plan(respond.Target{Source: Source, VendorID: "client:x"}); err == nil {
		t.Error("a client name planned a revoke")
	}
	if got := soqlQuote(`a\'b`); got != `a\\\'b` {
		t.Errorf("soqlQuote = %s", got)
	}
}

// A locator that is not a path on the org's data API is not followed
// with the admin credential.
func TestExpandRefusesForeignLocators(t *testing.T) {
	r := newRevoker(t, "https://acme.my.salesforce.com")
	for _, loc := range []string{"https://evil.example/services/data/v60.0/query/x", "//evil.example/x", "/services/data/../../x", "/services/oauth2/revoke"} {
		body := `{"done":false,"nextRecordsUrl":"` + loc + `","records":[]}`
		if _, _, err := r.Expand(respond.Target{}, respond.Request{}, []byte(body)); err == nil {
			t.Errorf("followed %s", loc)
		}
	}
}

func TestConfigIsStrict(t *testing.T) {
	for doc, want := range map[string]string{
		"instance_url: https://acme.my.salesforce.com\naccess_token: env:X\nacces_token: y\n": "acces_token",
		"access_token: env:X\n":                                                                      "instance_url",
		"instance_url: https://acme.my.salesforce.com\n":                                             "access_token",
		"instance_url: https://acme.my.salesforce.com/services/data\naccess_token: env:X\n":          "instance_url",
		"instance_url: https://acme.my.salesforce.com\napi_version: \"60.0\"\naccess_token: env:X\n": "api_version",
		"instance_url: ftp://acme.my.salesforce.com\naccess_token: env:X\n":                          "instance_url",
	} {
		t.Setenv("X", "tok")
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
			t.Fatal(err)
		}
		_, err := respond.New(Source, yamlstrict.Func(n.Content[0]))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %s", doc, err, want)
		}
	}
}

// The planner (and so the stage, replay --actions and a dry-run rule)
// records a Salesforce revoke as its discovery query; integrations that
// are not connected apps are skipped, saying why.
func TestPlannerRecordsTheDiscovery(t *testing.T) {
	rv := newRevoker(t, "https://acme.my.salesforce.com")
	cfg := respond.DefaultConfig()
	cfg.Rules = []respond.Rule{{Name: "revoke-sf", Action: schemas.ActionRevoke}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := respond.NewPlanner(cfg, map[string]respond.Revoker{Source: rv}, nil)
	at := schemas.NewTime(time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC))
	out := p.Plan(schemas.Incident{ID: "inc-sf", Version: 1, Source: Source, IntegrationIDs: []string{appID, "user:005fj000001AbCd"}, UpdatedAt: at})
	if len(out) != 2 {
		t.Fatalf("planned %+v", out)
	}
	r := out[0].Response
	want := "GET https://acme.my.salesforce.com/services/data/v60.0/query?" + url.Values{"q": {appQuery}}.Encode() + " (" + respond.DiscoverNote + ")"
	if r.Action != schemas.ActionRevoke || r.Mode != schemas.ModeDryRun || r.Status != schemas.ResponsePlanned || len(r.Requests) != 1 || r.Requests[0] != want {
		t.Errorf("planned %+v, want a dry_run revoke recording %s", r, want)
	}
	if s := out[1].Response; s.Status != schemas.ResponseSkipped || !strings.Contains(s.Reason, "cannot be resolved") {
		t.Errorf("user integration: %+v", s)
	}
}
