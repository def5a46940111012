package clickhouse_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestMigrateIsIdempotentAndWritersRoundTrip(t *testing.T) {
	srv := chtest.New(t)
	ctx := context.Background()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{srv.TCPAddr}
	applied, err := clickhouse.Migrate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) < 2 {
		t.Fatalf("applied %v, want the events and alerts migrations", applied)
	}
	again, err := clickhouse.Migrate(ctx, cfg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v (err %v), want nothing", again, err)
	}
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := schemas.NewTime(time.Date(2026, 10, 27, 2, 13, 7, 412e6, time.UTC))
	ev := schemas.Event{EventID: "e1", Source: "google_workspace", Tenant: "C1", Time: ts,
		Integration: schemas.Integration{ID: "app1", SourceAppID: "app1", Name: "CRM"},
		Action:      schemas.Action{Name: "activity", Category: "access"}, Scopes: []string{"a", "b"}, Bytes: 42,
		Network: schemas.Network{IP: "102.89.0.1"}, Geo: &schemas.Geo{Country: "NG", ASN: 29465}, Raw: json.RawMessage(`{"x":1}`)}
	// Written twice: ReplacingMergeTree collapses the duplicate.
	for i := 0; i < 2; i++ {
		if err := c.WriteEvents(ctx, []schemas.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	var n uint64
	var country string
	var bytes uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count(), any(country), any(bytes) FROM events FINAL WHERE event_id = 'e1'").Scan(&n, &country, &bytes); err != nil {
		t.Fatal(err)
	}
	if n != 1 || country != "NG" || bytes != 42 {
		t.Fatalf("events row: count %d country %q bytes %d", n, country, bytes)
	}
	a := schemas.Alert{ID: "a1", Detector: "geo.new_country", Severity: schemas.SeverityHigh, IntegrationID: "app1", Tenant: "C1",
		Title: "t", FirstSeen: ts, LastSeen: ts, EventIDs: []string{"e1"}, Observed: json.RawMessage(`{"country":"NG"}`)}
	if err := clickhouse.NewAlertSink("ch", c).Send(ctx, []schemas.Alert{a, a}); err != nil {
		t.Fatal(err)
	}
	var sev string
	var ids []string
	if err := c.Conn().QueryRow(ctx, "SELECT count(), any(toString(severity)), any(event_ids) FROM alerts FINAL").Scan(&n, &sev, &ids); err != nil {
		t.Fatal(err)
	}
	if n != 1 || sev != "high" || len(ids) != 1 || ids[0] != "e1" {
		t.Fatalf("alerts row: count %d severity %q ids %v", n, sev, ids)
	}
}
