package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

const gwsClient = "1234567890-abc.apps.googleusercontent.com"

// respondConfig writes a config whose Google Workspace revoker talks to base.
func respondConfig(t *testing.T, base, rules string) string {
	t.Helper()
	t.Setenv("TW_TEST_GWS_TOKEN", "ya29.cli-secret-token")
	path := filepath.Join(t.TempDir(), "tokenwatch.yaml")
	doc := "respond:\n  max_revocations_per_hour: 5\n" + rules + "  vendors:\n    google_workspace:\n      access_token: env:TW_TEST_GWS_TOKEN\n"
	if base != "" {
		doc += "      base_url: " + base + "\n"
	}
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRespondRevokeDryRunPrintsRequestsAndSendsNothing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, tc := range []struct {
		name, base string
		want       []string
	}{
		{"documented URL", "", []string{"DELETE https://admin.googleapis.com/admin/directory/v1/users/ana@acme.example/tokens/" + gwsClient,
			"DELETE https://admin.googleapis.com/admin/directory/v1/users/bo@acme.example/tokens/" + gwsClient}},
		{"configured endpoint", srv.URL, []string{"DELETE " + srv.URL + "/admin/directory/v1/users/ana@acme.example/tokens/" + gwsClient,
			"DELETE " + srv.URL + "/admin/directory/v1/users/bo@acme.example/tokens/" + gwsClient}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := respondConfig(t, tc.base, "")
			code, out, errOut := tokenwatch(t, "respond", "revoke", "--config", cfg, "--source", "google_workspace", "--integration", gwsClient,
				"--principal", "ana@acme.example,bo@acme.example", "--dry-run")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("printed\n%s\nwant\n%s", out, strings.Join(tc.want, "\n"))
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("a dry run sent %d requests", hits.Load())
	}
}

// A revoker that discovers what to revoke (Salesforce): the dry run prints
// the listing query, marked as a discovery whose answer decides the
// revokes, and sends nothing; enforced, the listing and each revoke are
// sent and reported.
func TestRespondRevokeSalesforceDiscovers(t *testing.T) {
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = append(sent, r.Method+" "+r.URL.Path)
		switch r.URL.Path {
		case "/services/data/v60.0/query":
			if r.Header.Get("Authorization") != "Bearer 00Dcli!sf-secret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"OauthToken"},"AppName":"Data Sync","UserId":"005fj000001AbCd","DeleteToken":"handle-1"}]}`))
		case "/services/oauth2/revoke":
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	t.Setenv("TW_TEST_SF_TOKEN", "00Dcli!sf-secret")
	cfg := filepath.Join(t.TempDir(), "tokenwatch.yaml")
	doc := "respond:\n  vendors:\n    salesforce:\n      instance_url: " + srv.URL + "\n      access_token: env:TW_TEST_SF_TOKEN\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tokenwatch(t, "respond", "revoke", "--config", cfg, "--source", "salesforce", "--integration", "app:Data Sync", "--dry-run")
	want := "GET " + srv.URL + "/services/data/v60.0/query?q=SELECT+AppName%2C+UserId%2C+DeleteToken+FROM+OauthToken+WHERE+AppName+%3D+%27Data+Sync%27 (discover: the revokes depend on its answer)"
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("dry run: exit %d\n%s\nwant\n%s\n%s", code, out, want, errOut)
	}
	if len(sent) != 0 {
		t.Fatalf("a dry run sent %v", sent)
	}
	code, out, errOut = tokenwatch(t, "respond", "revoke", "--config", cfg, "--source", "salesforce", "--integration", "app:Data Sync")
	if code != 0 || !strings.Contains(out, "executed\tapp:Data Sync") {
		t.Fatalf("revoke: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Join(sent, ",") != "GET /services/data/v60.0/query,POST /services/oauth2/revoke" {
		t.Errorf("sent %v", sent)
	}
	if strings.Contains(out+errOut, "sf-secret") || strings.Contains(out+errOut, "handle-1") {
		t.Error("a credential appears in the output")
	}
}

func TestRespondRevokeSendsAndReports(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer ya29.cli-secret-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.URL.Path, "/users/gone@") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if strings.Contains(r.URL.Path, "/users/denied@") {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":403,"message":"Not Authorized to access this resource/api"}}`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := respondConfig(t, srv.URL, "")
	code, out, errOut := tokenwatch(t, "respond", "revoke", "--config", cfg, "--source", "google_workspace", "--integration", gwsClient,
		"--principal", "ana@acme.example,gone@acme.example,denied@acme.example")
	if code != 1 || !strings.Contains(errOut, "1 revocation(s) failed") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"executed\t" + gwsClient + "\tana@acme.example", "already_done\t" + gwsClient + "\tgone@acme.example",
		"failed\t" + gwsClient + "\tdenied@acme.example", "admin.directory.user.security"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(paths) != 3 {
		t.Errorf("sent %v", paths)
	}
	if strings.Contains(out+errOut, "cli-secret-token") {
		t.Error("the admin token appears in the output")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"respond", "revoke", "--config", cfg, "--source", "google_workspace", "--integration", gwsClient}, "--principal"},
		{[]string{"respond", "revoke", "--config", cfg, "--source", "okta", "--integration", "0oa1b2c3d4e5f6g7h8i9"}, "no respond.vendors.okta"},
		{[]string{"respond", "revoke", "--config", cfg, "--source", "google_workspace", "--integration", "a/b", "--principal", "x"}, "does not resolve"},
		{[]string{"respond", "frobnicate"}, "respond revoke"},
		{[]string{"respond", "approve"}, "respond approve ID"},
	} {
		if code, _, errOut := tokenwatch(t, tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %s; want an error naming %q", tc.args[1:], code, errOut, tc.want)
		}
	}
}

