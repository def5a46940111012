package wiring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/intake"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The product's promise: replaying an input gives the alerts production
// raises on it. Both inputs go through the offline program (what replay and
// eval run) and through the live ingest and detect roles on the embedded
// broker, from the same config, and must raise the same alert ids —
// chain.shared_ip's source-IP stage included.
func TestReplayAndLiveRolesRaiseTheSameAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two corpora through the live roles")
	}
	dir := t.TempDir()
	integrations := 120
	if raceDetector {
		integrations = 40 // the corpus's smallest: its attacks and the shared-IP group stay in it
	}
	m, err := corpus.Write(dir, corpus.Options{Seed: corpus.DefaultOptions().Seed, Start: corpus.DefaultOptions().Start, Days: 42, Integrations: integrations})
	if err != nil {
		t.Fatal(err)
	}
	var corpusFiles []intake.FileInput
	for _, f := range m.Files {
		corpusFiles = append(corpusFiles, intake.FileInput{Source: f.Source, Tenant: f.Tenant, Path: filepath.Join(dir, f.Path)})
	}
	// A catalog that knows the stolen app: it is mapped to its catalog id,
	// weighed as critical, and past its expiry.
	catalog := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catalog, []byte(`integrations:
  - id: pipeline-crm
    name: Pipeline CRM Sync
    owner: revops@acme.test
    purpose: CRM sync of mail metadata
    criticality: critical
    expires_at: 2026-10-01
    identities:
      - {source: google_workspace, id: "123456789012-abc.apps.googleusercontent.com"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	scenarioFile := []intake.FileInput{{Source: "google_workspace", Path: filepath.Join(root, "testdata/scenarios/google_oauth_theft", scenario.PagesFile)}}
	tests := []struct {
		name    string
		files   []intake.FileInput
		catalog string
		// merged: the files hold several sources' records over the same
		// weeks; published merged in event time, as pollers running side by
		// side deliver them, rather than one whole file after another (a
		// backfill, whose late records do not tick closed hours).
		merged   bool
		sharedIP bool   // the input must exercise the source-IP stage
		encoding string // kafka.encoding, when not the default (MessagePack)
	}{
		{"bundled scenario", scenarioFile, "", false, false, ""},
		{"bundled scenario, events as JSON", scenarioFile, "", false, false, schemas.EncodingJSON},
		{"bundled scenario with a catalog", scenarioFile, catalog, false, false, ""},
		{"eval corpus, published as JSON and MessagePack in turn", corpusFiles, "", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cfg := startBroker(t)
			if tt.encoding != "" {
				cfg.Kafka.Encoding = tt.encoding
			}
			cfg.Ingest.Files = tt.files
			cfg.Inventory.Path = tt.catalog
			offline, about, offlineIncidents := replayIDs(t, cfg)
			if tt.sharedIP && !slices.ContainsFunc(offline, func(id string) bool { return about[id].Detector == "chain.shared_ip" }) {
				t.Fatal("the input raises no chain.shared_ip alert offline: it would not test the second stage")
			}
			var merged []schemas.Event
			if tt.merged {
				merged = loadFiles(t, cfg.Ingest.Files)
				cfg.Ingest.Files = nil
			}
			live, liveIncidents := liveIDs(t, cfg, merged)
			if !slices.Equal(offline, live) {
				var missing []string
				for _, id := range minus(offline, live) {
					missing = append(missing, about[id].Detector+" "+about[id].IntegrationID+": "+about[id].Title)
				}
				t.Fatalf("replay and the live roles differ\nonly replay: %v\nonly live: %v", missing, minus(live, offline))
			}
			if tt.catalog != "" && !slices.ContainsFunc(offline, func(id string) bool {
				return about[id].Detector == "inventory.expired" && about[id].IntegrationID == "pipeline-crm"
			}) {
				t.Fatal("the catalog's expired entry raised no inventory.expired offline")
			}
			if !slices.Equal(offlineIncidents, liveIncidents) {
				t.Fatalf("incidents differ\nreplay: %v\nlive:   %v", offlineIncidents, liveIncidents)
			}
			if len(offlineIncidents) == 0 {
				t.Fatal("the input opens no incident: it would not test correlation")
			}
			t.Logf("%d alert ids and %d incidents (id@version), the same both ways", len(offline), len(offlineIncidents))
		})
	}
}

// replayIDs runs the files through the detect program as replay and eval
// do: normalized, merged in event time, then flushed.
func replayIDs(t *testing.T, cfg config.Config) (ids []string, about map[string]schemas.Alert, incidents []string) {
	t.Helper()
	all := loadFiles(t, cfg.Ingest.Files)
	prog, err := program.Build(cfg.Program(), program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	about = map[string]schemas.Alert{}
	r := prog.NewReplay()
	for i := range all {
		r.Observe(&all[i])
	}
	for _, a := range r.Finish() {
		about[a.ID] = a
		ids = append(ids, a.ID)
	}
	sort.Strings(ids)
	for _, inc := range program.Latest(r.Incidents()) {
		incidents = append(incidents, fmt.Sprintf("%s@%d", inc.ID, inc.Version))
	}
	sort.Strings(incidents)
	return slices.Compact(ids), about, incidents
}

func loadFiles(t *testing.T, files []intake.FileInput) []schemas.Event {
	t.Helper()
	var all []schemas.Event
	for _, f := range files {
		n, err := ingest.NewNormalizer(f.Source, f.Tenant)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := ingest.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		b := ingest.NormalizeRecords(n, f.Path, recs)
		if len(b.Dead) > 0 {
			t.Fatalf("%s: %d dead letters, first: %s", f.Path, len(b.Dead), b.Dead[0].Reason)
		}
		all = append(all, b.Events...)
	}
	ingest.SortEvents(all)
	return all
}

// liveIDs runs the ingest and detect roles until every event is detected
// and the alert topic is quiet, and returns the ids produced.
func liveIDs(t *testing.T, cfg config.Config, events []schemas.Event) (alerts, incidents []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleIngest, wiring.RoleDetect}) }()
	want := func() int64 { return p.Stats.EventsPublished.Load() }
	if events != nil {
		// In slices alternately as JSON and as MessagePack: one topic holding
		// both, as while kafka.encoding changes on a running deployment.
		jsonCfg := cfg
		jsonCfg.Kafka.Encoding = schemas.EncodingJSON
		for i, lo := 0, 0; lo < len(events); i, lo = i+1, lo+5000 {
			c := cfg
			if i%2 == 0 {
				c = jsonCfg
			}
			publishAll(t, ctx, c, events[lo:min(lo+5000, len(events))])
		}
		want = func() int64 { return int64(len(events)) }
	}
	detected := func() bool {
		return p.Stats.FilesIngested.Load() >= int64(len(cfg.Ingest.Files)) && want() > 0 && p.Stats.EventsDetected.Load() >= want()
	}
	if !wiring.WaitFor(ctx, 4*time.Minute, detected) {
		t.Fatalf("detected %d of %d events", p.Stats.EventsDetected.Load(), want())
	}
	// The source-IP stage runs behind the first: wait until the alert count
	// holds still.
	var ids map[string]int
	last, still := -1, 0
	wiring.WaitFor(ctx, time.Minute, func() bool {
		ids = alertCounts(t, ctx, cfg)
		if len(ids) == last {
			still++
		} else {
			last, still = len(ids), 0
		}
		return still >= 10
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		alerts = append(alerts, id)
	}
	sort.Strings(alerts)
	for id, v := range latestIncidents(t, ctx, cfg) {
		incidents = append(incidents, fmt.Sprintf("%s@%d", id, v))
	}
	sort.Strings(incidents)
	return alerts, incidents
}

// latestIncidents reads tokenwatch.incidents: id → highest version.
func latestIncidents(t *testing.T, ctx context.Context, cfg config.Config) map[string]int {
	t.Helper()
	out := map[string]int{}
	for part := 0; part < cfg.Kafka.Partitions; part++ {
		err := broker.ReadPartition(ctx, cfg.Kafka, schemas.TopicIncidents, part, func(m kafka.Message) {
			var inc schemas.Incident
			if err := json.Unmarshal(m.Value, &inc); err != nil {
				t.Errorf("incident %s: %v", m.Key, err)
				return
			}
			out[inc.ID] = max(out[inc.ID], inc.Version)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
