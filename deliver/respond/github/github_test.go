package github

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/respondtest"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const appToken = "ghs_installation_secret"

func newRevoker(t *testing.T, base string) respond.Revoker {
	r, err := New(Config{Org: "acme", Token: secret.New(appToken), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// GitHub's error bodies (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api).
func TestPATRevokeAgainstGitHub(t *testing.T) {
	respondtest.Run(t, respondtest.Suite{
		New: newRevoker, Secret: appToken,
		Target: respond.Target{Source: Source, IntegrationID: "pat:25381", VendorID: "25381"},
		Method: "POST", Path: "/orgs/acme/personal-access-tokens/25381", Auth: "Bearer " + appToken, Body: `{"action":"revoke"}`,
		NotFound:      `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/orgs/personal-access-tokens#update-the-access-a-fine-grained-personal-access-token-has-to-organization-resources"}`,
		Forbidden:     `{"message":"Resource not accessible by integration $SECRET","documentation_url":"https://docs.github.com/rest"}`,
		TooMany:       `{"message":"You have exceeded a secondary rate limit."}`,
		ForbiddenHint: "Personal access tokens",
	})
}

func TestResolveTakesFineGrainedPATsAndSSOAuthorizations(t *testing.T) {
	r := newRevoker(t, "https://api.github.com")
	for id, want := range map[string]string{
		"pat:25381":                     "25381",
		"saml_sso:release-bot/71c3fc11": "saml_sso:release-bot/71c3fc11",
		"saml_sso:mona_acme/Ae178B4a":   "saml_sso:mona_acme/Ae178B4a",
		// What ingest/github emits for credentials the list cannot be
		// matched to: a PAT by its hashed_token, OAuth and GitHub apps, keys.
		"pat:hAbC123=":        "",
		"oauth_app:4521":      "",
		"github_app:crm-sync": "",
		"ssh_key:aW5zdA==":    "",
		"token:b2F1dGg=":      "",
		// Malformed SSO identities.
		"saml_sso:release-bot":            "",
		"saml_sso:release-bot/71c3fc1":    "",
		"saml_sso:release-bot/71c3fc11x":  "",
		"saml_sso:-bot/71c3fc11":          "",
		"saml_sso:a/b/71c3fc11":           "",
		"saml_sso:release bot/71c3fc11":   "",
		"saml_sso:/71c3fc11":              "",
		"saml_sso:release-bot/71c3-c11":   "",
		"SAML_SSO:release-bot/71c3fc11":   "",
		"saml_sso:release-bot/71c3fc11\n": "",
	} {
		got, ok := r.Resolve(id)
		if ok != (want != "") || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
}

// answer is one scripted answer of the fake.
type answer struct {
	status     int
	body       string
	retryAfter string
}

// GitHub's documented error answers
// (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api,
// https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
var (
	notFound      = answer{http.StatusNotFound, `{"message":"Not Found","documentation_url":"https://docs.github.com/enterprise-cloud@latest/rest/orgs/orgs#remove-a-saml-sso-authorization-for-an-organization","status":"404"}`, ""}
	notAccessible = answer{http.StatusForbidden, `{"message":"Resource not accessible by integration ` + appToken + `","documentation_url":"https://docs.github.com/rest","status":"403"}`, ""}
	badCreds      = answer{http.StatusUnauthorized, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`, ""}
	secondary     = answer{http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`, "7"}
	tooMany       = answer{http.StatusTooManyRequests, `{"message":"API rate limit exceeded"}`, "3"}
)

// fakeGitHub is an organization with SAML SSO answering the documented
// list and remove calls: page and per_page pagination, the login filter
// (unless ignoreLogin), 204 and 404 on remove. It checks every request's
// method, path, query and headers and records what it was sent.
type fakeGitHub struct {
	t           *testing.T
	creds       []credentialAuthorization
	raw         []json.RawMessage // the entries as sent, same order as creds
	ignoreLogin bool
	fail        map[string][]answer // "list" or "delete": answers given first
	mu          sync.Mutex
	seen        []string // "GET login=… page=N", "DELETE N"
}

func newFake(t *testing.T, filler int) *fakeGitHub {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "credential_authorizations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fixture []json.RawMessage
	if err := json.Unmarshal(b, &fixture); err != nil {
		t.Fatal(err)
	}
	f := &fakeGitHub{t: t}
	// Filler: the owner's other tokens, listed before the fixture's.
	entries := make([]json.RawMessage, 0, filler+len(fixture))
	for i := range filler {
		entries = append(entries, json.RawMessage(fmt.Sprintf(`{"login":"release-bot","credential_id":%d,"credential_type":"personal access token","token_last_eight":"fill%04d","credential_authorized_at":"2026-01-01T00:00:00Z","credential_accessed_at":null,"authorized_credential_id":%d,"scopes":["repo"]}`, 170000+i, i, 80000000+i)))
	}
	fixture = append(entries, fixture...)
	for _, e := range fixture {
		var c credentialAuthorization
		if err := json.Unmarshal(e, &c); err != nil {
			t.Fatal(err)
		}
		f.creds, f.raw = append(f.creds, c), append(f.raw, e)
	}
	return f
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	for h, want := range map[string]string{"Authorization": "Bearer " + appToken, "X-GitHub-Api-Version": "2022-11-28", "Accept": "application/vnd.github+json"} {
		if got := r.Header.Get(h); got != want {
			f.t.Errorf("%s %s: %s %q, want %q", r.Method, r.URL.Path, h, got, want)
		}
	}
	if len(body) > 0 {
		f.t.Errorf("%s %s: body %q, want none", r.Method, r.URL.Path, body)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	const list = "/orgs/acme/credential-authorizations"
	step := ""
	switch {
	case r.Method == http.MethodGet && r.URL.Path == list:
		step = "list"
		q := r.URL.Query()
		if q.Get("per_page") != "100" || len(q) != 3 {
			f.t.Errorf("list query %q, want login, page and per_page=100", r.URL.RawQuery)
		}
		f.seen = append(f.seen, "GET login="+q.Get("login")+" page="+q.Get("page"))
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, list+"/"):
		step = "delete"
		f.seen = append(f.seen, "DELETE "+strings.TrimPrefix(r.URL.Path, list+"/"))
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, notFound.body)
		return
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
	if step == "delete" {
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, list+"/"), 10, 64)
		for i, c := range f.creds {
			if err == nil && c.CredentialID == id {
				f.creds, f.raw = append(f.creds[:i:i], f.creds[i+1:]...), append(f.raw[:i:i], f.raw[i+1:]...)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, notFound.body)
		return
	}
	q := r.URL.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		f.t.Errorf("list page %q", q.Get("page"))
		page = 1
	}
	var entries []json.RawMessage
	for i, c := range f.creds {
		if f.ignoreLogin || strings.EqualFold(c.Login, q.Get("login")) {
			entries = append(entries, f.raw[i])
		}
	}
	from, to := min((page-1)*100, len(entries)), min(page*100, len(entries))
	if to < len(entries) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=%d>; rel="next"`, "http://"+r.Host, list, page+1))
	}
	out, _ := json.Marshal(entries[from:to])
	if entries[from:to] == nil {
		out = []byte("[]")
	}
	w.Write(out)
}

// run executes an enforced revoke of vendorID against gh.
func run(t *testing.T, gh *fakeGitHub, vendorID string) ([]schemas.Response, []time.Duration, string) {
	t.Helper()
	srv := httptest.NewServer(gh)
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
		if strings.Contains(text, appToken) {
			t.Errorf("the token appears in the %s: %s", what, text)
		}
	}
	return out, waits, srv.URL
}

// The documented flow: the owner's authorizations over every page, then
// one DELETE per entry with the token's last eight; the whole trail on the
// record.
func TestSSOAuthorizationRemoval(t *testing.T) {
	const pat = "saml_sso:release-bot/71c3fc11"
	for _, tc := range []struct {
		name        string
		id          string
		filler      int
		ignoreLogin bool
		fail        map[string][]answer
		want        string
		seen        []string
		waits       []time.Duration
		errHas      string
		golden      string
	}{
		{name: "the match on the second page", id: pat, filler: 100, want: schemas.ResponseExecuted,
			seen: []string{"GET login=release-bot page=1", "GET login=release-bot page=2", "DELETE 161195"}, golden: "trail_second_page.golden"},
		{name: "a full last page is followed by an empty one", id: pat, filler: 96, want: schemas.ResponseExecuted,
			seen: []string{"GET login=release-bot page=1", "GET login=release-bot page=2", "DELETE 161195"}},
		{name: "the login is matched without case", id: "saml_sso:Release-Bot/71c3fc11", want: schemas.ResponseExecuted,
			seen: []string{"GET login=Release-Bot page=1", "DELETE 161195"}},
		// Only a personal access token's entry carries token_last_eight
		// (GitHub's schema): nothing listed is not proof of a revoke.
		{name: "no token ending so is a failure, not done", id: "saml_sso:release-bot/00000000", want: schemas.ResponseFailed,
			seen: []string{"GET login=release-bot page=1"}, errHas: "no SAML SSO authorization of release-bot's personal access token ending 00000000 in organization acme: nothing removed"},
		{name: "a list ignoring the login filter removes only the owner's", id: pat, ignoreLogin: true, want: schemas.ResponseExecuted,
			seen: []string{"GET login=release-bot page=1", "DELETE 161195"}},
		{name: "removed in between: 404 on the DELETE is already done", id: pat, fail: map[string][]answer{"delete": {notFound}}, want: schemas.ResponseAlreadyDone,
			seen: []string{"GET login=release-bot page=1", "DELETE 161195"}},
		{name: "404 on the list (no SAML SSO) is a failure, not done", id: pat, fail: map[string][]answer{"list": {notFound}}, want: schemas.ResponseFailed,
			seen: []string{"GET login=release-bot page=1"}, errHas: "or the organization does not use SAML SSO"},
		{name: "a secondary rate limit waits its Retry-After", id: pat, fail: map[string][]answer{"list": {secondary}}, want: schemas.ResponseExecuted,
			seen: []string{"GET login=release-bot page=1", "GET login=release-bot page=1", "DELETE 161195"}, waits: []time.Duration{7 * time.Second}},
		{name: "429 on the DELETE waits its Retry-After", id: pat, fail: map[string][]answer{"delete": {tooMany}}, want: schemas.ResponseExecuted,
			seen: []string{"GET login=release-bot page=1", "DELETE 161195", "DELETE 161195"}, waits: []time.Duration{3 * time.Second}},
		{name: "403 names the Administration permission, redacting the echoed token", id: pat, fail: map[string][]answer{"list": {notAccessible}}, want: schemas.ResponseFailed,
			seen: []string{"GET login=release-bot page=1"}, errHas: `"Administration"`},
		{name: "403 on the DELETE names it too", id: pat, fail: map[string][]answer{"delete": {notAccessible}}, want: schemas.ResponseFailed,
			seen: []string{"GET login=release-bot page=1", "DELETE 161195"}, errHas: "write to remove"},
		{name: "401 names admin:org for a classic PAT", id: pat, fail: map[string][]answer{"list": {badCreds}}, want: schemas.ResponseFailed,
			seen: []string{"GET login=release-bot page=1"}, errHas: "admin:org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFake(t, tc.filler)
			gh.ignoreLogin, gh.fail = tc.ignoreLogin, tc.fail
			out, waits, base := run(t, gh, tc.id)
			if len(out) != 2 || out[0].Status != schemas.ResponsePlanned || out[1].Status != tc.want {
				t.Fatalf("records %+v, want planned then %s", out, tc.want)
			}
			if strings.Join(gh.seen, "\n") != strings.Join(tc.seen, "\n") {
				t.Errorf("GitHub got\n%s\nwant\n%s", strings.Join(gh.seen, "\n"), strings.Join(tc.seen, "\n"))
			}
			if fmt.Sprint(waits) != fmt.Sprint(tc.waits) {
				t.Errorf("waited %v, want %v", waits, tc.waits)
			}
			if tc.errHas != "" && !strings.Contains(out[1].Error, tc.errHas) {
				t.Errorf("error %q does not name %s", out[1].Error, tc.errHas)
			}
			if tc.golden != "" {
				golden(t, tc.golden, strings.ReplaceAll(strings.Join(out[1].Requests, "\n")+"\n", base, "{base}"))
			}
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n%s\nwant\n%s", name, got, want)
	}
}

// What a dry run prints (tokenwatch respond revoke --dry-run, replay
// --actions): the POST for a fine-grained PAT, the listing for an SSO
// authorization, marked as a discovery.
func TestPlanIsWhatADryRunPrints(t *testing.T) {
	r := newRevoker(t, "https://api.github.com")
	var b strings.Builder
	for _, id := range []string{"pat:25381", "saml_sso:release-bot/71c3fc11", "saml_sso:mona_acme/Ae178B4a"} {
		vendorID, ok := r.Resolve(id)
		if !ok {
			t.Fatalf("%s does not resolve", id)
		}
		reqs, err := r.Plan(respond.Target{Source: Source, IntegrationID: id, VendorID: vendorID})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\n", id)
		for _, q := range reqs {
			fmt.Fprintf(&b, "  %s\n", q)
		}
	}
	golden(t, "plan.golden", b.String())
	for _, id := range []string{"oauth_app:4521", "hAbC123=", "saml_sso:x"} {
		if _, err := r.Plan(respond.Target{Source: Source, VendorID: id}); err == nil {
			t.Errorf("Plan(%q) planned a request", id)
		}
	}
}

func TestExpandRejectsWhatIsNotAList(t *testing.T) {
	r := newRevoker(t, "https://api.github.com").(*Revoker)
	tg := respond.Target{Source: Source, VendorID: "saml_sso:release-bot/71c3fc11"}
	first, _ := r.Discover(tg)
	for body, want := range map[string]string{
		`{"message":"Not Found"}`: "not a list",
		`[{"login":"release-bot","credential_type":"personal access token","token_last_eight":"71c3fc11"}]`: "no credential_id",
	} {
		if _, _, err := r.Expand(tg, first, []byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Expand(%s) = %v, want an error naming %q", body, err, want)
		}
	}
	full := "[" + strings.TrimSuffix(strings.Repeat(`{"login":"octocat","credential_id":1,"credential_type":"SSH key"},`, 100), ",") + "]"
	if _, _, err := r.Expand(tg, respond.Request{Method: http.MethodGet, URL: "https://api.github.com/orgs/acme/credential-authorizations"}, []byte(full)); err == nil {
		t.Error("a full page of a request without a page number asked for a next page")
	}
}

// The planner acts on what resolves and skips the rest, saying so; a
// catalogued integration resolves through its saml_sso identity.
func TestPlannerChoosesTheLeverByCredential(t *testing.T) {
	cat, err := inventory.Parse([]byte(`
integrations:
  - id: release-pipeline
    name: Release pipeline PAT
    owner: platform@acme.example
    identities:
      - {source: github, id: "cGF0"}
      - {source: github, id: "saml_sso:release-bot/71c3fc11"}
`))
	if err != nil {
		t.Fatal(err)
	}
	rv := newRevoker(t, "https://api.github.com")
	cfg := respond.DefaultConfig()
	cfg.Rules = []respond.Rule{{Name: "revoke-gh", Action: schemas.ActionRevoke}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := respond.NewPlanner(cfg, map[string]respond.Revoker{Source: rv}, cat)
	at := schemas.NewTime(time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC))
	out := p.Plan(schemas.Incident{ID: "inc-gh", Version: 1, Source: Source, UpdatedAt: at,
		IntegrationIDs: []string{"pat:25381", "release-pipeline", "oauth_app:4521", "pat:cGF0"}})
	var got []string
	for _, pl := range out {
		r := pl.Response
		got = append(got, fmt.Sprintf("%s %s %s %q %q", r.IntegrationID, r.Status, r.Target, r.Requests, r.Reason))
	}
	golden(t, "planner.golden", strings.Join(got, "\n")+"\n")
}

func TestConfigIsStrict(t *testing.T) {
	for doc, want := range map[string]string{
		"org: acme\ntoken: env:X\ntokne: y\n": "tokne",
		"token: env:X\n":                      "org",
		"org: acme\n":                         "token",
		"org: acme/x\ntoken: env:X\n":         "org",
		"org: acme\ntoken: env:X\nbase_url: ftp://github.local\n": "base_url",
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
