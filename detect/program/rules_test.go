package program_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const ruleYAML = `title: Okta API token created
id: test-okta-token-create
status: test
tags:
    - attack.persistence
    - attack.t1098.001
logsource:
    product: okta
detection:
    selection:
        eventtype: system.api_token.create
    condition: selection
level: high
`

func ruleEvents(t *testing.T) []schemas.Event {
	t.Helper()
	base := mustTime(t, "2026-10-20T02:00:00Z")
	var evs []schemas.Event
	for i, typ := range []string{"user.session.start", "system.api_token.create"} {
		evs = append(evs, schemas.Event{EventID: "ev" + typ, Source: "okta", Tenant: "acme",
			Time: schemas.NewTime(base.Add(timeMinutes(i))), Integration: schemas.Integration{ID: "svc"},
			Action: schemas.Action{Name: typ, Category: "admin"}, Raw: json.RawMessage(`{"eventType":"` + typ + `"}`)})
	}
	return evs
}

// A rule from a configured folder runs in the program: it raises an alert on
// the replayed event it matches, and a second replay gives the same ids.
func TestConfiguredRuleRaisesAlertOnReplay(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.yml"), []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := program.Build(program.Config{Rules: sigma.Config{Paths: []string{dir}}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !slices.Contains(p.DetectorIDs(), "sigma.test-okta-token-create") {
		t.Fatalf("detectors %v", p.DetectorIDs())
	}
	replay := func() []string {
		var ids []string
		for _, a := range p.Run(ruleEvents(t)) {
			if a.Detector == "sigma.test-okta-token-create" {
				if !slices.Equal(a.EventIDs, []string{"evsystem.api_token.create"}) || a.Severity != schemas.SeverityHigh ||
					!slices.Equal(a.Techniques, []string{"T1098.001"}) || a.Status != "test" {
					t.Fatalf("alert %+v", a)
				}
				ids = append(ids, a.ID)
			}
		}
		return ids
	}
	first := replay()
	if len(first) != 1 {
		t.Fatalf("rule alerts %v, want one", first)
	}
	if again := replay(); !slices.Equal(first, again) {
		t.Fatalf("replay gave %v, then %v", first, again)
	}
}

func TestRulesLoadErrorsFailTheBuild(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(ruleYAML, "eventtype:", "eventtype|base64:", 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := program.Build(program.Config{Rules: sigma.Config{Paths: []string{dir}}}, program.Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.yml") {
		t.Fatalf("err %v, want it to name the rule file", err)
	}
	p, err := program.Build(program.Config{Rules: sigma.DefaultConfig()}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.DetectorIDs(), "sigma.tokenwatch-okta-oauth-admin-scope-proxy") {
		t.Fatalf("shipped rules not loaded: %v", p.DetectorIDs())
	}
}

// corrYAML is a collection: a correlation over ruleYAML's rule, which then
// raises no alerts of its own (generate defaults to false).
const corrYAML = `title: Two Okta API tokens in ten minutes
id: test-okta-two-tokens
level: critical
correlation:
    type: event_count
    rules: [test-okta-token-create]
    timespan: 10m
    condition: {gte: 2}
---
` + ruleYAML

// A correlation runs in the program as one detector whose windows live in
// the engine's per-integration state: a checkpoint and restore in the
// middle of a sequence gives the alert a straight run gives, with the same
// id, and the rule it uses raises none of its own.
func TestCorrelationRuleSurvivesACheckpoint(t *testing.T) {
	p := buildWithRule(t, corrYAML, "sigma.test-okta-two-tokens")
	if ids := p.RuleIDs(); !slices.Equal(ids, []string{"sigma.test-okta-two-tokens"}) {
		t.Fatalf("rule detectors %v", ids)
	}
	base := mustTime(t, "2026-10-20T02:00:00Z")
	events := func() []schemas.Event {
		var evs []schemas.Event
		for i, typ := range []string{"system.api_token.create", "user.session.start", "system.api_token.create", "system.api_token.create"} {
			evs = append(evs, schemas.Event{EventID: "ev" + string(rune('a'+i)), Source: "okta", Tenant: "acme",
				Time: schemas.NewTime(base.Add(timeMinutes(i))), Integration: schemas.Integration{ID: "svc"},
				Action: schemas.Action{Name: typ}, Raw: json.RawMessage(`{"eventType":"` + typ + `"}`)})
		}
		return evs
	}
	run := func(checkpointAfter int) []schemas.Alert {
		r := p.NewRunner(0)
		var out []schemas.Alert
		for i, ev := range events() {
			out = append(out, r.Process(&ev, func(int, *schemas.Event) {})...)
			if i == checkpointAfter {
				snap, err := r.Engine.Snapshot(engine.Key{Tenant: "acme", ID: "svc"})
				if err != nil {
					t.Fatal(err)
				}
				r = p.NewRunner(0)
				if _, err := r.Engine.Restore(snap); err != nil {
					t.Fatal(err)
				}
			}
		}
		return out
	}
	straight := run(-1)
	if len(straight) != 1 || straight[0].Detector != "sigma.test-okta-two-tokens" || !slices.Equal(straight[0].EventIDs, []string{"eva", "evc"}) ||
		straight[0].Severity != schemas.SeverityCritical || !straight[0].Shadow {
		t.Fatalf("alerts %+v", straight)
	}
	for after := 0; after < 3; after++ {
		if got := run(after); len(got) != 1 || got[0].ID != straight[0].ID {
			t.Fatalf("checkpoint after event %d: %+v", after, got)
		}
	}
}

// An upper-bound condition is judged when its window closes: with the
// integration's next event, or the engine's tick as event time crosses an
// hour (and the flush that ends a replay).
func TestUpperBoundCorrelationFiresOnTheFlush(t *testing.T) {
	p := buildWithRule(t, strings.NewReplacer("id: test-okta-two-tokens", "id: test-okta-one-token", "{gte: 2}", "{lt: 2}").Replace(corrYAML))
	evs := ruleEvents(t)
	late := evs[0]
	late.EventID, late.Time = "evlater", schemas.NewTime(late.Time.Add(time.Hour))
	var got []string
	for _, a := range p.Run(append(evs, late)) {
		got = append(got, a.Detector+" "+strings.Join(a.EventIDs, ","))
	}
	if !slices.Equal(got, []string{"sigma.test-okta-one-token evsystem.api_token.create"}) {
		t.Fatalf("alerts %v", got)
	}
}

// buildWithRule builds the program with one rule file of body (closed when
// the test ends), these detector ids in shadow.
func buildWithRule(t *testing.T, body string, shadow ...string) *program.Program {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rule.yml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := program.Build(program.Config{Rules: sigma.Config{Paths: []string{dir}, Shadow: shadow}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
