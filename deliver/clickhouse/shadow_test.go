package clickhouse_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Migration 0016: alerts keep their shadow flag; shadow_alert_rates gives
// each shadow detector's alerts per 1,000 integration-days (the days of
// events, as eval counts them); open_alerts leaves shadow alerts out.
func TestShadowAlertsAreStoredRatedAndKeptOutOfTriage(t *testing.T) {
	ctx, _, c := migrated(t)
	day := func(d int, h int) schemas.Time {
		return schemas.NewTime(time.Date(2026, 10, d, h, 0, 0, 0, time.UTC))
	}
	// Integration-days: acme/crm 1st..10th = 10, acme/hr the 3rd (two
	// events) = 1, beta/crm 5th..6th across midnight = 2: 13 in all.
	var evs []schemas.Event
	for i, e := range []struct {
		tenant, app string
		at          schemas.Time
	}{{"acme", "crm", day(1, 9)}, {"acme", "crm", day(10, 23)}, {"acme", "hr", day(3, 1)}, {"acme", "hr", day(3, 22)},
		{"beta", "crm", day(5, 23)}, {"beta", "crm", day(6, 0)}} {
		evs = append(evs, schemas.Event{EventID: fmt.Sprintf("e%d", i), Source: "okta", Tenant: e.tenant, Time: e.at,
			Integration: schemas.Integration{ID: e.app}, Action: schemas.Action{Name: "x", Category: "access"}})
	}
	if err := c.WriteEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	recent := schemas.NewTime(time.Now().UTC().Add(-time.Hour).Truncate(time.Second))
	alert := func(id, det, tenant, app string, shadow bool) schemas.Alert {
		return schemas.Alert{ID: id, Detector: det, Severity: schemas.SeverityHigh, Tenant: tenant, IntegrationID: app,
			Title: id, FirstSeen: recent, LastSeen: recent, EventIDs: []string{"e0"}, Shadow: shadow}
	}
	alerts := []schemas.Alert{
		alert("live", "geo.new_country", "acme", "crm", false),
		alert("s1", "sigma.trial", "acme", "crm", true),
		alert("s2", "sigma.trial", "beta", "crm", true),
		alert("s3", "volume.spike", "acme", "hr", true),
	}
	if err := c.WriteAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	// A re-delivery in its own insert: counted once.
	if err := c.Conn().Exec(ctx, "OPTIMIZE TABLE alerts FINAL"); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAlerts(ctx, alerts[1:2]); err != nil {
		t.Fatal(err)
	}

	var flags []string
	rows, err := c.Conn().Query(ctx, "SELECT id, shadow FROM alerts FINAL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var s uint8
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		flags = append(flags, fmt.Sprintf("%s=%d", id, s))
	}
	rows.Close()
	if want := []string{"live=0", "s1=1", "s2=1", "s3=1"}; !slices.Equal(flags, want) {
		t.Fatalf("alerts.shadow %v, want %v", flags, want)
	}

	type rate struct {
		det          string
		alerts, ints uint64
		days         int64
		per1k        float64
	}
	var got []rate
	rows, err = c.Conn().Query(ctx, "SELECT detector, alerts, integrations, integration_days, alerts_per_1k_integration_days FROM shadow_alert_rates")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r rate
		if err := rows.Scan(&r.det, &r.alerts, &r.ints, &r.days, &r.per1k); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	rows.Close()
	want := []rate{{"sigma.trial", 2, 2, 13, 2000.0 / 13}, {"volume.spike", 1, 1, 13, 1000.0 / 13}}
	if len(got) != len(want) {
		t.Fatalf("shadow_alert_rates %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.det != w.det || g.alerts != w.alerts || g.ints != w.ints || g.days != w.days || math.Abs(g.per1k-w.per1k) > 1e-9 {
			t.Fatalf("shadow_alert_rates row %d: %+v, want %+v", i, g, w)
		}
	}

	var open []string
	rows, err = c.Conn().Query(ctx, "SELECT id FROM open_alerts")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		open = append(open, id)
	}
	rows.Close()
	if !slices.Equal(open, []string{"live"}) {
		t.Fatalf("open_alerts %v, want only the live alert", open)
	}
}
