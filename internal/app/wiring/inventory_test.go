package wiring_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/ingest/intake"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
)

const catalog = `integrations:
  - id: pipeline-crm
    name: Pipeline CRM Sync
    owner: revops@example.com
    criticality: high
    approved_countries: [US]
    identities:
      - {source: google_workspace, id: "123456789012-abc.apps.googleusercontent.com"}
`

func TestCatalogMapsIdentitiesAndDiscoveryFillsIntegrations(t *testing.T) {
	srv := chtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.yaml")
	os.WriteFile(cat, []byte(catalog), 0o644)

	cfg := config.Default()
	cfg.HTTP.Listen = ""
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}
	cfg.Deliver.EventsToClickHouse = false
	cfg.GeoIP.City, cfg.GeoIP.ASN = geoCity, geoASN
	cfg.Inventory.Path = cat
	cfg.Inventory.DiscoveryInterval = 100 * time.Millisecond
	cfg.Ingest.Files = []intake.FileInput{{Source: "google_workspace", Path: filepath.Join(root, "testdata/scenarios/google_oauth_theft", scenario.PagesFile)}}
	// Route by the catalog's criticality: only the high-criticality
	// integration's alerts page; the SOC channel gets everything.
	pager, soc := &flakyReceiver{ids: map[string]int{}}, &flakyReceiver{ids: map[string]int{}}
	ps, ss := httptest.NewServer(pager), httptest.NewServer(soc)
	defer ps.Close()
	defer ss.Close()
	cfg.Deliver.Sinks = []dispatch.SinkConfig{webhookSink(t, "pager", ps.URL), webhookSink(t, "soc", ss.URL)}
	cfg.Deliver.Routes = deliver.Routes{{Sinks: []string{"pager"}, Criticality: []string{"high", "critical"}}, {Sinks: []string{"soc"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- p.Run(runCtx, []string{wiring.RoleIngest, wiring.RoleDetect, wiring.RoleDeliver})
	}()
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ints, catalogued uint64
	ok := wiring.WaitFor(ctx, 2*time.Minute, func() bool {
		n := p.Stats.EventsPublished.Load()
		if p.Stats.FilesIngested.Load() < int64(len(cfg.Ingest.Files)) || n == 0 || p.Stats.EventsDetected.Load() < n || p.Stats.Delivered(wiring.ClickHouseAlertSink) < p.Stats.AlertsProduced.Load() {
			return false
		}
		c.Conn().QueryRow(ctx, "SELECT count(), sum(catalogued) FROM integrations FINAL").Scan(&ints, &catalogued)
		return ints == 20
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !ok || catalogued != 1 {
		t.Fatalf("integrations table: %d rows, %d catalogued; want 20 and 1", ints, catalogued)
	}
	var owner string
	c.Conn().QueryRow(ctx, "SELECT owner FROM integrations FINAL WHERE integration_id = 'pipeline-crm'").Scan(&owner)
	if owner != "revops@example.com" {
		t.Errorf("catalogued owner %q", owner)
	}
	if !wiring.WaitFor(ctx, 30*time.Second, func() bool { return soc.distinct() >= int(p.Stats.AlertsProduced.Load()) }) {
		t.Fatalf("soc sink has %d of %d alerts", soc.distinct(), p.Stats.AlertsProduced.Load())
	}
	var crm uint64
	c.Conn().QueryRow(ctx, "SELECT count() FROM alerts FINAL WHERE integration_id = 'pipeline-crm'").Scan(&crm)
	if pager.distinct() != int(crm) || crm == 0 {
		t.Errorf("pager got %d alerts, want the %d of the high-criticality integration only", pager.distinct(), crm)
	}
	// The attack alerts name the catalog identity; the 19 uncatalogued apps
	// are each reported once as unowned.
	var newCountry, unowned uint64
	c.Conn().QueryRow(ctx, "SELECT countIf(detector = 'geo.new_country' AND integration_id = 'pipeline-crm'), countIf(detector = 'inventory.unowned') FROM alerts FINAL").Scan(&newCountry, &unowned)
	if newCountry != 1 || unowned != 19 {
		t.Errorf("alerts: new_country on pipeline-crm %d (want 1), unowned %d (want 19)", newCountry, unowned)
	}
}
