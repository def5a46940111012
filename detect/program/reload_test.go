package program_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// A rule reload reaches a runner only at Refresh; a new rule then fires, and
// the Go detectors keep their state across it: 19 auth failures before the
// reload and one after make auth.failure_burst's 20. A broken rule on
// reload keeps the running set.
func TestReloadedRulesRunAfterRefreshKeepingDetectorState(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("token.yml", ruleYAML)
	p, err := program.Build(program.Config{Rules: sigma.Config{Paths: []string{dir}}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := p.NewRunner(0)
	base := mustTime(t, "2026-10-20T02:00:00Z")
	n := 0
	observe := func(typ, outcome string) []string {
		n++
		ev := schemas.Event{EventID: fmt.Sprintf("ev%d", n), Source: "okta", Tenant: "acme", Time: schemas.NewTime(base.Add(time.Duration(n) * time.Second)),
			Integration: schemas.Integration{ID: "svc"}, Action: schemas.Action{Name: typ, Category: "access"}, Outcome: outcome,
			Raw: []byte(`{"eventType":"` + typ + `"}`)}
		var dets []string
		for _, a := range r.Process(&ev, func(int, *schemas.Event) {}) {
			dets = append(dets, a.Detector)
		}
		return dets
	}
	for range 19 {
		if got := observe("app.oauth2.as.token.grant", "failure"); len(got) != 0 {
			t.Fatalf("alerts %v before the burst", got)
		}
	}
	const added = "sigma.test-okta-token-revoke"
	write("revoke.yml", strings.NewReplacer("test-okta-token-create", "test-okta-token-revoke", "system.api_token.create", "system.api_token.revoke").Replace(ruleYAML))
	if err := p.ReloadRules(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.RuleIDs(), added) {
		t.Fatalf("rules after reload %v", p.RuleIDs())
	}
	if got := observe("system.api_token.revoke", ""); len(got) != 0 {
		t.Fatalf("the runner ran the new rule before Refresh: %v", got)
	}
	if !r.Refresh() || r.Refresh() {
		t.Fatal("Refresh should switch once")
	}
	if got := observe("system.api_token.revoke", ""); !slices.Equal(got, []string{added}) {
		t.Fatalf("after Refresh: alerts %v, want %s", got, added)
	}
	if got := observe("app.oauth2.as.token.grant", "failure"); !slices.Equal(got, []string{"auth.failure_burst"}) {
		t.Fatalf("20th failure: alerts %v, want auth.failure_burst (its state kept across the reload)", got)
	}

	write("broken.yml", strings.Replace(ruleYAML, "eventtype:", "eventtype|base64:", 1))
	if err := p.ReloadRules(); err == nil || !strings.Contains(err.Error(), "broken.yml") {
		t.Fatalf("reload error %v, want it to name broken.yml", err)
	}
	if r.Refresh() || !slices.Contains(p.RuleIDs(), added) {
		t.Fatalf("a failed reload changed the rules: %v", p.RuleIDs())
	}
	if got := observe("system.api_token.create", ""); !slices.Equal(got, []string{"sigma.test-okta-token-create"}) {
		t.Fatalf("after a failed reload: alerts %v, want the old rules still running", got)
	}
}

// WatchRules reloads when a rule file changes and reports each outcome: a
// new rule is picked up, a broken one is an error and the rules stay.
func TestWatchRulesReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.yml"), []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := program.Build(program.Config{Rules: sigma.Config{Paths: []string{dir}, ReloadInterval: 10 * time.Millisecond}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reports := make(chan error, 10)
	go p.WatchRules(ctx, slog.New(slog.DiscardHandler), func(err error) { reports <- err })
	wait := func() error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("no reload reported")
		}
		return nil
	}
	revoke := strings.NewReplacer("test-okta-token-create", "test-okta-token-revoke", "system.api_token.create", "system.api_token.revoke").Replace(ruleYAML)
	if err := os.WriteFile(filepath.Join(dir, "revoke.yml"), []byte(revoke), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil || !slices.Contains(p.RuleIDs(), "sigma.test-okta-token-revoke") {
		t.Fatalf("reload: %v, rules %v", err, p.RuleIDs())
	}
	if err := os.WriteFile(filepath.Join(dir, "revoke.yml"), []byte(revoke+"bogus: key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err == nil || !strings.Contains(err.Error(), "revoke.yml") {
		t.Fatalf("broken reload reported %v", err)
	}
	if !slices.Contains(p.RuleIDs(), "sigma.test-okta-token-revoke") {
		t.Fatalf("rules after a failed reload %v", p.RuleIDs())
	}
	select {
	case err := <-reports:
		t.Fatalf("a reload without a change: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}
