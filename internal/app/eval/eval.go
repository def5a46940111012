// Package eval scores tokenwatch's detectors against a labelled corpus
// (internal/app/corpus): it normalizes every source file with the source's
// own connector, merges the events by event time, runs them through the
// detect program (the one run and replay build), and reports per detector and per scenario
// precision, recall, time to detect, and false alerts per 1,000
// integration-days.
//
// An alert is a true positive when it is raised on a labelled attack's
// integration (same tenant and integration id) at an event time within
// [label start, label end + grace]. Every other alert is a false alert.
package eval

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// DefaultGrace is how long after a label's end an alert still counts for it.
const DefaultGrace = 24 * time.Hour

// Options configure a run.
type Options struct {
	// Program is the detect program to score, as run builds it: detector
	// settings (nil runs every registered detector with its defaults), GeoIP
	// databases (none: the geo detectors cannot fire) and the catalog.
	Program program.Config
	// Grace extends each label's window; 0 means DefaultGrace.
	Grace time.Duration
}

// Raised is an alert with the event time at which the engine raised it.
type Raised struct {
	schemas.Alert
	RaisedAt time.Time `json:"raised_at"`
	// Scenario is the label the alert matched, empty for a false alert.
	Scenario string `json:"scenario,omitempty"`
}

// DetectorRow is one line of the per-detector table.
type DetectorRow struct {
	Detector  string
	Alerts    int
	TP, FP    int
	Precision float64 // NaN when the detector raised nothing
	// Expected is how many scenarios list the detector; Caught how many of
	// those it raised a true positive in. Recall = Caught/Expected (NaN
	// when no scenario expects it). Extra counts scenarios it caught
	// without being expected to.
	Expected, Caught, Extra int
	Recall                  float64
	MedianTTD               time.Duration // over the scenarios it caught; -1 if none
	FPPer1k                 float64       // false alerts per 1,000 integration-days
	AlertsPer1k             float64       // every alert per 1,000 integration-days
}

// ScenarioRow is one line of the per-scenario table.
type ScenarioRow struct {
	Label corpus.Label
	// Alerts counts true positives; OnIntegration every alert raised on the
	// scenario's integration over the whole corpus.
	Alerts, OnIntegration int
	Precision             float64 // Alerts / OnIntegration
	Caught                []string
	Missed                []string // expected but silent
	Recall                float64  // expected detectors that fired / expected
	Detected              bool     // at least one expected detector fired
	TTD                   time.Duration
	TTDBy                 string // detector of the first true positive
}

// Result is a scored run.
type Result struct {
	Events, Dead, Integrations int
	IntegrationDays            float64
	Start, End                 time.Time
	Alerts                     []Raised
	Detectors                  []DetectorRow
	Scenarios                  []ScenarioRow
	FalseAlerts                int
	FalsePer1k                 float64
	Grace                      time.Duration
	// Incident is how the correlated incidents score.
	Incident IncidentScore
	// Shadow scores the detectors in shadow mode on their own: their
	// alerts are in none of the figures above (Alerts, Detectors,
	// Scenarios, FalseAlerts), so shadowing a rule leaves the live figures
	// as they would be without it. Sorted by detector.
	Shadow []DetectorRow
}

// Run evaluates the corpus in dir (labels.json and the raw files it names).
func Run(dir string, opt Options) (*Result, error) {
	m, err := corpus.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	events, dead, err := Load(dir, m.Files)
	if err != nil {
		return nil, err
	}
	prog, err := program.Build(opt.Program, program.Options{})
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	res := Evaluate(events, prog, m.Labels, opt.Grace)
	res.Dead = dead
	return res, nil
}

// Load normalizes every file with its source's connector and returns the
// events merged in event-time order, and how many records were
// dead-lettered.
func Load(dir string, files []corpus.File) ([]schemas.Event, int, error) {
	var all []schemas.Event
	dead := 0
	for _, f := range files {
		n, err := ingest.NewNormalizer(f.Source, f.Tenant)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", f.Path, err)
		}
		p := filepath.Join(dir, f.Path)
		recs, err := ingest.ReadFile(p)
		if err != nil {
			return nil, 0, err
		}
		b := ingest.NormalizeRecords(n, p, recs)
		all = append(all, b.Events...)
		dead += len(b.Dead)
	}
	ingest.SortEvents(all)
	return all, dead, nil
}

// Evaluate runs events (in time order; enriched in place) through the
// detect program and scores the alerts against labels. Every enabled
// detector is scored, whatever it is keyed by.
func Evaluate(events []schemas.Event, prog *program.Program, labels []corpus.Label, grace time.Duration) *Result {
	var raised []Raised
	var versions []Opened
	r := prog.NewReplay()
	r.OnAlert = func(a schemas.Alert, wm schemas.Time) { raised = append(raised, Raised{Alert: a, RaisedAt: wm.Time}) }
	r.OnIncident = func(inc schemas.Incident, wm schemas.Time) {
		versions = append(versions, Opened{Incident: inc, OpenedAt: wm.Time})
	}
	for i := range events {
		r.Observe(&events[i])
	}
	r.Finish()
	var liveIDs, shadowIDs []string
	for _, id := range prog.DetectorIDs() {
		if prog.Shadow(id) {
			shadowIDs = append(shadowIDs, id)
		} else {
			liveIDs = append(liveIDs, id)
		}
	}
	var live, shadow []Raised
	for _, a := range raised {
		if a.Shadow {
			shadow = append(shadow, a)
		} else {
			live = append(live, a)
		}
	}
	days, n := IntegrationDays(events)
	res := Score(live, labels, liveIDs, days, grace)
	if len(shadowIDs) > 0 {
		// Scored alone against the same labels; only the shadow detectors'
		// rows are kept (Score adds one for every label's expected detector).
		for _, row := range Score(shadow, labels, shadowIDs, days, grace).Detectors {
			if slices.Contains(shadowIDs, row.Detector) {
				res.Shadow = append(res.Shadow, row)
			}
		}
	}
	res.Incident = ScoreIncidents(versions, labels, days, res.Grace)
	res.Events, res.Integrations = len(events), n
	if len(events) > 0 {
		res.Start, res.End = events[0].Time.Time, events[len(events)-1].Time.Time
	}
	return res
}

