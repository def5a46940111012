package detecttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/ingest"
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
	// ScenarioConfig says how to read the folder's raw records (and what to
	// enrich with): see ScenarioSpec.
	ScenarioConfig = "scenario.yaml"
)

// ScenarioRecords are the names a folder's raw vendor records may have, in
// any shape ingest.ReadFile reads (JSON lines, an array, API pages, gzip).
var ScenarioRecords = []string{"records.jsonl", "records.json", "records.jsonl.gz", "records.json.gz"}

// ScenarioSpec is scenario.yaml. Unknown keys are an error.
type ScenarioSpec struct {
	// Description tells the story, for the reader.
	Description string `yaml:"description"`
	// Source is the registered ingest source whose raw shape the records
	// file holds (google_workspace, okta, github, slack, salesforce,
	// microsoft); required with a records file.
	Source string `yaml:"source"`
	// Tenant labels records that carry none (the --tenant of replay).
	Tenant string `yaml:"tenant"`
	// Catalog is an integration catalog (enrich/inventory's format),
	// relative to the scenario folder.
	Catalog string `yaml:"catalog"`
	// GeoIP enriches with the repository's test databases,
	// testdata/geoip/test-city.mmdb and test-asn.mmdb.
	GeoIP bool `yaml:"geoip"`
	// Rules loads Sigma rules as detect.rules does (shipped: true for
	// tokenwatch's own; paths relative to the scenario folder). The zero
	// value loads none.
	Rules sigma.Config `yaml:"rules"`
}

// ExpectedAlert is one line of expected_alerts.jsonl: either the alert's
// detector, integration and finding key (tenant defaults to the scenario's
// only tenant), or its full id. Severity, when set, must be the alert's
// (after the catalog's criticality adjusted it); a line without one matches
// on the id alone. Title is written by -update for the reader and ignored
// when comparing.
type ExpectedAlert struct {
	Detector      string           `json:"detector,omitempty"`
	Tenant        string           `json:"tenant,omitempty"`
	IntegrationID string           `json:"integration_id,omitempty"`
	Key           string           `json:"key,omitempty"`
	ID            string           `json:"id,omitempty"`
	Severity      schemas.Severity `json:"severity,omitempty"`
	Title         string           `json:"title,omitempty"`
}

