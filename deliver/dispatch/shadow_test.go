package dispatch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/deliver/file"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// fileAlerts is the alert ids a file sink wrote.
func fileAlerts(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l file.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Alert != nil {
			ids = append(ids, l.Alert.ID)
		}
	}
	return ids
}

// A shadow alert reaches only archives: a webhook (and a file that is not an
// archive) gets the live alert alone, even through a route that asks for
// alerts; the archive file gets both.
func TestShadowAlertsReachOnlyArchives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc := startBroker(ctx, t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	dir := t.TempDir()
	archive, plain := filepath.Join(dir, "archive.jsonl"), filepath.Join(dir, "plain.jsonl")
	cfg := dispatch.DefaultConfig()
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.Sinks = []dispatch.SinkConfig{
		sinkConfig(t, "soc", "webhook", "url: "+srv.URL+"\nsecret: k\n"),
		sinkConfig(t, "archive", "file", "path: "+archive+"\narchive: true\n"),
		sinkConfig(t, "plain", "file", "path: "+plain+"\n"),
	}
	yes := true
	cfg.Routes = deliver.Routes{{Sinks: []string{"soc", "archive", "plain"}, Alerts: &yes}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d := dispatch.New(cfg, kc, nil, nil, dispatch.NewMetrics(reg), broker.NewMetrics(reg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	live := schemas.Alert{ID: "a-live", Detector: "geo.new_country", IntegrationID: "app", Tenant: "t", Severity: "high"}
	shadow := schemas.Alert{ID: "a-shadow", Detector: "sigma.new-rule", IntegrationID: "app", Tenant: "t", Severity: "critical", Shadow: true}
	produce(t, ctx, kc, schemas.TopicAlerts, shadow, live)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	ok := waitFor(ctx, time.Minute, func() bool {
		_, al := rc.got()
		return len(al) >= 1 && len(fileAlerts(t, archive)) >= 2 && len(fileAlerts(t, plain)) >= 1
	})
	time.Sleep(300 * time.Millisecond) // room for a wrong delivery
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, al := rc.got()
	got := map[string][]string{"soc": al, "archive": fileAlerts(t, archive), "plain": fileAlerts(t, plain)}
	for sink, want := range map[string][]string{"soc": {"a-live"}, "archive": {"a-live", "a-shadow"}, "plain": {"a-live"}} {
		slices.Sort(got[sink])
		if !slices.Equal(got[sink], want) {
			t.Errorf("%s got %q, want %q (all arrived: %v)", sink, got[sink], want, ok)
		}
	}
}
