package eval_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	_ "github.com/tokenwatch/tokenwatch/detect/all"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	_ "github.com/tokenwatch/tokenwatch/ingest/all"
	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/internal/app/eval"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const (
	city = "../../../testdata/geoip/test-city.mmdb"
	asn  = "../../../testdata/geoip/test-asn.mmdb"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

func alert(det, tenant, id string, raised time.Time) eval.Raised {
	return eval.Raised{Alert: schemas.Alert{ID: det + id + raised.String(), Detector: det, Tenant: tenant, IntegrationID: id}, RaisedAt: raised}
}

func TestScore(t *testing.T) {
	label := corpus.Label{Scenario: "theft", Source: "github", Tenant: "t", IntegrationID: "victim", Start: at(100), End: at(101),
		Expected: []string{"geo.new_asn", "volume.spike"}}
	tests := []struct {
		name          string
		alerts        []eval.Raised
		grace         time.Duration
		tp, fp        int
		detected      bool
		recall        float64
		ttd           time.Duration
		missed        []string
		falsePer1k    float64
		newASNRecall  float64
		newASNPrecise float64
	}{
		{name: "silent", detected: false, recall: 0, ttd: -1, missed: []string{"geo.new_asn", "volume.spike"}, newASNRecall: 0, newASNPrecise: math.NaN()},
		{name: "caught at the start", alerts: []eval.Raised{alert("geo.new_asn", "t", "victim", at(100))},
			tp: 1, detected: true, recall: 0.5, ttd: 0, missed: []string{"volume.spike"}, newASNRecall: 1, newASNPrecise: 1},
		{name: "within grace counts, first alert gives the TTD", alerts: []eval.Raised{
			alert("volume.spike", "t", "victim", at(101+23)), alert("geo.new_asn", "t", "victim", at(100.5))},
			tp: 2, detected: true, recall: 1, ttd: 30 * time.Minute, newASNRecall: 1, newASNPrecise: 1},
		{name: "after grace is false", alerts: []eval.Raised{alert("geo.new_asn", "t", "victim", at(101+25))},
			fp: 1, recall: 0, ttd: -1, missed: []string{"geo.new_asn", "volume.spike"}, falsePer1k: 10, newASNRecall: 0, newASNPrecise: 0},
		{name: "shorter grace", grace: time.Hour, alerts: []eval.Raised{alert("geo.new_asn", "t", "victim", at(102.5))},
			fp: 1, recall: 0, ttd: -1, missed: []string{"geo.new_asn", "volume.spike"}, falsePer1k: 10, newASNRecall: 0, newASNPrecise: 0},
		{name: "before the attack is false", alerts: []eval.Raised{alert("geo.new_asn", "t", "victim", at(99.9))},
			fp: 1, ttd: -1, missed: []string{"geo.new_asn", "volume.spike"}, falsePer1k: 10, newASNPrecise: 0},
		{name: "other integration or tenant is false", alerts: []eval.Raised{
			alert("geo.new_asn", "t", "bystander", at(100)), alert("geo.new_asn", "u", "victim", at(100)), alert("geo.new_country", "t", "victim", at(100))},
			tp: 1, fp: 2, detected: false, ttd: 0, missed: []string{"geo.new_asn", "volume.spike"}, falsePer1k: 20, newASNPrecise: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := eval.Score(tt.alerts, []corpus.Label{label}, []string{"geo.new_asn", "geo.new_country", "volume.spike"}, 100, tt.grace)
			s := r.Scenarios[0]
			tp := 0
			for _, a := range r.Alerts {
				if a.Scenario != "" {
					tp++
				}
			}
			if tp != tt.tp || r.FalseAlerts != tt.fp {
				t.Errorf("tp %d fp %d, want %d %d", tp, r.FalseAlerts, tt.tp, tt.fp)
			}
			if s.Detected != tt.detected || s.Recall != tt.recall || s.TTD != tt.ttd || !slices.Equal(s.Missed, tt.missed) {
				t.Errorf("scenario %+v", s)
			}
			if r.FalsePer1k != tt.falsePer1k {
				t.Errorf("false per 1k %v, want %v", r.FalsePer1k, tt.falsePer1k)
			}
			var asnRow eval.DetectorRow
			for _, d := range r.Detectors {
				if d.Detector == "geo.new_asn" {
					asnRow = d
				}
			}
			if asnRow.Expected != 1 || !same(asnRow.Recall, tt.newASNRecall) || !same(asnRow.Precision, tt.newASNPrecise) {
				t.Errorf("geo.new_asn row %+v", asnRow)
			}
			if len(r.Detectors) != 3 {
				t.Errorf("%d detector rows, want one per detector that ran", len(r.Detectors))
			}
		})
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func TestIntegrationDays(t *testing.T) {
	ev := func(tenant, id string, h float64) schemas.Event {
		return schemas.Event{Tenant: tenant, Integration: schemas.Integration{ID: id}, Time: schemas.NewTime(at(h))}
	}
	days, n := eval.IntegrationDays([]schemas.Event{ev("t", "a", 1), ev("t", "a", 50), ev("t", "b", 23), ev("u", "a", 10)})
	if days != 3+1+1 || n != 3 {
		t.Errorf("days %v integrations %d", days, n)
	}
}

// googleRecord is one Reports API token activity.
func googleRecord(t time.Time, client, email, ip string, n int) string {
	b, _ := json.Marshal(map[string]any{
		"kind":  "admin#reports#activity",
		"id":    map[string]any{"time": t.Format("2006-01-02T15:04:05.000Z"), "uniqueQualifier": fmt.Sprint(n), "applicationName": "token", "customerId": "C1"},
		"actor": map[string]any{"email": email}, "ipAddress": ip,
		"events": []map[string]any{{"name": "activity", "parameters": []map[string]any{
			{"name": "client_id", "value": client}, {"name": "api_name", "value": "drive"}, {"name": "method_name", "value": "drive.files.get"}}}},
	})
	return string(b)
}

// writeTinyCorpus: two Google apps used from AWS us-east every few hours for
// ten days; on day 9 one is replayed from Lagos: new country, new network,
// and impossible travel there and back (four alerts). The label says so.
func writeTinyCorpus(t *testing.T, label corpus.Label) string {
	dir := t.TempDir()
	var lines []string
	n := 0
	for h := 0; h < 240; h += 3 {
		for _, c := range []string{"victim", "bystander"} {
			n++
			lines = append(lines, googleRecord(at(float64(h)), c, "ops@example.com", "52.4.0.10", n))
		}
	}
	for k := 0; k < 3; k++ {
		n++
		lines = append(lines, googleRecord(at(218).Add(time.Duration(k)*time.Minute), "victim", "ops@example.com", "102.89.0.1", n))
	}
	os.WriteFile(filepath.Join(dir, "google_workspace.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	m := corpus.Manifest{Files: []corpus.File{{Source: "google_workspace", Path: "google_workspace.jsonl"}}, Labels: []corpus.Label{label}}
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, corpus.LabelsFile), b, 0o644)
	return dir
}

func TestRunTinyCorpus(t *testing.T) {
	lagos := corpus.Label{Scenario: "replay_from_lagos", Source: "google_workspace", Tenant: "C1", IntegrationID: "victim",
		Start: at(218), End: at(218).Add(2 * time.Minute), Expected: []string{"geo.new_country", "geo.new_asn", "geo.impossible_travel"}}
	tests := []struct {
		name       string
		label      corpus.Label
		geo        bool
		detected   bool
		falseAlert int
	}{
		{"labelled attack is caught, bystander quiet", lagos, true, true, 0},
		{"without GeoIP the geo detectors are blind", lagos, false, false, 0},
		{"an alert off the label's window is false", func() corpus.Label { l := lagos; l.Start, l.End = at(10), at(11); return l }(), true, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := eval.Options{}
			if tt.geo {
				opt.Program.GeoIP.City, opt.Program.GeoIP.ASN = city, asn
			}
			r, err := eval.Run(writeTinyCorpus(t, tt.label), opt)
			if err != nil {
				t.Fatal(err)
			}
			if r.Events != 163 || r.Dead != 0 || r.Integrations != 2 || r.IntegrationDays != 20 {
				t.Fatalf("events %d dead %d integrations %d days %v", r.Events, r.Dead, r.Integrations, r.IntegrationDays)
			}
			s := r.Scenarios[0]
			if s.Detected != tt.detected || r.FalseAlerts != tt.falseAlert {
				t.Errorf("detected %v (caught %v), false alerts %d; want %v, %d", s.Detected, s.Caught, r.FalseAlerts, tt.detected, tt.falseAlert)
			}
			if tt.detected && (s.Recall != 1 || s.TTD != 0) {
				t.Errorf("recall %v ttd %v, want all three at once", s.Recall, s.TTD)
			}
			var out strings.Builder
			if err := r.WriteTables(&out); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"detector", "geo.new_country", "replay_from_lagos", "per 1,000 integration-days"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("tables lack %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestRunNeedsLabels(t *testing.T) {
	if _, err := eval.Run(t.TempDir(), eval.Options{}); err == nil {
		t.Fatal("no error for a directory without labels.json")
	}
}

// MaxFalsePer1k is the benign false-alert budget the default corpus must stay
// under: alerts off every labelled attack window, per 1,000
// integration-days. On the default corpus it measures ~10.6, most of it
// geo.impossible_travel on multi-region service principals (see
// docs/evaluation.md); the budget catches a regression, not perfection.
const MaxFalsePer1k = 15

// MaxFalseIncidentsPer1k is the incident budget: what pages, per 1,000
// integration-days off every labelled attack (the goal is 0.5).
const MaxFalseIncidentsPer1k = 0.5

// MinExactlyOne is how many of the eight scenarios must each be exactly one
// incident: all of them, on both seeds (docs/evaluation.md).
const MinExactlyOne = 8

// The default corpus and a second seed, so nothing is tuned to one draw of
// the generator: every labelled scenario is caught by at least one of the
// detectors it expects, the benign false-alert rate stays under budget, no
// scenario becomes two incidents, and false incidents stay under theirs.
func TestGeneratedCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and scores the full corpus twice (~40s)")
	}
	second := corpus.DefaultOptions()
	second.Seed = 7
	for name, opt := range map[string]corpus.Options{"default seed": corpus.DefaultOptions(), "seed 7": second} {
		t.Run(name, func(t *testing.T) { scoreCorpus(t, opt) })
	}
}

func scoreCorpus(t *testing.T, opt corpus.Options) {
	dir := t.TempDir()
	if _, err := corpus.Write(dir, opt); err != nil {
		t.Fatal(err)
	}
	r, err := eval.Run(dir, eval.Options{Program: program.Config{GeoIP: geoip.Config{City: city, ASN: asn}}})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r.WriteTables(&out)
	t.Log("\n" + out.String())
	if r.Dead != 0 {
		t.Errorf("%d dead letters", r.Dead)
	}
	if len(r.Scenarios) != 8 {
		t.Errorf("%d scenarios", len(r.Scenarios))
	}
	for _, s := range r.Scenarios {
		if !s.Detected {
			t.Errorf("%s not detected by any of %v (caught by %v)", s.Label.Scenario, s.Label.Expected, s.Caught)
		}
	}
	if r.FalsePer1k >= MaxFalsePer1k {
		t.Errorf("benign false alerts %.2f per 1,000 integration-days, budget %d", r.FalsePer1k, MaxFalsePer1k)
	}
	if r.Integrations < 250 || r.IntegrationDays < 10000 {
		t.Errorf("population %d integrations, %.0f integration-days", r.Integrations, r.IntegrationDays)
	}
	for _, row := range r.Incident.Rows {
		if row.Incidents > 1 {
			t.Errorf("%s became %d incidents, want one", row.Label.Scenario, row.Incidents)
		}
	}
	if r.Incident.ExactlyOne < MinExactlyOne {
		t.Errorf("%d of %d scenarios caught as exactly one incident, want at least %d", r.Incident.ExactlyOne, len(r.Incident.Rows), MinExactlyOne)
	}
	if r.Incident.FalsePer1k > MaxFalseIncidentsPer1k {
		t.Errorf("benign false incidents %.2f per 1,000 integration-days, budget %.1f", r.Incident.FalsePer1k, MaxFalseIncidentsPer1k)
	}
}

// A shadow detector is scored on its own: the live figures are what they
// are with the detector turned off, and its own row gives its alert rate
// per 1,000 integration-days.
func TestShadowDetectorIsScoredApartFromTheLiveOnes(t *testing.T) {
	// The label is off the attack, so every geo alert is false.
	label := corpus.Label{Scenario: "elsewhere", Source: "google_workspace", Tenant: "C1", IntegrationID: "victim",
		Start: at(10), End: at(11), Expected: []string{"geo.new_country"}}
	dir := writeTinyCorpus(t, label)
	const det = "geo.impossible_travel"
	run := func(setting string) *eval.Result {
		t.Helper()
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(setting), &n); err != nil {
			t.Fatal(err)
		}
		opt := eval.Options{Program: program.Config{GeoIP: geoip.Config{City: city, ASN: asn},
			Detectors: map[string]yaml.Node{det: *n.Content[0]}}}
		r, err := eval.Run(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	live, off, shadow := run("enabled: true"), run("enabled: false"), run("shadow: true")
	var travel int
	for _, a := range live.Alerts {
		if a.Detector == det {
			travel++
		}
	}
	if travel == 0 {
		t.Fatalf("%s raised nothing live: the test needs it to fire", det)
	}
	if shadow.FalseAlerts != off.FalseAlerts || shadow.FalseAlerts != live.FalseAlerts-travel ||
		fmt.Sprintf("%+v", shadow.Detectors) != fmt.Sprintf("%+v", off.Detectors) || len(shadow.Alerts) != len(off.Alerts) { // text: NaN != NaN
		t.Fatalf("live figures with %s in shadow differ from it turned off: false %d vs %d (live %d)\n%+v\n%+v",
			det, shadow.FalseAlerts, off.FalseAlerts, live.FalseAlerts, shadow.Detectors, off.Detectors)
	}
	if len(live.Shadow) != 0 || len(off.Shadow) != 0 {
		t.Fatalf("shadow rows without a shadow detector: %+v %+v", live.Shadow, off.Shadow)
	}
	if len(shadow.Shadow) != 1 {
		t.Fatalf("shadow rows %+v, want one for %s", shadow.Shadow, det)
	}
	row := shadow.Shadow[0]
	if row.Detector != det || row.Alerts != travel || row.FP != travel || row.AlertsPer1k != float64(travel)*1000/20 {
		t.Fatalf("shadow row %+v, want %d alerts, all false, %v per 1k", row, travel, float64(travel)*1000/20)
	}
	var out strings.Builder
	if err := shadow.WriteTables(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "shadow detector") || !strings.Contains(out.String(), fmt.Sprintf("%s  %d", det, travel)) {
		t.Fatalf("tables lack the shadow row:\n%s", out.String())
	}
}
