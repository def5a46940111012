package clickhouse_test

import (
	"context"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestClusterLayoutServesTheWriters applies schemas/cluster on the packaged
// single-shard test cluster. A throwaway server has no ZooKeeper, so ON
// CLUSTER and the Replicated engines are swapped for their local
// equivalents; the Distributed tables, sharding keys and column lists are
// exercised as shipped, through the same writers production uses.
func TestClusterLayoutServesTheWriters(t *testing.T) {
	srv := chtest.New(t)
	ctx := context.Background()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{srv.TCPAddr}
	if _, err := clickhouse.Migrate(ctx, cfg); err != nil { // creates the database
		t.Fatal(err)
	}
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The single-server objects the cluster layout replaces (views first:
	// they read the tables).
	for _, tbl := range []string{"incident_timeline", "open_incidents", "incident_events", "incident_alerts", "incident_decision", "response_state", "incident_learned_mv",
		"incident_learned", "incident_decisions", "responses", "events", "alerts", "incidents"} {
		if err := c.Conn().Exec(ctx, "DROP TABLE IF EXISTS "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	migs, err := schemas.ClusterMigrations("test_shard_localhost")
	if err != nil {
		t.Fatal(err)
	}
	replicated := regexp.MustCompile(`Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, (\w+))?\)`)
	for _, m := range migs {
		for _, st := range m.Statements {
			if !strings.Contains(st, "ON CLUSTER 'test_shard_localhost'") {
				t.Fatalf("statement without ON CLUSTER: %s", st)
			}
			st = strings.ReplaceAll(st, " ON CLUSTER 'test_shard_localhost'", "")
			st = replicated.ReplaceAllString(st, "$1($2)")
			if err := c.Conn().Exec(ctx, st); err != nil {
				t.Fatalf("%s: %v", st, err)
			}
		}
	}
	ts := schemas.NewTime(time.Date(2026, 10, 20, 2, 13, 7, 0, time.UTC))
	evs := []schemas.Event{{EventID: "e1", Source: "google_workspace", Tenant: "t", Time: ts,
		Integration: schemas.Integration{ID: "app"}, Action: schemas.Action{Name: "activity", Category: "access"}}}
	wctx := clickhouseSyncInsert(ctx)
	if err := c.WriteEvents(wctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAlerts(wctx, []schemas.Alert{{ID: "a1", Detector: "geo.new_country", Severity: "high", IntegrationID: "app", Tenant: "t", FirstSeen: ts, LastSeen: ts}}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteIncidents(wctx, []schemas.Incident{{ID: "i1", Version: 1, Status: "open", Tenant: "t", IntegrationID: "app", Severity: "high", FirstSeen: ts, LastSeen: ts, UpdatedAt: ts}}); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := c.Conn().QueryRow(ctx, "SELECT (SELECT count() FROM events) + (SELECT count() FROM alerts) + (SELECT count() FROM incidents)").Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows through the Distributed tables: %d (%v)", n, err)
	}
	// Migration 0013's columns, on the local and the Distributed tables alike.
	full := fullEvent("e-full", ts)
	if err := c.WriteEvents(wctx, []schemas.Event{full}); err != nil {
		t.Fatal(err)
	}
	checkFullEventContext(t, readEventContext(t, ctx, c, "e-full"), full)
	if err := c.WriteAlerts(wctx, []schemas.Alert{{ID: "a2", Detector: "lifecycle.token_age", Severity: "high", IntegrationID: "app", Tenant: "t",
		FirstSeen: ts, LastSeen: ts, Criticality: "high", Owner: "it@example.com", Purpose: "sync"}}); err != nil {
		t.Fatal(err)
	}
	// Migration 0017's: the incident views, decisions and responses on the
	// Distributed tables.
	inc := schemas.Incident{ID: "i2", Version: 1, Status: "open", Tenant: "t", IntegrationID: "app", Severity: "high",
		FirstSeen: ts, LastSeen: ts, UpdatedAt: ts, AlertIDs: []string{"a1"}}
	if err := c.WriteIncidents(wctx, []schemas.Incident{inc}); err != nil {
		t.Fatal(err)
	}
	var learned time.Time
	var alerts uint64
	if err := c.Conn().QueryRow(ctx, "SELECT learned_at, alerts FROM open_incidents WHERE id = 'i2'").Scan(&learned, &alerts); err != nil || learned.Year() < 2026 || alerts != 1 {
		t.Fatalf("open_incidents on the cluster: learned_at %v, alerts %d (%v)", learned, alerts, err)
	}
	var detector string
	if err := c.Conn().QueryRow(ctx, "SELECT alert_detector FROM incident_alerts WHERE incident_id = 'i2'").Scan(&detector); err != nil || detector != "geo.new_country" {
		t.Fatalf("incident_alerts on the cluster: %q (%v)", detector, err)
	}
	if err := c.WriteAlerts(wctx, []schemas.Alert{{ID: "a3", Detector: "geo.new_asn", Severity: "high", IntegrationID: "app", Tenant: "t",
		FirstSeen: ts, LastSeen: ts, EventIDs: []string{"e1"}}}); err != nil {
		t.Fatal(err)
	}
	inc.Version, inc.AlertIDs = 2, []string{"a1", "a3"}
	if err := c.WriteIncidents(wctx, []schemas.Incident{inc}); err != nil {
		t.Fatal(err)
	}
	var evidence uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM incident_events WHERE incident_id = 'i2' AND event_id = 'e1'").Scan(&evidence); err != nil || evidence != 1 {
		t.Fatalf("incident_events on the cluster: %d rows for the evidence (%v)", evidence, err)
	}
	if err := c.WriteDecision(wctx, schemas.Decision{IncidentID: "i2", Tenant: "t", Key: "app", IntegrationID: "app", Action: schemas.DecisionAcknowledge,
		Actor: "ana", DecidedAt: schemas.NewTime(time.Now())}); err != nil {
		t.Fatal(err)
	}
	var decided string
	if err := c.Conn().QueryRow(ctx, "SELECT toString(action) FROM incident_decision WHERE incident_id = 'i2'").Scan(&decided); err != nil || decided != schemas.DecisionAcknowledge {
		t.Fatalf("incident_decision on the cluster: %q (%v)", decided, err)
	}
	if err := c.Record(wctx, []schemas.Response{
		{ID: "r1", IncidentID: "i2", IncidentVersion: 2, Tenant: "t", Source: "google_workspace", IntegrationID: "app", Action: schemas.ActionRevoke,
			Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned, At: ts, RecordedAt: ts},
		{ID: "r1", IncidentID: "i2", IncidentVersion: 2, Tenant: "t", Source: "google_workspace", IntegrationID: "app", Action: schemas.ActionRevoke,
			Mode: schemas.ModeEnforce, Status: schemas.ResponseExecuted, At: ts, RecordedAt: schemas.NewTime(ts.Add(time.Second))},
	}); err != nil {
		t.Fatal(err)
	}
	if done, err := c.Completed(ctx, []string{"r1"}); err != nil || !done["r1"] {
		t.Fatalf("responses on the cluster: completed %v (%v)", done, err)
	}
	var state string
	if err := c.Conn().QueryRow(ctx, "SELECT toString(status) FROM response_state WHERE id = 'r1'").Scan(&state); err != nil || state != schemas.ResponseExecuted {
		t.Fatalf("response_state on the cluster: %q (%v)", state, err)
	}
	var steps uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM incident_timeline WHERE incident_id = 'i2'").Scan(&steps); err != nil || steps != 4 {
		t.Fatalf("incident_timeline on the cluster: %d rows, want 2 alerts and 2 response steps (%v)", steps, err)
	}
	var crit, owner, purpose string
	if err := c.Conn().QueryRow(ctx, "SELECT criticality, owner, purpose FROM alerts WHERE id = 'a2'").Scan(&crit, &owner, &purpose); err != nil ||
		crit != "high" || owner != "it@example.com" || purpose != "sync" {
		t.Fatalf("alert context through the Distributed table: %q %q %q (%v)", crit, owner, purpose, err)
	}
}

// clickhouseSyncInsert makes inserts into Distributed tables synchronous, so
// a test can read them back at once.
func clickhouseSyncInsert(ctx context.Context) context.Context {
	return ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_distributed_sync": 1}))
}
