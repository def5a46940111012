package wiring_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const watchedRule = `title: Okta API token created
id: test-okta-token-create
logsource: {product: okta}
detection:
    selection:
        eventtype: system.api_token.create
    condition: selection
level: high
`

// configFile is a config running the rules under paths, those of shadow in
// shadow mode and auth.failure_burst in shadow when burstShadow; extra is
// appended.
func configFile(paths []string, shadow []string, burstShadow bool, extra string) string {
	return fmt.Sprintf(`# the detect role's rules
detect:
  detectors:
    auth.failure_burst: {shadow: %v}
  rules:
    shipped: false
    paths: [%s]
    shadow: [%s]
    reload_interval: 20ms
%s`, burstShadow, strings.Join(paths, ", "), strings.Join(shadow, ", "), extra)
}

// syncBuffer is a log sink the watcher goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// watched builds the detect program from the config file at path, as run
// does, and starts its rule watcher with the config watch; reports receives
// each reload's outcome.
func watched(t *testing.T, path string) (*program.Program, *syncBuffer, chan error) {
	t.Helper()
	cfg, loaded, err := config.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := program.Build(cfg.Program(), program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prog.Close)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	if err := wiring.WatchConfig(prog, path, loaded, log); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan error, 16)
	done := make(chan struct{})
	go func() { defer close(done); prog.WatchRules(ctx, log, func(err error) { reports <- err }) }()
	t.Cleanup(func() { cancel(); <-done })
	return prog, logs, reports
}

func nextReport(t *testing.T, reports chan error) error {
	t.Helper()
	select {
	case err := <-reports:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no reload reported")
	}
	return nil
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Editing the config file promotes a shadow rule and a shadow Go detector
// without a restart: the next alert of the rule is live, from the same
// runner (its state kept), and a rule folder added under paths runs.
func TestConfigWatchPromotesAShadowRule(t *testing.T) {
	dir := t.TempDir()
	rules, more := filepath.Join(dir, "rules"), filepath.Join(dir, "more")
	for _, d := range []string{rules, more} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(rules, "token.yml"), watchedRule)
	write(t, filepath.Join(more, "revoke.yml"), strings.NewReplacer("test-okta-token-create", "test-okta-token-revoke", "system.api_token.create", "system.api_token.revoke").Replace(watchedRule))
	path := filepath.Join(dir, "tokenwatch.yaml")
	const rule, burst = "sigma.test-okta-token-create", "auth.failure_burst"
	write(t, path, configFile([]string{rules}, []string{rule}, true, ""))
	prog, logs, reports := watched(t, path)
	r := prog.NewRunner(0)
	n := 0
	observe := func(typ string) map[string]bool {
		n++
		ev := schemas.Event{EventID: fmt.Sprintf("ev%d", n), Source: "okta", Tenant: "acme", Time: schemas.NewTime(time.Date(2026, 10, 20, 2, 0, n, 0, time.UTC)),
			Integration: schemas.Integration{ID: "svc"}, Action: schemas.Action{Name: typ, Category: "admin"}, Raw: []byte(`{"eventType":"` + typ + `"}`)}
		out := map[string]bool{} // detector → shadow
		for _, a := range r.Process(&ev, func(int, *schemas.Event) {}) {
			out[a.Detector] = a.Shadow
		}
		return out
	}
	if got := observe("system.api_token.create"); len(got) != 1 || !got[rule] {
		t.Fatalf("before: alerts %v, want %s in shadow", got, rule)
	}
	if !prog.Shadow(burst) {
		t.Fatal("auth.failure_burst is not in shadow")
	}

	write(t, path, configFile([]string{rules, more}, nil, false, ""))
	if err := nextReport(t, reports); err != nil {
		t.Fatalf("reload: %v\n%s", err, logs)
	}
	if prog.Shadow(rule) || prog.Shadow(burst) || !slices.Contains(prog.RuleIDs(), "sigma.test-okta-token-revoke") {
		t.Fatalf("after the edit: shadow %v %v, rules %v", prog.Shadow(rule), prog.Shadow(burst), prog.RuleIDs())
	}
	if !r.Refresh() {
		t.Fatal("the runner did not switch to the new set")
	}
	if got := observe("system.api_token.create"); len(got) != 1 || got[rule] {
		t.Fatalf("after: alerts %v, want %s live", got, rule)
	}
	if got := observe("system.api_token.revoke"); len(got) != 1 || got["sigma.test-okta-token-revoke"] {
		t.Fatalf("the rule under the added path: alerts %v", got)
	}
	if !strings.Contains(logs.String(), "config reloaded") {
		t.Errorf("logs:\n%s", logs)
	}
}

// An edit of anything but detect.rules and the shadow flags is not applied
// (nor is the shadow change made with it): one WARN names the sections,
// never a value; a broken edit is a failed reload, and the running config
// stays through both.
func TestConfigWatchWarnsOfARestart(t *testing.T) {
	dir, rules := t.TempDir(), t.TempDir()
	write(t, filepath.Join(rules, "token.yml"), watchedRule)
	path := filepath.Join(dir, "tokenwatch.yaml")
	const rule = "sigma.test-okta-token-create"
	write(t, path, configFile([]string{rules}, []string{rule}, false, ""))
	prog, logs, reports := watched(t, path)

	write(t, path, configFile([]string{rules}, nil, false, "log: {level: debug}\nkafka: {group_prefix: hunter2-group}\n"))
	if err := nextReport(t, reports); err != nil {
		t.Fatalf("a valid edit reported %v", err)
	}
	warn := logs.String()
	if !prog.Shadow(rule) || strings.Count(warn, "level=WARN") != 1 || !strings.Contains(warn, `sections="log, kafka"`) || !strings.Contains(warn, "restart") ||
		strings.Contains(warn, "hunter2") || strings.Contains(warn, "debug") {
		t.Fatalf("shadow %v, logs:\n%s", prog.Shadow(rule), warn)
	}

	write(t, path, configFile([]string{rules}, nil, false, "log: {level: hunter2}\n"))
	if err := nextReport(t, reports); err == nil {
		t.Fatal("a config that does not load reported no error")
	}
	write(t, path, configFile([]string{rules}, nil, false, "detect_typo: {}\n"))
	if err := nextReport(t, reports); err == nil || !strings.Contains(err.Error(), "detect_typo") {
		t.Fatalf("an unknown key: %v", err)
	}
	if !prog.Shadow(rule) || strings.Contains(logs.String(), "hunter2") || strings.Count(logs.String(), "config reload failed") != 2 {
		t.Fatalf("shadow %v, logs:\n%s", prog.Shadow(rule), logs)
	}
	// Back to the running config but for the promotion: applied.
	write(t, path, configFile([]string{rules}, nil, false, ""))
	if err := nextReport(t, reports); err != nil || prog.Shadow(rule) {
		t.Fatalf("reload %v, shadow %v", err, prog.Shadow(rule))
	}
}