// TestReplayActionsRehearseThePolicy replays the bundled theft with a
// revoke rule: the actions file names the attacked client and the users it
// acted for, in dry run, identically on a second replay.
func TestReplayActionsRehearseThePolicy(t *testing.T) {
	cfg := respondConfig(t, "", "  rules:\n    - name: revoke-high\n      match: {min_severity: high}\n      action: revoke\n")
	run := func() []map[string]any {
		actions := filepath.Join(t.TempDir(), "actions.jsonl")
		code, _, errOut := tokenwatch(t, "replay", "--config", cfg, "--actions", actions, "--source", "google_workspace",
			"--geoip-city", city, "--geoip-asn", asn, filepath.Join(scen, "token_activity.jsonl.gz"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		b, err := os.ReadFile(actions)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			out = append(out, m)
		}
		return out
	}
	first, second := run(), run()
	if len(first) == 0 {
		t.Fatal("no actions planned for the theft")
	}
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(second)
	if string(a) != string(b) {
		t.Error("two rehearsals of the same input differ")
	}
	for _, m := range first {
		for _, k := range []string{"incident_id", "source", "integration_id", "principal", "action", "mode", "request"} {
			if _, ok := m[k]; !ok {
				t.Errorf("action lacks %q: %v", k, m)
			}
		}
		if m["mode"] != schemas.ModeDryRun || m["action"] != schemas.ActionRevoke {
			t.Errorf("action %v, want a dry_run revoke", m)
		}
		reqs, _ := m["request"].([]any)
		if m["status"] == schemas.ResponsePlanned && (len(reqs) != 1 || !strings.HasPrefix(reqs[0].(string), "DELETE https://admin.googleapis.com/admin/directory/v1/users/")) {
			t.Errorf("request %v", m["request"])
		}
	}
	if code, _, errOut := tokenwatch(t, "replay", "--actions", "x.jsonl", "--source", "google_workspace", filepath.Join(scen, "token_activity.jsonl.gz")); code == 0 || !strings.Contains(errOut, "respond") {
		t.Errorf("--actions without a respond policy: exit %d %s", code, errOut)
	}
}

// TestReplayRevokesExpiredIntegration is time-bound access end to end: a
// catalog entry whose expires_at passed, still used, raises inventory.expired,
// which opens an incident at once, which a rule matching the detector turns
// into a (dry-run) revoke of that client for the user it acted for.
func TestReplayRevokesExpiredIntegration(t *testing.T) {
	cfg := respondConfig(t, "", "  rules:\n    - name: time-bound-access\n      match: {detectors: [inventory.expired]}\n      action: revoke\n")
	catalog, err := filepath.Abs("testdata/timebound/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(doc, []byte("inventory:\n  path: "+catalog+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	actions := filepath.Join(t.TempDir(), "actions.jsonl")
	code, _, errOut := tokenwatch(t, "replay", "--config", cfg, "--actions", actions, "--source", "google_workspace", "--tenant", "acme",
		"testdata/timebound/records.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(actions)
	if err != nil {
		t.Fatal(err)
	}
	var got []actionLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r actionLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		got = append(got, r)
	}
	const want = "DELETE https://admin.googleapis.com/admin/directory/v1/users/pm@acme.test/tokens/552011778899-survey.apps.googleusercontent.com"
	if len(got) != 1 {
		t.Fatalf("%d actions, want one revoke: %s", len(got), b)
	}
	r := got[0]
	if r.Action != schemas.ActionRevoke || r.Mode != schemas.ModeDryRun || r.IntegrationID != "survey-pilot" || r.Rule != "time-bound-access" ||
		r.Status != schemas.ResponsePlanned || len(r.Request) != 1 || r.Request[0] != want {
		t.Errorf("action %s, want a dry-run revoke of survey-pilot by rule time-bound-access: %s", b, want)
	}
}
