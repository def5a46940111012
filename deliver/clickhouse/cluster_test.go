package clickhouse_test

import (
	"context"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"regexp"
	"slices"
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
	for _, tbl := range []string{"integration_scope_usage", "api_method_scopes", "shadow_alert_rates", "integration_geo_footprint", "unowned_integrations",
		"open_alerts", "integration_activity_hourly_mv", "integration_activity_hourly", "integrations", "incident_timeline", "open_incidents", "incident_events", "incident_alerts", "incident_decision", "response_state", "incident_learned_mv",
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
			// An INSERT runs where the migration runs: only into a table
			// replicated to every node (api_method_scopes).
			if !strings.Contains(st, "ON CLUSTER 'test_shard_localhost'") && !strings.HasPrefix(strings.TrimSpace(st), "INSERT INTO api_method_scopes") {
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
	// The stored-id lookup reads key_hash through the Distributed table.
	if skipped, err := c.WriteNewEvents(wctx, evs); err != nil || skipped != 1 {
		t.Fatalf("the same event again through the Distributed table: %d left out (%v), want 1", skipped, err)
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
	checkClusterAnalystViews(t, ctx, c)
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

// checkClusterAnalystViews reads migration 0019's objects on the cluster
// layout: the integrations table, the hourly activity fed on the shards, the
// analyst views and the scope map with its usage view.
func checkClusterAnalystViews(t *testing.T, ctx context.Context, c *clickhouse.Client) {
	t.Helper()
	wctx := clickhouseSyncInsert(ctx)
	now := time.Now().UTC().Truncate(time.Second)
	if err := c.WriteIntegrations(wctx, []clickhouse.IntegrationRow{
		{Tenant: "C1", IntegrationID: "app1", Name: "Mail Archiver", FirstSeen: now.Add(-time.Hour), LastSeen: now.Add(-time.Hour), Sources: []string{"microsoft"}},
		{Tenant: "C1", IntegrationID: "app1", Name: "Mail Archiver", Owner: "it@example.com", Catalogued: true, FirstSeen: now.Add(-time.Hour), LastSeen: now, Sources: []string{"microsoft"}},
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := c.ReadIntegrations(ctx)
	if err != nil || len(rows) != 1 || rows[0].Owner != "it@example.com" {
		t.Fatalf("integrations on the cluster: %+v (%v)", rows, err)
	}
	recent := fullEvent("e-recent", schemas.NewTime(now.Add(-time.Hour)))
	if err := c.WriteEvents(wctx, []schemas.Event{recent}); err != nil {
		t.Fatal(err)
	}
	var hourly uint64
	if err := c.Conn().QueryRow(ctx, "SELECT countMerge(events) FROM integration_activity_hourly WHERE integration_id = 'app1'").Scan(&hourly); err != nil || hourly != 2 {
		t.Fatalf("integration_activity_hourly on the cluster: %d events of app1, want 2 (%v)", hourly, err)
	}
	var geo uint64
	if err := c.Conn().QueryRow(ctx, "SELECT sum(events) FROM integration_geo_footprint WHERE integration_id = 'app1' AND country = 'NL'").Scan(&geo); err != nil || geo != 2 {
		t.Fatalf("integration_geo_footprint on the cluster: %d (%v)", geo, err)
	}
	at := schemas.NewTime(now)
	if err := c.WriteAlerts(wctx, []schemas.Alert{
		{ID: "u1", Detector: "inventory.unowned", Severity: "low", IntegrationID: "app1", Tenant: "C1", Title: "Mail Archiver is not in the catalog", FirstSeen: at, LastSeen: at},
		{ID: "s1", Detector: "sigma.trial", Severity: "medium", IntegrationID: "app1", Tenant: "C1", FirstSeen: at, LastSeen: at, Shadow: true},
	}); err != nil {
		t.Fatal(err)
	}
	var queue []string
	qrows, err := c.Conn().Query(ctx, "SELECT id FROM open_alerts ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for qrows.Next() {
		var id string
		if err := qrows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		queue = append(queue, id)
	}
	if !slices.Contains(queue, "u1") || slices.Contains(queue, "s1") {
		t.Fatalf("open_alerts on the cluster: %v, want u1 and no shadow alert", queue)
	}
	var unownedEvents uint64
	if err := c.Conn().QueryRow(ctx, "SELECT events_30d FROM unowned_integrations WHERE integration_id = 'app1'").Scan(&unownedEvents); err != nil || unownedEvents != 1 {
		t.Fatalf("unowned_integrations on the cluster: %d events in 30 days, want 1 (%v)", unownedEvents, err)
	}
	var shadowAlerts uint64
	if err := c.Conn().QueryRow(ctx, "SELECT alerts FROM shadow_alert_rates WHERE detector = 'sigma.trial'").Scan(&shadowAlerts); err != nil || shadowAlerts != 1 {
		t.Fatalf("shadow_alert_rates on the cluster: %d (%v)", shadowAlerts, err)
	}
	var mapRows, single uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM api_method_scopes").Scan(&mapRows); err != nil || mapRows == 0 {
		t.Fatalf("api_method_scopes on the cluster: %d rows (%v)", mapRows, err)
	}
	migs, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// The newest fill counts: each refill (0020 on) truncates first.
	for _, m := range migs {
		for _, st := range m.Statements {
			if strings.HasPrefix(strings.TrimSpace(st), "INSERT INTO api_method_scopes") {
				single = uint64(strings.Count(st, "\n    ('"))
			}
		}
	}
	if mapRows != single {
		t.Fatalf("api_method_scopes on the cluster has %d rows, the newest single-server fill inserts %d", mapRows, single)
	}
	var held, needed []string
	var mapped uint64
	if err := c.Conn().QueryRow(ctx, "SELECT held, needed, mapped_calls FROM integration_scope_usage WHERE integration_id = 'app1'").Scan(&held, &needed, &mapped); err != nil ||
		!slices.Equal(held, []string{"Mail.Read"}) || mapped != 1 || len(needed) != 1 {
		t.Fatalf("integration_scope_usage on the cluster: held %v needed %v mapped %d (%v)", held, needed, mapped, err)
	}
}
