package wiring_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	_ "github.com/tokenwatch/tokenwatch/deliver/all"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/deliver/webhook"
	_ "github.com/tokenwatch/tokenwatch/detect/all"
	_ "github.com/tokenwatch/tokenwatch/ingest/all"
	"github.com/tokenwatch/tokenwatch/ingest/intake"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const root = "../../.."

// badRecords: a good record, a malformed line, a record without time (both
// dead-lettered) and an event name Google added after the connector was
// written (normalized with category other and counted, not dead-lettered).
const badRecords = `{"id":{"time":"2026-10-05T10:00:00.000Z","uniqueQualifier":"1","applicationName":"token","customerId":"C03az79cb"},"ipAddress":"52.4.1.2","events":[{"name":"activity","parameters":[{"name":"client_id","value":"bad-input-app"}]}]}
{"id":{"time":"2026-10-05T10:00:01.000Z",
{"id":{"uniqueQualifier":"3"},"events":[{"name":"activity","parameters":[{"name":"client_id","value":"x"}]}]}
{"id":{"time":"2026-10-05T10:00:03.000Z","uniqueQualifier":"4"},"events":[{"name":"teleport","parameters":[{"name":"client_id","value":"x"}]}]}
`

// receiver is the webhook's far end: it verifies every signature.
type receiver struct {
	mu        sync.Mutex
	alerts    map[string]schemas.Alert
	incidents map[string]schemas.Incident // newest version of each
	rejected  int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := webhook.Verify([]byte("hook-key"), r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		rc.rejected++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.Header.Get(webhook.HeaderKind) == "incident" {
		var inc schemas.Incident
		if err := json.Unmarshal(body, &inc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if rc.incidents == nil {
			rc.incidents = map[string]schemas.Incident{}
		}
		if old, ok := rc.incidents[inc.ID]; !ok || inc.Version > old.Version {
			rc.incidents[inc.ID] = inc
		}
		return
	}
	var a schemas.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.alerts[a.ID] = a
}

func (rc *receiver) count() int { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.alerts) }

// hasIncidents reports whether the receiver holds each incident at its
// version (and at least one).
func (rc *receiver) hasIncidents(want map[string]int) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, v := range want {
		if rc.incidents[id].Version < v {
			return false
		}
	}
	return len(want) > 0
}