// IntegrationDays sums, over every (tenant, integration), the calendar days
// (UTC) from its first to its last event, inclusive; and counts integrations.
func IntegrationDays(events []schemas.Event) (float64, int) {
	type span struct{ first, last int64 }
	spans := map[engine.Key]*span{}
	for i := range events {
		k := engine.Key{Tenant: events[i].Tenant, ID: events[i].Integration.ID}
		d := events[i].Time.Unix() / 86400
		if s := spans[k]; s == nil {
			spans[k] = &span{d, d}
		} else {
			s.first, s.last = min(s.first, d), max(s.last, d)
		}
	}
	total := 0.0
	for _, s := range spans {
		total += float64(s.last - s.first + 1)
	}
	return total, len(spans)
}

// Score matches alerts to labels and builds the tables. detectors lists the
// detectors that ran (rows for the silent ones too); integrationDays is the
// denominator of the false-alert rates.
func Score(alerts []Raised, labels []corpus.Label, detectors []string, integrationDays float64, grace time.Duration) *Result {
	if grace <= 0 {
		grace = DefaultGrace
	}
	res := &Result{IntegrationDays: integrationDays, Grace: grace}
	type key struct{ tenant, id string }
	byInt := map[key][]int{}
	for i, l := range labels {
		byInt[key{l.Tenant, l.IntegrationID}] = append(byInt[key{l.Tenant, l.IntegrationID}], i)
	}
	rows := make([]ScenarioRow, len(labels))
	first := make([]time.Time, len(labels))
	caught := make([]map[string]time.Time, len(labels)) // detector → first TP time
	for i, l := range labels {
		rows[i].Label = l
		caught[i] = map[string]time.Time{}
	}
	det := map[string]*DetectorRow{}
	row := func(id string) *DetectorRow {
		if det[id] == nil {
			det[id] = &DetectorRow{Detector: id}
		}
		return det[id]
	}
	for _, id := range detectors {
		row(id)
	}
	sorted := append([]Raised(nil), alerts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].RaisedAt.Before(sorted[j].RaisedAt) })
	for _, a := range sorted {
		a.Scenario = ""
		idx := byInt[key{a.Tenant, a.IntegrationID}]
		for _, i := range idx {
			rows[i].OnIntegration++
		}
		for _, i := range idx {
			l := labels[i]
			if a.RaisedAt.Before(l.Start) || a.RaisedAt.After(l.End.Add(grace)) {
				continue
			}
			a.Scenario = l.Scenario
			rows[i].Alerts++
			if _, ok := caught[i][a.Detector]; !ok {
				caught[i][a.Detector] = a.RaisedAt
			}
			if first[i].IsZero() {
				first[i] = a.RaisedAt
				rows[i].TTDBy = a.Detector
			}
			break
		}
		r := row(a.Detector)
		r.Alerts++
		if a.Scenario != "" {
			r.TP++
		} else {
			r.FP++
			res.FalseAlerts++
		}
		res.Alerts = append(res.Alerts, a)
	}
	ttds := map[string][]time.Duration{}
	for i := range rows {
		l := labels[i]
		expected := map[string]bool{}
		for _, d := range l.Expected {
			expected[d] = true
			row(d).Expected++
		}
		for d, t := range caught[i] {
			rows[i].Caught = append(rows[i].Caught, d)
			ttds[d] = append(ttds[d], t.Sub(l.Start))
			if expected[d] {
				row(d).Caught++
			} else {
				row(d).Extra++
			}
		}
		sort.Strings(rows[i].Caught)
		hit := 0
		for _, d := range l.Expected {
			if _, ok := caught[i][d]; ok {
				hit++
			} else {
				rows[i].Missed = append(rows[i].Missed, d)
			}
		}
		rows[i].Detected = hit > 0
		rows[i].Recall = ratio(hit, len(l.Expected))
		rows[i].Precision = ratio(rows[i].Alerts, rows[i].OnIntegration)
		rows[i].TTD = -1
		if !first[i].IsZero() {
			rows[i].TTD = first[i].Sub(l.Start)
		}
	}
	res.Scenarios = rows
	for _, r := range det {
		r.Precision = ratio(r.TP, r.Alerts)
		r.Recall = ratio(r.Caught, r.Expected)
		r.MedianTTD = median(ttds[r.Detector])
		r.FPPer1k = per1k(r.FP, integrationDays)
		r.AlertsPer1k = per1k(r.Alerts, integrationDays)
		res.Detectors = append(res.Detectors, *r)
	}
	sort.Slice(res.Detectors, func(i, j int) bool { return res.Detectors[i].Detector < res.Detectors[j].Detector })
	res.FalsePer1k = per1k(res.FalseAlerts, integrationDays)
	return res
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func per1k(n int, days float64) float64 {
	if days <= 0 {
		return math.NaN()
	}
	return float64(n) * 1000 / days
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
