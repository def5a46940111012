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
	_ "github.com/tokenwatch/tokenwatch/ingest/all" // raw-record scenarios name their source
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The scenario runner runs every registered detector: in this test binary,
// the conforming counter and the quiet ticker from detecttest_test.go, and
// where, which reports the first place it sees an integration in (so a
// scenario shows GeoIP enrichment ran).
func init() {
	detect.Register(detect.Spec{ID: "test.counter", Summary: "every third event", New: func(func(any) error) (detect.Detector, error) { return &counter{}, nil }})
	detect.Register(detect.Spec{ID: "test.quiet", Summary: "two silent hours", New: func(func(any) error) (detect.Detector, error) { return quiet{}, nil }})
	detect.Register(detect.Spec{ID: "test.where", Summary: "first located event", New: func(func(any) error) (detect.Detector, error) { return where{}, nil }})
}

type where struct{}

type whereState struct {
	Reported bool `json:"reported"`
}

func (s *whereState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }
func (s *whereState) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

func (where) ID() string             { return "test.where" }
func (where) NewState() detect.State { return &whereState{} }
func (where) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*whereState)
	if s.Reported || ev.Geo == nil {
		return nil
	}
	s.Reported = true
	return []detect.Finding{{Key: ev.Geo.Country + "/" + ev.Geo.City, Title: "located", Severity: schemas.SeverityInfo, EventIDs: []string{ev.EventID}, FirstSeen: ev.Time.Time, LastSeen: ev.Time.Time}}
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
	want := `{"detector":"test.counter","integration_id":"app-1","key":"3","severity":"low","title":"third"}
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
	report := runFailingScenarios(t, dir)
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

// runFailingScenarios runs RunScenarios over dir in a child process (a
// failing RunScenarios fails its test), expects it to fail and returns its
// report.
func runFailingScenarios(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestScenarioChild$", "-test.v")
	cmd.Env = append(os.Environ(), "DETECTTEST_SCENARIOS="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("RunScenarios passed:\n%s", out)
	}
	return string(out)
}

// copyScenario copies the committed scenario src into a fresh dir/name and
// returns its path.
func copyScenario(t *testing.T, src, dir, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

const oktaScenario = "testdata/scenarios/okta_service_app"

// TestRunScenariosReadsRawRecords runs testdata/scenarios: Okta System Log
// records normalized by the okta connector, mapped to the catalog (the id
// becomes ledger-sync, its criticality critical raises the counter's low to
// medium, where's info to low) and located by the test GeoIP databases
// (81.2.69.0/24 is London).
func TestRunScenariosReadsRawRecords(t *testing.T) {
	RunScenarios(t, "testdata/scenarios")
	b, err := os.ReadFile(filepath.Join(oktaScenario, ScenarioExpected))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"detector":"test.counter","integration_id":"ledger-sync","key":"3","severity":"medium"`,
		`{"detector":"test.where","integration_id":"ledger-sync","key":"GB/London","severity":"low"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s:\n%s", ScenarioExpected, want, b)
		}
	}
}

func TestRunScenariosFailsOnAnotherSeverity(t *testing.T) {
	dir := t.TempDir()
	sd := copyScenario(t, oktaScenario, dir, "wrong_severity")
	exp := filepath.Join(sd, ScenarioExpected)
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(b), `"severity":"medium"`, `"severity":"high"`, 1)
	if wrong == string(b) {
		t.Fatalf("%s pins no medium alert:\n%s", exp, b)
	}
	if err := os.WriteFile(exp, []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	report := runFailingScenarios(t, dir)
	if !strings.Contains(report, "severities differ") || !strings.Contains(report, "want severity high, got medium") {
		t.Errorf("report should name the severity:\n%s", report)
	}
	if strings.Contains(report, "missing:") {
		t.Errorf("a severity change is not a missing alert:\n%s", report)
	}
}

func TestRunScenariosMatchesLinesWithoutSeverityOnID(t *testing.T) {
	dir := t.TempDir()
	sd := copyScenario(t, oktaScenario, dir, "unpinned")
	exp := filepath.Join(sd, ScenarioExpected)
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var w ExpectedAlert
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatal(err)
		}
		w.Severity = ""
		j, _ := json.Marshal(w)
		lines = append(lines, string(j))
	}
	if err := os.WriteFile(exp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	RunScenarios(t, dir)
}

func TestRunScenariosRejectsBadScenarioFolders(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(t *testing.T, sd string)
		want string
	}{
		"unknown scenario.yaml key": {func(t *testing.T, sd string) {
			appendFile(t, filepath.Join(sd, ScenarioConfig), "geo_ip: true\n")
		}, "field geo_ip not found"},
		"unregistered source": {func(t *testing.T, sd string) {
			writeFile(t, filepath.Join(sd, ScenarioConfig), "source: okta_classic\n")
		}, `unknown source "okta_classic"`},
		"records without scenario.yaml": {func(t *testing.T, sd string) {
			if err := os.Remove(filepath.Join(sd, ScenarioConfig)); err != nil {
				t.Fatal(err)
			}
		}, "records.jsonl needs a scenario.yaml"},
		"dead-lettered record": {func(t *testing.T, sd string) {
			appendFile(t, filepath.Join(sd, "records.jsonl"), `{"uuid":"x","published":"2026-10-05T00:40:00Z"}`+"\n")
		}, "record has no eventType"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tc.edit(t, copyScenario(t, oktaScenario, dir, "bad"))
			if report := runFailingScenarios(t, dir); !strings.Contains(report, tc.want) {
				t.Errorf("report should say %q:\n%s", tc.want, report)
			}
		})
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b)+s)
}
