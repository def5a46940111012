package program_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Shadow mode, for a Sigma rule (detect.rules.shadow) and a Go detector
// (detect.detectors.<id>.shadow): the detector still raises its alert, with
// the same id, marked shadow; and although the correlator is told that one
// signal of it opens an incident, a shadow alert opens none.
func TestShadowAlertsAreRaisedButNeverOpenIncidents(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.yml"), []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	const rule = "sigma.test-okta-token-create"
	// Three integrations from one IP (chain.shared_ip) and the rule's event.
	evs := ruleEvents(t)
	base := evs[len(evs)-1].Time
	for i, app := range []string{"crm", "hr", "drive"} {
		evs = append(evs, schemas.Event{EventID: app, Source: "okta", Tenant: "acme", Time: schemas.NewTime(base.Add(timeMinutes(i + 1))),
			Integration: schemas.Integration{ID: app}, Action: schemas.Action{Name: "token", Category: "access"},
			Network: schemas.Network{IP: "45.76.10.20"}})
	}
	cases := []struct {
		name      string
		detectors map[string]yaml.Node
		shadow    []string
		detector  string // the detector under test, made immediate
		want      bool   // its alert is shadow
	}{
		{"rule live", nil, nil, rule, false},
		{"rule shadow", nil, []string{rule}, rule, true},
		{"go detector live", nil, nil, "chain.shared_ip", false},
		{"go detector shadow", map[string]yaml.Node{"chain.shared_ip": node(t, "shadow: true\nmin_integrations: 3")}, nil, "chain.shared_ip", true},
	}
	ids := map[string]string{} // detector → alert id, live and shadow alike
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc := correlate.DefaultConfig()
			cc.Immediate = []string{c.detector}
			p, err := program.Build(program.Config{Detectors: c.detectors, Correlate: &cc,
				Rules: sigma.Config{Paths: []string{dir}, Shadow: c.shadow}}, program.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Shadow(c.detector) != c.want {
				t.Fatalf("Shadow(%s) = %v", c.detector, !c.want)
			}
			r := p.NewReplay()
			for i := range evs {
				ev := evs[i]
				r.Observe(&ev)
			}
			var got []schemas.Alert
			for _, a := range r.Finish() {
				if a.Detector == c.detector {
					got = append(got, a)
				}
				if a.Detector != c.detector && a.Shadow {
					t.Errorf("%s's alert is shadow", a.Detector)
				}
			}
			if len(got) != 1 || got[0].Shadow != c.want {
				t.Fatalf("%s alerts %+v, want one with shadow %v", c.detector, got, c.want)
			}
			if prev, ok := ids[c.detector]; ok && prev != got[0].ID {
				t.Fatalf("alert id %s in one mode, %s in the other", prev, got[0].ID)
			}
			ids[c.detector] = got[0].ID
			var from []string
			for _, inc := range r.Incidents() {
				if slices.Contains(inc.AlertIDs, got[0].ID) {
					from = append(from, inc.ID)
				}
			}
			if opened := len(from) > 0; opened == c.want {
				t.Fatalf("incidents with the alert: %v; shadow %v", from, c.want)
			}
		})
	}
}

func TestShadowNamingNoRuleIsAnError(t *testing.T) {
	_, err := program.Build(program.Config{Rules: sigma.Config{Shipped: true, Shadow: []string{"sigma.no-such-rule"}}}, program.Options{})
	if err == nil || !strings.Contains(err.Error(), "sigma.no-such-rule") {
		t.Fatalf("err %v, want it to name the unknown id", err)
	}
	_, err = program.Build(program.Config{Detectors: map[string]yaml.Node{"geo.new_asn": node(t, "shadow: sometimes")}}, program.Options{})
	if err == nil || !strings.Contains(err.Error(), "geo.new_asn.shadow") {
		t.Fatalf("err %v, want it to name detectors.geo.new_asn.shadow", err)
	}
}

// ApplyRules (a config edit) promotes a shadow rule and a shadow Go
// detector of a re-keyed stage: every stage's runner takes the new flags at
// Refresh, and the alerts after it are live. An edit that cannot load keeps
// the flags.
func TestApplyRulesPromotesOnEveryStage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.yml"), []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	const rule, chain = "sigma.test-okta-token-create", "chain.shared_ip"
	p, err := program.Build(program.Config{Detectors: map[string]yaml.Node{chain: node(t, "shadow: true\nmin_integrations: 3")},
		Rules: sigma.Config{Paths: []string{dir}, Shadow: []string{rule}}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var runners []*program.Runner
	for i := range p.Stages {
		runners = append(runners, p.NewRunner(i))
	}
	if len(runners) < 2 || !p.Shadow(rule) || !p.Shadow(chain) {
		t.Fatalf("%d stages, shadow %v %v", len(runners), p.Shadow(rule), p.Shadow(chain))
	}
	if err := p.ApplyRules(sigma.Config{Paths: []string{dir}, Shadow: []string{"sigma.no-such-rule"}}, nil); err == nil || !p.Shadow(rule) || runners[1].Refresh() {
		t.Fatalf("a shadow id no rule has: err %v, shadow %v", err, p.Shadow(rule))
	}
	if err := p.ApplyRules(sigma.Config{Paths: []string{dir}}, map[string]yaml.Node{chain: node(t, "min_integrations: 3")}); err != nil {
		t.Fatal(err)
	}
	if p.Shadow(rule) || p.Shadow(chain) {
		t.Fatalf("after ApplyRules: shadow %v %v", p.Shadow(rule), p.Shadow(chain))
	}
	for i, r := range runners {
		if !r.Refresh() {
			t.Fatalf("stage %d's runner did not switch", i)
		}
	}
	evs := ruleEvents(t)
	base := evs[len(evs)-1].Time
	for i, app := range []string{"crm", "hr", "drive"} {
		evs = append(evs, schemas.Event{EventID: app, Source: "okta", Tenant: "acme", Time: schemas.NewTime(base.Add(timeMinutes(i + 1))),
			Integration: schemas.Integration{ID: app}, Action: schemas.Action{Name: "token", Category: "access"},
			Network: schemas.Network{IP: "45.76.10.20"}})
	}
	var alerts []schemas.Alert
	emit := func(j int, rec *schemas.Event) { alerts = append(alerts, runners[j].Process(rec, nil)...) }
	for i := range evs {
		alerts = append(alerts, runners[0].Process(&evs[i], emit)...)
	}
	for _, r := range runners {
		alerts = append(alerts, r.Engine.Flush(r.Engine.Watermark())...)
	}
	seen := map[string]bool{}
	for _, a := range alerts {
		seen[a.Detector] = true
		if a.Shadow {
			t.Errorf("%s's alert is shadow after the promotion", a.Detector)
		}
	}
	if !seen[rule] || !seen[chain] {
		t.Fatalf("alerts from %v, want %s and %s", seen, rule, chain)
	}
}