// RunScenarios replays every scenario under dir (one sub-folder each) through
// the detect program with every registered detector at its default config,
// exactly as replay and the detect role run it (events in file order, a flush
// at the end),
// and compares the alerts with the scenario's expected_alerts.jsonl as a set
// (and each pinned severity). With -update it rewrites expected_alerts.jsonl
// from what the detectors produced instead; review the diff before
// committing it.
//
// A scenario folder holds events.jsonl, raw vendor records, or both:
//
//   - events.jsonl holds schemas.Event JSON, one per line, already enriched
//     (geo and inventory inline); blank lines and lines starting with # are
//     skipped.
//   - records.jsonl (or .json, .jsonl.gz: see ScenarioRecords) holds the
//     vendor's own audit records, with a scenario.yaml naming their source
//     (ScenarioSpec). They are normalized by that source's connector, sorted
//     by event time and, with events.jsonl's events merged in, run through
//     the program built with the scenario's catalog and GeoIP: the path
//     `tokenwatch replay --config` takes. A record the connector
//     dead-letters fails the scenario with the reason.
//
// scenario.yaml may also stand beside events.jsonl alone, to enrich those
// events with a catalog or the test GeoIP databases.
//
// "Every registered detector" means those linked into the test binary: call
// RunScenarios from an external test package (package <name>_test) that
// imports _ "github.com/tokenwatch/tokenwatch/detect/all", so a scenario also
// proves that the other detectors stay quiet (or fire) on it, and
// _ "github.com/tokenwatch/tokenwatch/ingest/all" when any scenario holds raw
// records, so their source's normalizer is registered. A detector named in
// expected_alerts.jsonl but not registered fails the test, and so does a
// source that is not.
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
	spec := readSpec(t, dir)
	events := loadEvents(t, dir, spec)
	tenants := map[string]bool{}
	for _, ev := range events {
		tenants[ev.Tenant] = true
	}
	got := replayAll(t, programConfig(t, dir, spec), events)
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
	var missing, unexpected, severity []string
	for _, w := range want {
		a, ok := gotIDs[w.ID]
		switch {
		case !ok:
			missing = append(missing, describeExpected(w))
		case w.Severity != "" && a.Severity != w.Severity:
			severity = append(severity, fmt.Sprintf("%s: want severity %s, got %s", describe(a), w.Severity, a.Severity))
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
	if len(severity) > 0 {
		t.Errorf("scenario %s: severities differ from %s (rerun with -update to accept the new output)\n  %s",
			filepath.Base(dir), ScenarioExpected, strings.Join(severity, "\n  "))
	}
	if len(got) != len(gotIDs) {
		t.Errorf("scenario %s: the engine raised an alert id twice: %v", filepath.Base(dir), got)
	}
}

func replayAll(t *testing.T, cfg program.Config, events []schemas.Event) []produced {
	t.Helper()
	keys := map[string]string{} // alert id → finding key
	prog, err := program.Build(cfg, program.Options{Wrap: func(d detect.Detector) detect.Detector { return recorder(d, keys) }})
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
		// A rule (sigma.…) is no registered detector: a wrong one shows as
		// a missing alert.
		if _, err := detect.Lookup(w.Detector); err != nil && !strings.HasPrefix(w.Detector, "sigma.") {
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
		w := ExpectedAlert{Detector: a.Detector, Tenant: a.Tenant, IntegrationID: a.IntegrationID, Key: a.key, Severity: a.Severity, Title: a.Title}
		if oneTenant {
			w.Tenant = ""
		}
		if a.key == "" { // a finding the recorder could not attribute
			w = ExpectedAlert{ID: a.ID, Detector: a.Detector, Severity: a.Severity, Title: a.Title}
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

// readSpec reads dir's scenario.yaml strictly; a folder without one gets
// the zero spec (events.jsonl only, no enrichment).
func readSpec(t *testing.T, dir string) ScenarioSpec {
	t.Helper()
	var spec ScenarioSpec
	path := filepath.Join(dir, ScenarioConfig)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return spec
	}
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt key would silently test nothing
	if err := dec.Decode(&spec); err != nil && err != io.EOF {
		t.Fatalf("%s: %v", path, err)
	}
	return spec
}

// recordsFile returns the folder's raw records file, "" when it has none.
func recordsFile(t *testing.T, dir string) string {
	t.Helper()
	var found []string
	for _, name := range ScenarioRecords {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			found = append(found, name)
		}
	}
	switch len(found) {
	case 0:
		return ""
	case 1:
		return filepath.Join(dir, found[0])
	}
	t.Fatalf("scenario %s: several records files %v; keep one", filepath.Base(dir), found)
	return ""
}

// loadEvents returns the scenario's events: events.jsonl in file order, or
// the records normalized by spec.Source (with events.jsonl merged in) in
// event-time order.
func loadEvents(t *testing.T, dir string, spec ScenarioSpec) []schemas.Event {
	t.Helper()
	records := recordsFile(t, dir)
	eventsPath := filepath.Join(dir, ScenarioEvents)
	_, statErr := os.Stat(eventsPath)
	hasEvents := statErr == nil
	if records == "" {
		if spec.Source != "" {
			t.Fatalf("%s: source %q but no records file (%s)", filepath.Join(dir, ScenarioConfig), spec.Source, strings.Join(ScenarioRecords, ", "))
		}
		if !hasEvents {
			t.Fatalf("scenario %s: no %s and no records file (%s)", filepath.Base(dir), ScenarioEvents, strings.Join(ScenarioRecords, ", "))
		}
		return readEvents(t, eventsPath)
	}
	if spec.Source == "" {
		t.Fatalf("scenario %s: %s needs a %s naming its source: (one of %v)", filepath.Base(dir), filepath.Base(records), ScenarioConfig, ingest.Names())
	}
	n, err := ingest.NewNormalizer(spec.Source, spec.Tenant)
	if err != nil {
		t.Fatalf("%s: %v (does the test import _ \"github.com/tokenwatch/tokenwatch/ingest/all\"?)", filepath.Join(dir, ScenarioConfig), err)
	}
	recs, err := ingest.ReadFile(records)
	if err != nil {
		t.Fatalf("scenario %s: %v", filepath.Base(dir), err)
	}
	b := ingest.NormalizeRecords(n, records, recs)
	if len(b.Dead) > 0 {
		reasons := make([]string, len(b.Dead))
		for i, d := range b.Dead {
			reasons[i] = fmt.Sprintf("%s: %s", d.Stage, d.Reason)
		}
		t.Fatalf("scenario %s: %d record(s) dead-lettered by %s:\n  %s", filepath.Base(dir), len(b.Dead), spec.Source, strings.Join(reasons, "\n  "))
	}
	if len(b.Events) == 0 {
		t.Fatalf("%s: no records", records)
	}
	events := b.Events
	if hasEvents {
		events = append(events, readEvents(t, eventsPath)...)
		ingest.SortEvents(events)
	}
	return events
}

// programConfig is the detect program's config for the scenario: default
// detectors, with the spec's catalog and the test GeoIP databases.
func programConfig(t *testing.T, dir string, spec ScenarioSpec) program.Config {
	t.Helper()
	cfg := program.Config{Rules: spec.Rules}
	cfg.Rules.Paths = nil
	for _, p := range spec.Rules.Paths {
		cfg.Rules.Paths = append(cfg.Rules.Paths, filepath.Join(dir, p))
	}
	if spec.Catalog != "" {
		cfg.Catalog = inventory.Config{Path: filepath.Join(dir, spec.Catalog)}
	}
	if spec.GeoIP {
		root := repoRoot(t)
		cfg.GeoIP = geoip.Config{
			City: filepath.Join(root, "testdata", "geoip", "test-city.mmdb"),
			ASN:  filepath.Join(root, "testdata", "geoip", "test-asn.mmdb"),
		}
	}
	return cfg
}

// repoRoot walks up from the working directory (the test's package folder)
// to the folder holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("geoip: true: no go.mod above the working directory to find testdata/geoip in")
		}
		dir = parent
	}
}
