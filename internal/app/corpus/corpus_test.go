package corpus_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	_ "github.com/tokenwatch/tokenwatch/ingest/all"
	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// small is a quick corpus: every source, every scenario, 40 days.
func small() corpus.Options {
	o := corpus.DefaultOptions()
	o.Integrations, o.Days = 60, 40
	return o
}

func TestSameOptionsSameBytes(t *testing.T) {
	a, err := corpus.Generate(small())
	if err != nil {
		t.Fatal(err)
	}
	b, err := corpus.Generate(small())
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range a.Data {
		if !bytes.Equal(data, b.Data[p]) {
			t.Errorf("%s differs between two runs with the same options", p)
		}
	}
	o := small()
	o.Seed++
	c, _ := corpus.Generate(o)
	if bytes.Equal(a.Data[corpus.FileName("github")], c.Data[corpus.FileName("github")]) {
		t.Error("a different seed gave the same github file")
	}
}

// Every record of every source is in the exact shape its connector accepts:
// no dead letters, every record an event, and every label names an
// integration that exists, in the tenant the connector assigns, with events
// inside the labelled window.
func TestEverySourceNormalizesWithoutDeadLetters(t *testing.T) {
	dir := t.TempDir()
	m, err := corpus.Write(dir, small())
	if err != nil {
		t.Fatal(err)
	}
	back, err := corpus.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Files) != len(corpus.Sources) || len(back.Labels) != len(m.Labels) {
		t.Fatalf("labels.json round trip: %d files, %d labels", len(back.Files), len(back.Labels))
	}
	type key struct{ tenant, id string }
	events := map[key][]time.Time{}
	tenants := map[string]bool{}
	for _, f := range m.Files {
		if f.Path != corpus.FileName(f.Source) {
			t.Errorf("%s: file %s", f.Source, f.Path)
		}
		n, err := ingest.NewNormalizer(f.Source, f.Tenant)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := ingest.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		b := ingest.NormalizeRecords(n, f.Path, recs)
		if len(b.Dead) > 0 {
			t.Errorf("%s: %d dead letters, first: %s", f.Source, len(b.Dead), b.Dead[0].Reason)
		}
		if len(recs) != f.Records || len(b.Events) != f.Records {
			t.Errorf("%s: manifest says %d records; read %d, normalized %d events", f.Source, f.Records, len(recs), len(b.Events))
		}
		ints := map[string]bool{}
		for _, ev := range b.Events {
			if ev.Source != f.Source || ev.Tenant == "" || ev.Integration.ID == "" || ev.Network.IP == "" && ev.Source != "microsoft" {
				t.Fatalf("%s: incomplete event %+v", f.Source, ev)
			}
			if !slices.Contains(schemas.Categories, ev.Action.Category) {
				t.Fatalf("%s: category %q", f.Source, ev.Action.Category)
			}
			ints[ev.Integration.ID] = true
			tenants[ev.Tenant] = true
			k := key{ev.Tenant, ev.Integration.ID}
			events[k] = append(events[k], ev.Time.Time)
		}
		if len(ints) < 5 {
			t.Errorf("%s: only %d integrations", f.Source, len(ints))
		}
		if f.Source == "salesforce" {
			// Calls reusing a token carry a null ConnectedAppId, and still
			// belong to their app's integration, not to one keyed by its name.
			nulls := 0
			for _, r := range recs {
				var k struct {
					ConnectedAppID *string `json:"ConnectedAppId"`
				}
				if json.Unmarshal(r.Data, &k) == nil && k.ConnectedAppID == nil {
					nulls++
				}
			}
			if nulls == 0 {
				t.Error("salesforce: no ApiEvent with a null ConnectedAppId")
			}
			for id := range ints {
				if strings.HasPrefix(id, "app:") {
					t.Errorf("salesforce: integration %q is keyed by a name (of %d records with a null ConnectedAppId)", id, nulls)
				}
			}
		}
	}
	if len(tenants) < 3 {
		t.Errorf("tenants %v", tenants)
	}
	if len(m.Labels) != 8 {
		t.Errorf("%d labels, want 8", len(m.Labels))
	}
	for _, l := range m.Labels {
		ts := events[key{l.Tenant, l.IntegrationID}]
		in := 0
		for _, ts := range ts {
			if !ts.Before(l.Start) && !ts.After(l.End) {
				in++
			}
		}
		if len(ts) == 0 || in == 0 || len(l.Expected) == 0 || !l.End.After(l.Start) {
			t.Errorf("%s: %d events of %s/%s, %d in [%s, %s], expected %v", l.Scenario, len(ts), l.Tenant, l.IntegrationID, in, l.Start, l.End, l.Expected)
		}
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []corpus.Options{{Days: 10, Integrations: 300}, {Days: 42, Integrations: 5}} {
		if _, err := corpus.Generate(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
