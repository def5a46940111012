package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const (
	scen = "../../testdata/scenarios/google_oauth_theft"
	city = "../../testdata/geoip/test-city.mmdb"
	asn  = "../../testdata/geoip/test-asn.mmdb"
)

func tokenwatch(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestReplayIsDeterministicAndFindsTheAttack(t *testing.T) {
	args := []string{"replay", "--source", "google_workspace", "--geoip-city", city, "--geoip-asn", asn, filepath.Join(scen, scenario.PagesFile)}
	code, out1, errOut := tokenwatch(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, out2, _ := tokenwatch(t, args...)
	if out1 != out2 {
		t.Fatal("two replays of the same input differ")
	}
	var alerts []schemas.Alert
	for _, line := range strings.Split(strings.TrimSpace(out1), "\n") {
		var a schemas.Alert
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("stdout line is not an alert: %q", line)
		}
		alerts = append(alerts, a)
	}
	raw, _ := os.ReadFile(filepath.Join(scen, scenario.ExpectedFile))
	expected, _ := scenario.ReadExpected(raw)
	if problems := scenario.Match(expected, alerts); len(problems) > 0 {
		t.Fatalf("replay vs expected:\n%s", strings.Join(problems, "\n"))
	}
}

func TestNormalizeWritesEventsAndDeadLettersApart(t *testing.T) {
	f := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(f, []byte(`{"id":{"time":"2026-10-05T10:00:00Z","uniqueQualifier":"1"},"events":[{"name":"revoke","parameters":[{"name":"client_id","value":"c"}]}]}`+"\n{oops\n"), 0o644)
	code, out, errOut := tokenwatch(t, "normalize", "--source", "google_workspace", f)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ev schemas.Event
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ev); err != nil || ev.Action.Category != "revoke" {
		t.Fatalf("stdout %q: %v", out, err)
	}
	if !strings.Contains(errOut, "1 record(s) dead-lettered") || !strings.Contains(errOut, "malformed JSON") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestBadInvocationsFailWithOneLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"replay", "--nope"}, "flag provided but not defined"},
		{"missing source", []string{"replay", "x.json"}, "--source is required"},
		{"unknown source", []string{"normalize", "--source", "myspace", "x.json"}, `unknown source "myspace"`},
		{"missing file", []string{"replay", "--source", "google_workspace", "/nonexistent.json"}, "no such file"},
		{"missing config", []string{"run", "--config", "/nonexistent.yaml"}, "no such file"},
		{"no config", []string{"run"}, "--config is required"},
		{"bad role", []string{"run", "--config", "x", "--role", "dance"}, `role "dance"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tokenwatch(t, tc.args...)
			if code == 0 {
				t.Fatal("exit 0")
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q, want one line containing %q", errOut, tc.want)
			}
		})
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(f, []byte("kafka:\n  partitions: 0\nlog:\n  level: loud\n"), 0o644)
	code, _, errOut := tokenwatch(t, "run", "--config", f)
	if code == 0 || !strings.Contains(errOut, "kafka.partitions") || !strings.Contains(errOut, "log.level") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	os.WriteFile(f, []byte("kafak: {}\n"), 0o644)
	if code, _, errOut = tokenwatch(t, "run", "--config", f); code == 0 || !strings.Contains(errOut, "kafak") {
		t.Fatalf("unknown key: exit %d stderr %q", code, errOut)
	}
}

func TestDemoPrintsTheAttack(t *testing.T) {
	code, out, errOut := tokenwatch(t, "demo", "--scenario", scen, "--geoip-city", city, "--geoip-asn", asn, "--clickhouse", "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"geo.new_country", "volume.spike", "Pipeline CRM Sync used from new country NG",
		"7 alerts correlated into 1 incidents", "/admin/directory/v1/users/{user}/tokens/{clientId}"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Incidents first, their signals beneath, then the alerts.
	if i, a := strings.Index(out, "INCIDENT "), strings.Index(out, "The 7 alerts behind them"); i < 0 || a < i {
		t.Errorf("the incident is not shown before the alerts:\n%s", out)
	}
	// The pivot SQL an analyst pastes is printed whole.
	if strings.Contains(strings.SplitN(out, "\n", 2)[1], "…") {
		t.Errorf("the demo truncates something an analyst would paste:\n%s", out)
	}
}

func TestReplayIncidentsContract(t *testing.T) {
	code, out, errOut := tokenwatch(t, "replay", "--incidents", "--source", "google_workspace", "--geoip-city", city, "--geoip-asn", asn,
		filepath.Join(scen, "token_activity.jsonl.gz"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d incidents, want the one theft:\n%s", len(lines), out)
	}
	var inc map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &inc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "version", "tenant", "integration_id", "integration_ids", "severity", "risk_score", "first_seen",
		"last_seen", "detectors", "alert_ids", "title", "summary"} {
		if _, ok := inc[k]; !ok {
			t.Errorf("incident lacks %q: %s", k, lines[0])
		}
	}
	if ids, _ := inc["alert_ids"].([]any); len(ids) != 7 {
		t.Errorf("incident cites %d alerts, want the 7 of the theft", len(ids))
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := tokenwatch(t, "version"); code != 0 || !strings.HasPrefix(out, "tokenwatch ") {
		t.Fatalf("exit %d out %q", code, out)
	}
}

func TestNormalizeAndReplayWorkForEverySource(t *testing.T) {
	for _, src := range []string{"github", "okta", "slack", "microsoft", "salesforce"} {
		t.Run(src, func(t *testing.T) {
			in := filepath.Join("../../ingest", src, "testdata/records.jsonl")
			code, out, errOut := tokenwatch(t, "normalize", "--source", src, in)
			if code != 0 || strings.Count(out, "\n") == 0 {
				t.Fatalf("normalize: exit %d, %d lines, stderr %q", code, strings.Count(out, "\n"), errOut)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var ev schemas.Event
				if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Source != src {
					t.Fatalf("not an event of %s: %q", src, line)
				}
			}
			if code, _, errOut := tokenwatch(t, "replay", "--source", src, "--geoip-city", city, "--geoip-asn", asn, in); code != 0 {
				t.Fatalf("replay: exit %d: %s", code, errOut)
			}
		})
	}
}

func TestDetectorsListsGoDetectorsAndRules(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("detect:\n  detectors: {volume.spike: {enabled: false}, geo.new_asn: {shadow: true}}\n"+
		"  rules: {shadow: [sigma.tokenwatch-github-pat-deploy-key]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tokenwatch(t, "detectors", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	// enabled, then shadow
	for id, want := range map[string]string{
		"geo.new_country go test T1078.004,T1550.001":                                "yes no",
		"geo.new_asn go test T1078.004,T1550.001":                                    "yes yes",
		"volume.spike go test T1530,T1567":                                           "no no",
		"sigma.tokenwatch-okta-oauth-admin-scope-proxy sigma experimental T1550.001": "yes no",
		"sigma.tokenwatch-github-pat-deploy-key sigma experimental T1098.004":        "yes yes",
		// A correlation is one detector; the rules it uses run inside it only.
		"sigma.tokenwatch-salesforce-recon-count-bulk-export sigma-correlation experimental T1213,T1530": "yes no",
		"sigma.tokenwatch-salesforce-count-query sigma-part experimental -":                              "in:sigma.tokenwatch-salesforce-recon-count-bulk-export no",
	} {
		f := strings.Fields(id)
		got := rows[f[0]]
		if len(got) != 6 || strings.Join(got[:4], " ") != id || strings.Join(got[4:], " ") != want {
			t.Errorf("row %v, want %s %s", got, id, want)
		}
	}
}

// `tokenwatch detectors --long` (or naming detectors) prints each in full:
// a Go detector's runbook and false positives from its Spec, a rule's from
// its own keys (runbook is tokenwatch's one custom key).
func TestDetectorsLongShowsRunbookFalsePositivesReferences(t *testing.T) {
	code, out, errOut := tokenwatch(t, "detectors", "sigma.tokenwatch-github-pat-deploy-key", "--long", "geo.new_asn")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"sigma.tokenwatch-github-pat-deploy-key\n  kind: sigma  status: experimental  techniques: T1098.004  enabled: yes  shadow: no\n  runbook: Ask the PAT's owner",
		"  false positives:\n    - Provisioning scripts that add deploy keys with a PAT by design\n  references:\n    - https://docs.github.com/",
		"\n\ngeo.new_asn\n  kind: go",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := tokenwatch(t, "detectors", "sigma.nosuch"); code != 2 || !strings.Contains(errOut, `no detector or rule has the id "sigma.nosuch"`) {
		t.Fatalf("unknown id: exit %d, %s", code, errOut)
	}
	if code, out, _ := tokenwatch(t, "detectors", "-v"); code != 0 || strings.HasPrefix(out, "ID") || !strings.Contains(out, "\n  runbook: ") {
		t.Fatalf("-v: exit %d\n%s", code, out)
	}
}

// replay --decisions honours analysts' decisions as the live correlator
// does: a suppressed key opens no incident, an acknowledged incident's later
// versions say so, a resolved one closes at its next signal.
func TestReplayHonoursDecisions(t *testing.T) {
	input := filepath.Join(scen, "token_activity.jsonl.gz")
	replay := func(t *testing.T, extra ...string) []schemas.Incident {
		t.Helper()
		args := append([]string{"replay", "--incidents", "--source", "google_workspace", "--geoip-city", city, "--geoip-asn", asn}, extra...)
		code, out, errOut := tokenwatch(t, append(args, input)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var incs []schemas.Incident
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var inc schemas.Incident
			if err := json.Unmarshal([]byte(line), &inc); err != nil {
				t.Fatalf("not an incident: %q", line)
			}
			incs = append(incs, inc)
		}
		return incs
	}
	base := replay(t)
	if len(base) != 1 || base[0].Version < 2 {
		t.Fatalf("want the theft as one incident with several versions, got %+v", base)
	}
	theft := base[0]
	decisions := func(t *testing.T, lines ...string) string {
		f := filepath.Join(t.TempDir(), "decisions.jsonl")
		if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	decision := func(action, until string) string {
		d := map[string]any{"incident_id": theft.ID, "tenant": theft.Tenant, "key": theft.Key, "integration_id": theft.IntegrationID,
			"action": action, "reason": "rehearsal", "actor": "ana", "decided_at": "2026-12-01T09:00:00Z"}
		if until != "" {
			d["until"] = until
		}
		b, _ := json.Marshal(d)
		return string(b)
	}
	t.Run("suppress", func(t *testing.T) {
		if got := replay(t, "--decisions", decisions(t, decision("suppress", "2100-01-01T00:00:00Z"))); len(got) != 0 {
			t.Fatalf("a suppressed key opened %d incident(s), first %s", len(got), got[0].ID)
		}
		// A suppression that ended before the input began still closes the
		// incident it was made on (live does the same), but holds back no
		// signal: the later ones open a new incident.
		got := replay(t, "--decisions", decisions(t, decision("suppress", "2001-01-01T00:00:00Z")))
		var closed, reopened bool
		for _, inc := range got {
			closed = closed || (inc.ID == theft.ID && inc.Status == schemas.IncidentSuppressed)
			reopened = reopened || (inc.ID != theft.ID && inc.Key == theft.Key)
		}
		if !closed || !reopened {
			t.Fatalf("an expired suppression: closed %v, a new incident %v (%d incidents)", closed, reopened, len(got))
		}
	})
	t.Run("acknowledge", func(t *testing.T) {
		got := replay(t, "--decisions", decisions(t, decision("acknowledge", "")))
		if len(got) != 1 || got[0].ID != theft.ID || got[0].Status != schemas.IncidentAcknowledged {
			t.Fatalf("acknowledged: %d incidents, want the theft's, acknowledged", len(got))
		}
	})
	t.Run("resolve", func(t *testing.T) {
		got := replay(t, "--decisions", decisions(t, decision("resolve", "")))
		var closed bool
		for _, inc := range got {
			if inc.ID == theft.ID {
				closed = inc.Status == schemas.IncidentResolved && inc.Version < theft.Version+1
			}
		}
		if !closed {
			t.Fatalf("resolved: the theft's incident did not close at its next signal (%d incidents)", len(got))
		}
	})
	t.Run("bad line", func(t *testing.T) {
		f := decisions(t, decision("acknowledge", ""), `{"incident_id":"x","action":"forget"}`)
		code, _, errOut := tokenwatch(t, "replay", "--source", "google_workspace", "--decisions", f, input)
		if code == 0 || !strings.Contains(errOut, "decisions.jsonl:2") || !strings.Contains(errOut, `"forget"`) {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

// A rule that loads but may never fire (it names no event type the Okta
// connector reads) is said wherever an engineer looks: the detectors table
// and long form, and config check.
func TestARuleThatMayNeverFireIsSaid(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	rule, err := filepath.Abs("../../detect/sigma/testdata/sigmahq/okta_user_account_locked_out.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("detect:\n  rules: {paths: ["+rule+"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const id, note = "sigma.14701da0-4b0f-4ee6-9c95-2ffb4e73bb9a", "names no eventtype: it runs on every okta event tokenwatch reads (app.oauth2.* and system.api_token.*"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"detectors", "--config", cfg}, "\nnote: " + id + " " + note},
		{[]string{"detectors", "--config", cfg, id}, "\n  note: " + note},
		{[]string{"config", "check", cfg}, cfg + ": note: " + id + ": " + note},
	} {
		code, out, errOut := tokenwatch(t, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want %q in\n%s%s", c.args, code, c.want, out, errOut)
		}
	}
	// A rule on a read event type has nothing to say.
	if code, out, _ := tokenwatch(t, "detectors"); code != 0 || strings.Contains(out, "note:") {
		t.Errorf("the default detectors carry a note:\n%s", out)
	}
}
