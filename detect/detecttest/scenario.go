package detecttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The -update flag rewrites golden files. It is registered here, once, so
// every detector test binary importing detecttest accepts it:
//
//	go test ./detect/geo/impossibletravel/ -run Scenarios -update
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files (detector scenarios: expected_alerts.jsonl)")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// Scenario file names inside each scenario folder.
const (
	ScenarioEvents   = "events.jsonl"
	ScenarioExpected = "expected_alerts.jsonl"
)

// ExpectedAlert is one line of expected_alerts.jsonl: either the alert's
// detector, integration and finding key (tenant defaults to the scenario's
// only tenant), or its full id. Title is written by -update for the reader
// and ignored when comparing.
type ExpectedAlert struct {
	Detector      string `json:"detector,omitempty"`
	Tenant        string `json:"tenant,omitempty"`
	IntegrationID string `json:"integration_id,omitempty"`
	Key           string `json:"key,omitempty"`
	ID            string `json:"id,omitempty"`
	Title         string `json:"title,omitempty"`
}

// RunScenarios replays every scenario under dir (one sub-folder each) through
// the detect program with every registered detector at its default config,
// exactly as replay and the detect role run it (events in file order, a flush
// at the end),
// and compares the alerts with the scenario's expected_alerts.jsonl as a set.
// With -update it rewrites expected_alerts.jsonl from what the detectors
// produced instead; review the diff before committing it.
//
// events.jsonl holds schemas.Event JSON, one per line, already enriched (geo
// and inventory inline); blank lines and lines starting with # are skipped.
//
// "Every registered detector" means those linked into the test binary: call
// RunScenarios from an external test package (package <name>_test) that
// imports _ "github.com/tokenwatch/tokenwatch/detect/all", so a scenario also
// proves that the other detectors stay quiet (or fire) on it. A detector
// named in expected_alerts.jsonl but not registered fails the test.
func RunScenarios(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("scenarios: %v", err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		path := filepath.Join(dir, e.Name())
		t.Run(e.Name(), func(t *testing.T) { runScenario(t, path) })
	}
	if n == 0 {
		t.Fatalf("scenarios: no scenario folders in %s", dir)
	}
}

// produced is one alert the scenario raised, with the finding key the
// engine hashed into its id.
type produced struct {
	schemas.Alert
	key string
}

func runScenario(t *testing.T, dir string) {
	t.Helper()
	events := readEvents(t, filepath.Join(dir, ScenarioEvents))
	tenants := map[string]bool{}
	for _, ev := range events {
		tenants[ev.Tenant] = true
	}
	got := replayAll(t, events)
	expPath := filepath.Join(dir, ScenarioExpected)
	if updating() {
		writeExpected(t, expPath, got, len(tenants) == 1)
		return
	}
	want := readExpected(t, expPath, tenants)

	gotIDs := map[string]produced{}
	for _, a := range got {
		gotIDs[a.ID] = a
	}
	wantIDs := map[string]ExpectedAlert{}
	for _, w := range want {
		wantIDs[w.ID] = w
	}
	var missing, unexpected []string
	for _, w := range want {
		if _, ok := gotIDs[w.ID]; !ok {
			missing = append(missing, describeExpected(w))
		}
	}
	for _, a := range got {
		if _, ok := wantIDs[a.ID]; !ok {
			unexpected = append(unexpected, describe(a))
		}
	}
	if len(missing)+len(unexpected) > 0 {
		t.Errorf("scenario %s: alerts differ from %s (rerun with -update to accept the new output)\nmissing:\n  %s\nunexpected:\n  %s",
			filepath.Base(dir), ScenarioExpected, orNone(missing), orNone(unexpected))
	}
	if len(got) != len(gotIDs) {
		t.Errorf("scenario %s: the engine raised an alert id twice: %v", filepath.Base(dir), got)
	}
}

func replayAll(t *testing.T, events []schemas.Event) []produced {
	t.Helper()
	keys := map[string]string{} // alert id → finding key
	prog, err := program.Build(program.Config{}, program.Options{Wrap: func(d detect.Detector) detect.Detector { return recorder(d, keys) }})
	if err != nil {
		t.Fatalf("build the detect program: %v", err)
	}
	defer prog.Close()
	evs := append([]schemas.Event(nil), events...)
	alerts := prog.Run(evs)
	out := make([]produced, len(alerts))
	for i, a := range alerts {
		out[i] = produced{a, keys[a.ID]}
	}
	return out
}

// keyRecorder wraps a detector to learn the key behind each alert id: the
// engine keeps only the hash. It maps each state to the integration it was
// first observed with, which is how Tick findings are attributed.
type keyRecorder struct {
	detect.Detector
	keys   map[string]string
	owners map[detect.State][2]string // state → tenant, integration
}

