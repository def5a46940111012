package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	oktaRecords    = "../../ingest/okta/testdata/records.jsonl"
	drift          = "../../detect/sigma/rules/mr_salesforce_recon_count_bulk_export.yml"
	driftScenarios = "../../detect/sigma/testdata/scenarios/"
)

const geoRule = `title: Okta OAuth token from Nigeria
id: test-okta-ng
logsource:
    product: okta
detection:
    sel_grant:
        eventtype|startswith: app.oauth2.as.token.grant
    sel_ng:
        geo.country: NG
    condition: sel_grant and sel_ng
`

// badRule's line 6 uses a modifier the engine does not run.
const badRule = `title: Okta API token created
logsource:
    product: okta
detection:
    selection:
        eventtype|base64: system.api_token.create
    condition: selection
`

const correlationRule = `title: Many token grants
correlation:
    type: event_count
    rules: [okta-grant]
    group-by: [actor.id]
    timespan: 10m
    condition: {gte: 10}
`

// `tokenwatch rule test` replays raw Okta records (the same file replay
// reads) through one rule: each match is a JSON line naming the rule, the
// event, its time and the selections that matched; no match exits 0; a
// rule that cannot load exits non-zero naming the file, line and construct.
func TestRuleTestPrintsEachMatch(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	created := "../../detect/sigma/testdata/sigmahq/okta_api_token_created.yml"
	userCreated := "../../detect/sigma/testdata/sigmahq/okta_user_created.yml"
	geo, bad, corr := write("geo.yml", geoRule), write("bad.yml", badRule), write("corr.yml", correlationRule)
	tests := []struct {
		name    string
		args    []string
		code    int
		matches []string // "event_id selection,selection"
		stderr  string
	}{
		{"SigmaHQ rule matches the one token creation", []string{created, "--source", "okta", oktaRecords}, 0,
			[]string{"9c4f1e32-7c21-11f0-9a8b-1b2c3d4e5f60 selection"}, "matched 1 of 9 events"},
		{"flags before the rule, source from the logsource", []string{"--tenant", "acme", created, oktaRecords}, 0,
			[]string{"9c4f1e32-7c21-11f0-9a8b-1b2c3d4e5f60 selection"}, "matched 1 of 9 events"},
		{"no match is no error", []string{"../../detect/sigma/rules/okta_oauth_admin_scope_from_proxy.yml", oktaRecords}, 0,
			nil, "matched 0 of 9 events"},
		{"a geo field without GeoIP matches nothing", []string{geo, oktaRecords}, 0, nil, "matched 0 of 9"},
		{"with GeoIP the Lagos grant matches both selections", []string{geo, "--geoip-city", city, "--geoip-asn", asn, oktaRecords}, 0,
			[]string{"4b7e3f2a-7c1d-11f0-9a8b-1b2c3d4e5f60 sel_grant,sel_ng"}, "matched 1 of 9"},
		{"a SigmaHQ rule that names no event type says it may never fire", []string{"../../detect/sigma/testdata/sigmahq/okta_user_account_locked_out.yml", oktaRecords}, 0, nil,
			"note: sigma.14701da0-4b0f-4ee6-9c95-2ffb4e73bb9a names no eventtype: it runs on every okta event tokenwatch reads (app.oauth2.* and system.api_token.*"},
		{"unsupported modifier", []string{bad, oktaRecords}, 1, nil, bad + ":6: modifier |base64"},
		{"a SigmaHQ rule on an event type the Okta connector does not read", []string{userCreated, oktaRecords}, 1, nil,
			userCreated + ":16: eventtype: okta rule watches eventtype user.lifecycle.create, which tokenwatch's Okta connector does not read, so the rule could never fire: it reads app.oauth2.* and system.api_token.* (integration activity"},
		{"correlation of a rule that is not in the file", []string{corr, oktaRecords}, 1, nil, corr + ":4: correlation.rules: no loaded rule has the id or name \"okta-grant\""},
		{"the shipped Drift collection fires once, on the Drift app's export", []string{drift, driftScenarios + "fires_on_drift_sequence/records.jsonl", driftScenarios + "quiet_on_etl_that_counts_after_exporting/records.jsonl"}, 0, []string{
			"elf:a2a19289a5af7491875500b1 describe_rest", "etl-export large_query", "etl-count-after selection",
			"elf:ca6cfd9f63224ca33860c8a2 describe_rest", "elf:1e5441845ca85a4a1e51a382 describe_rest",
			"drift-count-account selection", "drift-count-contact selection", "drift-bulk-result bulk_result",
			"drift-bulk-result salesforce_metadata_listing,salesforce_count_query,salesforce_bulk_export"},
			"sigma.tokenwatch-salesforce-recon-count-bulk-export fired on 1, "},
		{"records of another source", []string{created, "--source", "github", oktaRecords}, 2, nil, "reads okta events"},
		{"no input files", []string{created}, 2, nil, "at least one input file"},
		{"missing input file", []string{created, filepath.Join(dir, "nope.jsonl")}, 1, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := tokenwatch(t, append([]string{"rule", "test"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line == "" {
					continue
				}
				var raw map[string]any
				var m RuleMatch
				if json.Unmarshal([]byte(line), &raw) != nil || json.Unmarshal([]byte(line), &m) != nil {
					t.Fatalf("not a JSON match: %q", line)
				}
				for _, k := range []string{"rule_id", "event_id", "time", "selections"} {
					if _, ok := raw[k]; !ok {
						t.Errorf("match lacks %s: %s", k, line)
					}
				}
				if m.Time.IsZero() || m.RuleID == "" {
					t.Errorf("match without a time or rule id: %s", line)
				}
				got = append(got, m.EventID+" "+strings.Join(m.Selections, ","))
			}
			if !slices.Equal(got, tt.matches) {
				t.Fatalf("matches %q, want %q", got, tt.matches)
			}
		})
	}
}