func TestRawFileThroughBrokerToClickHouseAndWebhook(t *testing.T) {
	srv := chtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(badRecords), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := &receiver{alerts: map[string]schemas.Alert{}}
	hook := httptest.NewServer(rc)
	defer hook.Close()

	cfg := config.Default()
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}
	cfg.Deliver.EventsToClickHouse = true
	cfg.HTTP.Listen = ""
	cfg.GeoIP.City = filepath.Join(root, "testdata/geoip/test-city.mmdb")
	cfg.GeoIP.ASN = filepath.Join(root, "testdata/geoip/test-asn.mmdb")
	scen := filepath.Join(root, "testdata/scenarios/google_oauth_theft")
	cfg.Ingest.Files = []intake.FileInput{{Source: "google_workspace", Path: filepath.Join(scen, scenario.PagesFile)}, {Source: "google_workspace", Path: bad}}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("url: "+hook.URL+"\nsecret: hook-key\n"), &node); err != nil {
		t.Fatal(err)
	}
	cfg.Deliver.Sinks = []dispatch.SinkConfig{{Name: "soc", Kind: "webhook", Config: *node.Content[0]}}
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
	drained := wiring.WaitFor(ctx, 2*time.Minute, func() bool {
		n, a := p.Stats.EventsPublished.Load(), p.Stats.AlertsProduced.Load()
		return p.Stats.FilesIngested.Load() >= int64(len(cfg.Ingest.Files)) && n > 0 && p.Stats.EventsDetected.Load() >= n && p.Stats.EventsWritten.Load() >= n &&
			p.Stats.Delivered("clickhouse-alerts") >= a && int64(rc.count()) >= a && p.Stats.DeadLetters.Load() >= 2 &&
			rc.hasIncidents(p.Stats.Incidents())
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !drained {
		t.Fatalf("pipeline did not drain: published %d detected %d written %d alerts %d delivered %d webhook %d",
			p.Stats.EventsPublished.Load(), p.Stats.EventsDetected.Load(), p.Stats.EventsWritten.Load(),
			p.Stats.AlertsProduced.Load(), p.Stats.Delivered("clickhouse-alerts"), rc.count())
	}

	// ClickHouse holds every event and the attack alerts with their evidence.
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var events uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if int64(events) != p.Stats.EventsPublished.Load() {
		t.Errorf("events table has %d rows, %d were published", events, p.Stats.EventsPublished.Load())
	}
	var other string
	if err := c.Conn().QueryRow(ctx, "SELECT action_category FROM events WHERE action_name = 'teleport'").Scan(&other); err != nil || other != "other" {
		t.Errorf("the unknown event name: category %q (err %v), want it stored as other", other, err)
	}
	expRaw, _ := os.ReadFile(filepath.Join(scen, scenario.ExpectedFile))
	expected, err := scenario.ReadExpected(expRaw)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := c.Conn().Query(ctx, "SELECT id, detector, integration_id, tenant, event_ids FROM alerts FINAL")
	if err != nil {
		t.Fatal(err)
	}
	var stored []schemas.Alert
	for rows.Next() {
		var a schemas.Alert
		if err := rows.Scan(&a.ID, &a.Detector, &a.IntegrationID, &a.Tenant, &a.EventIDs); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, a)
	}
	rows.Close()
	if problems := scenario.Match(expected, stored); len(problems) > 0 {
		t.Errorf("ClickHouse alerts vs expected:\n%s", strings.Join(problems, "\n"))
	}
	for _, a := range stored {
		if a.Detector == "geo.new_country" {
			var country string
			q := "SELECT any(country) FROM events WHERE event_id = ?"
			if err := c.Conn().QueryRow(ctx, q, a.EventIDs[0]).Scan(&country); err != nil || country != "NG" {
				t.Errorf("new_country evidence %v resolves to country %q (err %v)", a.EventIDs, country, err)
			}
		}
	}
	// The webhook received exactly the same alerts, every signature verified,
	// and the one incident they make, at the version ClickHouse holds.
	rc.mu.Lock()
	if rc.rejected != 0 || len(rc.alerts) != len(stored) {
		t.Errorf("webhook: %d alerts, %d rejected; ClickHouse has %d", len(rc.alerts), rc.rejected, len(stored))
	}
	var incID string
	var incVersion uint32
	if err := c.Conn().QueryRow(ctx, "SELECT id, version FROM incidents FINAL").Scan(&incID, &incVersion); err != nil {
		t.Errorf("ClickHouse incidents: %v", err)
	}
	if inc, ok := rc.incidents[incID]; len(rc.incidents) != 1 || !ok || inc.Version != int(incVersion) || len(inc.AlertIDs) != len(stored) {
		t.Errorf("webhook incidents %d (want the one ClickHouse holds, %s v%d, citing %d alerts)", len(rc.incidents), incID, incVersion, len(stored))
	}
	rc.mu.Unlock()

	// The operator sees it all in /metrics, and /readyz is green.
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`tokenwatch_alerts_total{detector="geo.new_country",severity="high"} 1`,
		`tokenwatch_sink_deliveries_total{sink="soc"}`, `tokenwatch_dead_letters_total{source="google_workspace",stage="normalize"} 1`,
		`tokenwatch_ingest_unknown_total{kind="event",name="teleport",source="google_workspace"} 1`,
		`tokenwatch_clickhouse_events_written_total`, `tokenwatch_geoip_database_age_seconds{database="asn"}`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	rec = httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz: %d %s", rec.Code, rec.Body)
	}

	// The two unreadable records are on the dead-letter topic with their reasons.
	reasons := readDeadLetters(t, ctx, p.Cfg.Kafka.Brokers, 2)
	for _, want := range []string{"malformed JSON", "no id.time"} {
		if !containsAny(reasons, want) {
			t.Errorf("no dead letter mentions %q: %q", want, reasons)
		}
	}
	var good uint64
	c.Conn().QueryRow(ctx, "SELECT count() FROM events WHERE integration_id = 'bad-input-app'").Scan(&good)
	if good != 1 {
		t.Errorf("the good record of the bad file: %d rows, want 1", good)
	}
}

func readDeadLetters(t *testing.T, ctx context.Context, brokers []string, n int) []string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: schemas.TopicDeadLetter, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var reasons []string
	for partition := 0; len(reasons) < n && partition < 8; partition++ {
		r.Close()
		r = kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: schemas.TopicDeadLetter, Partition: partition, MaxWait: 100 * time.Millisecond})
		for {
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				break
			}
			var d schemas.DeadLetter
			if err := json.Unmarshal(m.Value, &d); err != nil {
				t.Fatal(err)
			}
			if rec, err := d.Bytes(); err != nil || len(rec) == 0 {
				t.Errorf("dead letter without its record: %+v (%v)", d, err)
			}
			reasons = append(reasons, d.Reason)
		}
	}
	sort.Strings(reasons)
	return reasons
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
