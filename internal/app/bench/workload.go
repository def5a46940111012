// Package bench holds tokenwatch's end-to-end and peer benchmarks (see
// BENCHMARKS.md at the repository root). They are Go benchmarks, so plain
// `go test ./...` compiles them and runs nothing heavy; run them with
// `-bench` (and `-benchtime 1x`: each one is a single timed run). This file
// builds their input: raw Google Workspace token activity, many tenants of
// the bundled scenario, in event-time order.
package bench

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/googleworkspace"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/schemas"

	_ "github.com/tokenwatch/tokenwatch/detect/all"
)

// Root is the repository root (for testdata).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// GeoIP paths of the committed test databases.
func GeoIP() (city, asn string) {
	return filepath.Join(Root(), "testdata/geoip/test-city.mmdb"), filepath.Join(Root(), "testdata/geoip/test-asn.mmdb")
}

// Workload is raw vendor records in event-time order (ties by event id, the
// order ingest.NormalizeRecords gives), so normalizing any prefix in batches
// publishes every integration's events in the order offline detection saw.
type Workload struct {
	Records []ingest.RawRecord
	// Trigger maps each alert id the workload raises to the index of the
	// record whose event raised it (computed offline, single engine).
	Trigger map[string]int
	// IncidentTrigger maps each incident id to the index of the record
	// whose event opened it (its first version), computed the same way.
	IncidentTrigger map[string]int
}

// Source is the normalizer the workload's records are for.
const Source = googleworkspace.SourceName

// NewWorkload generates replicas copies of the bundled scenario (20
// integrations, 21 days, one OAuth-token theft each), each its own tenant
// with its own seed and its timeline shifted by 7 hours per replica so the
// attacks are spread over the stream, merged into one event-time order.
func NewWorkload(replicas int) (*Workload, error) {
	type keyed struct {
		rec ingest.RawRecord
		t   time.Time
		id  string
	}
	var all []keyed
	n := googleworkspace.NewNormalizer("")
	for r := 0; r < replicas; r++ {
		opt := scenario.DefaultOptions()
		opt.Seed += uint64(r) * 7919
		opt.Customer = fmt.Sprintf("Cbench%04d", r)
		opt.Start = opt.Start.Add(time.Duration(r) * 7 * time.Hour)
		s, err := scenario.Generate(opt)
		if err != nil {
			return nil, err
		}
		recs, err := ingest.ReadRecords(bytes.NewReader(s.Pages))
		if err != nil {
			return nil, err
		}
		for _, rc := range recs {
			evs, err := n.Normalize(rc.Data)
			if err != nil || len(evs) == 0 {
				return nil, fmt.Errorf("replica %d %s: %v", r, rc.Pos, err)
			}
			all = append(all, keyed{rc, evs[0].Time.Time, evs[0].EventID})
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].t.Equal(all[j].t) {
			return all[i].t.Before(all[j].t)
		}
		return all[i].id < all[j].id
	})
	w := &Workload{Records: make([]ingest.RawRecord, len(all)), Trigger: map[string]int{}, IncidentTrigger: map[string]int{}}
	for i := range all {
		w.Records[i] = all[i].rec
	}
	// Offline: which record raises which alert.
	city, asn := GeoIP()
	prog, err := program.Build(program.Config{GeoIP: geoip.Config{City: city, ASN: asn}}, program.Options{})
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	r := prog.NewReplay()
	at := 0
	r.OnAlert = func(a schemas.Alert, _ schemas.Time) {
		if _, dup := w.Trigger[a.ID]; !dup {
			w.Trigger[a.ID] = at
		}
	}
	r.OnIncident = func(inc schemas.Incident, _ schemas.Time) {
		if _, dup := w.IncidentTrigger[inc.ID]; !dup {
			w.IncidentTrigger[inc.ID] = at
		}
	}
	for i, rc := range w.Records {
		at = i
		evs, _ := n.Normalize(rc.Data)
		for k := range evs {
			r.Observe(&evs[k])
		}
	}
	return w, nil
}

// SmallEvents normalizes the first n records of w (or all of them) into
// events without their raw record: the small JSON events the peer comparison
// feeds every contender.
func (w *Workload) SmallEvents(n int) []schemas.Event {
	n = min(n, len(w.Records))
	b := ingest.NormalizeRecords(googleworkspace.NewNormalizer(""), "bench", w.Records[:n])
	for i := range b.Events {
		b.Events[i].Raw = nil
	}
	return b.Events
}