type tickingRecorder struct{ *keyRecorder }

func recorder(d detect.Detector, keys map[string]string) detect.Detector {
	r := &keyRecorder{Detector: d, keys: keys, owners: map[detect.State][2]string{}}
	if _, ok := d.(detect.Ticker); ok {
		return tickingRecorder{r}
	}
	return r
}

func (r *keyRecorder) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	fs := r.Detector.Observe(ev, st)
	if hashable(st) {
		r.owners[st] = [2]string{ev.Tenant, ev.Integration.ID}
	}
	r.record(ev.Tenant, ev.Integration.ID, fs)
	return fs
}

func (r tickingRecorder) Tick(wm time.Time, st detect.State) []detect.Finding {
	fs := r.Detector.(detect.Ticker).Tick(wm, st)
	if hashable(st) {
		if o, ok := r.owners[st]; ok {
			r.record(o[0], o[1], fs)
		}
	}
	return fs
}

func (r *keyRecorder) record(tenant, integration string, fs []detect.Finding) {
	for _, f := range fs {
		r.keys[schemas.AlertID(r.ID(), tenant, integration, f.Key)] = f.Key
	}
}

func hashable(st detect.State) bool {
	return st != nil && reflect.TypeOf(st).Comparable()
}

func readEvents(t *testing.T, path string) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	forLines(t, path, func(n int, line []byte) {
		if line[0] == '#' {
			return
		}
		var ev schemas.Event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields() // a misspelt field would silently test nothing
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		out = append(out, ev)
	})
	if len(out) == 0 {
		t.Fatalf("%s: no events", path)
	}
	return out
}

func readExpected(t *testing.T, path string, tenants map[string]bool) []ExpectedAlert {
	t.Helper()
	var only string
	if len(tenants) == 1 {
		for k := range tenants {
			only = k
		}
	}
	var out []ExpectedAlert
	forLines(t, path, func(n int, line []byte) {
		var w ExpectedAlert
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		if w.ID != "" {
			out = append(out, w)
			return
		}
		if w.Detector == "" || w.IntegrationID == "" || w.Key == "" {
			t.Fatalf("%s:%d: want {detector, integration_id, key} or {id}", path, n)
		}
		if _, err := detect.Lookup(w.Detector); err != nil {
			t.Fatalf("%s:%d: %v (does the test import detect/all?)", path, n, err)
		}
		if w.Tenant == "" {
			if only == "" {
				t.Fatalf("%s:%d: the scenario has several tenants; name this alert's tenant", path, n)
			}
			w.Tenant = only
		}
		w.ID = schemas.AlertID(w.Detector, w.Tenant, w.IntegrationID, w.Key)
		out = append(out, w)
	})
	return out
}

// forLines calls fn with each non-blank line (1-based numbers). A missing
// file is an empty one: a scenario that expects silence may omit it.
func forLines(t *testing.T, path string, fn func(n int, line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) && filepath.Base(path) == ScenarioExpected {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			fn(n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeExpected(t *testing.T, path string, got []produced, oneTenant bool) {
	t.Helper()
	rows := make([]ExpectedAlert, len(got))
	for i, a := range got {
		w := ExpectedAlert{Detector: a.Detector, Tenant: a.Tenant, IntegrationID: a.IntegrationID, Key: a.key, Title: a.Title}
		if oneTenant {
			w.Tenant = ""
		}
		if a.key == "" { // a finding the recorder could not attribute
			w = ExpectedAlert{ID: a.ID, Detector: a.Detector, Title: a.Title}
		}
		rows[i] = w
	}
	sortKey := func(r ExpectedAlert) string {
		return strings.Join([]string{r.Detector, r.Tenant, r.IntegrationID, r.Key, r.ID}, "\x00")
	}
	sort.SliceStable(rows, func(i, j int) bool { return sortKey(rows[i]) < sortKey(rows[j]) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // one object per line
	enc.SetEscapeHTML(false)     // keys like "a>b" stay readable
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s with %d alerts", path, len(rows))
}

func describe(a produced) string {
	return fmt.Sprintf(`{"detector":%q,"tenant":%q,"integration_id":%q,"key":%q} %s`, a.Detector, a.Tenant, a.IntegrationID, a.key, a.Title)
}

func describeExpected(w ExpectedAlert) string {
	if w.Key == "" {
		return fmt.Sprintf("id %s %s", w.ID, w.Title)
	}
	return fmt.Sprintf(`{"detector":%q,"tenant":%q,"integration_id":%q,"key":%q}`, w.Detector, w.Tenant, w.IntegrationID, w.Key)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, "\n  ")
}
