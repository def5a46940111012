package detecttest

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The scenario runner runs every registered detector: in this test binary,
// the conforming counter and the quiet ticker from detecttest_test.go.
func init() {
	detect.Register(detect.Spec{ID: "test.counter", Summary: "every third event", New: func(func(any) error) (detect.Detector, error) { return &counter{}, nil }})
	detect.Register(detect.Spec{ID: "test.quiet", Summary: "two silent hours", New: func(func(any) error) (detect.Detector, error) { return quiet{}, nil }})
}

// writeScenario lays out dir/name/{events.jsonl, expected_alerts.jsonl}.
func writeScenario(t *testing.T, dir, name string, events []schemas.Event, expected string) {
	t.Helper()
	sd := filepath.Join(dir, name)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("# a comment line, for the reader\n")
	for _, ev := range events {
		j, _ := json.Marshal(ev)
		b.Write(j)
		b.WriteString("\n\n")
	}
	if err := os.WriteFile(filepath.Join(sd, ScenarioEvents), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if expected != "" {
		if err := os.WriteFile(filepath.Join(sd, ScenarioExpected), []byte(expected), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// threeEvents: the counter fires on e3 (key "3"); the 3h gap before e3 makes
// the quiet ticker report app-1's silence since 00:00.
func threeEvents() []schemas.Event {
	return []schemas.Event{Event("e1", 0), Event("e2", time.Minute), Event("e3", 3*time.Hour+5*time.Minute)}
}

func TestRunScenariosAcceptsMatchingExpectations(t *testing.T) {
	dir := t.TempDir()
	writeScenario(t, dir, "by_key", threeEvents(),
		`{"detector":"test.counter","integration_id":"app-1","key":"3"}
{"detector":"test.quiet","integration_id":"app-1","key":"2026-10-05T00:01:00Z"}
`)
	writeScenario(t, dir, "by_id", threeEvents(),
		`{"id":"`+schemas.AlertID("test.counter", "acme", "app-1", "3")+`"}
{"id":"`+schemas.AlertID("test.quiet", "acme", "app-1", "2026-10-05T00:01:00Z")+`"}
`)
	writeScenario(t, dir, "silent_without_file", threeEvents()[:2], "")
	RunScenarios(t, dir)
}

func TestRunScenariosUpdateWritesWhatTheDetectorsRaise(t *testing.T) {
	dir := t.TempDir()
	writeScenario(t, dir, "fresh", threeEvents(), `{"detector":"test.counter","integration_id":"app-1","key":"99"}`+"\n")
	if err := flag.Set("update", "true"); err != nil {
		t.Fatal(err)
	}
	RunScenarios(t, dir)
	if err := flag.Set("update", "false"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "fresh", ScenarioExpected))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"detector":"test.counter","integration_id":"app-1","key":"3","title":"third"}
{"detector":"test.quiet","integration_id":"app-1","key":"2026-10-05T00:01:00Z"}
`
	if string(b) != want {
		t.Fatalf("updated golden:\n%s\nwant:\n%s", b, want)
	}
	RunScenarios(t, dir) // and the rewritten golden passes
}

// TestRunScenariosReportsDifferences runs a wrong golden in a child process
// (a failing RunScenarios fails its test) and checks the report.
func TestRunScenariosReportsDifferences(t *testing.T) {
	dir := t.TempDir()
	writeScenario(t, dir, "wrong", threeEvents(),
		`{"detector":"test.counter","integration_id":"app-1","key":"4"}
{"detector":"test.quiet","integration_id":"app-1","key":"2026-10-05T00:01:00Z"}
`)
	cmd := exec.Command(os.Args[0], "-test.run=^TestScenarioChild$", "-test.v")
	cmd.Env = append(os.Environ(), "DETECTTEST_SCENARIOS="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("RunScenarios passed a wrong golden:\n%s", out)
	}
	report := string(out)
	miss, unexp := strings.Index(report, "missing:"), strings.Index(report, "unexpected:")
	four := strings.Index(report, `{"detector":"test.counter","tenant":"acme","integration_id":"app-1","key":"4"}`)
	three := strings.Index(report, `{"detector":"test.counter","tenant":"acme","integration_id":"app-1","key":"3"} third`)
	if miss < 0 || unexp < 0 || !(miss < four && four < unexp && unexp < three) {
		t.Errorf("report should list key 4 as missing and key 3 as unexpected:\n%s", report)
	}
	if strings.Contains(report, `"detector":"test.quiet"`) {
		t.Errorf("the matching alert was reported:\n%s", report)
	}
}

// TestScenarioChild is the child half of TestRunScenariosReportsDifferences.
func TestScenarioChild(t *testing.T) {
	dir := os.Getenv("DETECTTEST_SCENARIOS")
	if dir == "" {
		t.Skip("child process of TestRunScenariosReportsDifferences")
	}
	RunScenarios(t, dir)
}
