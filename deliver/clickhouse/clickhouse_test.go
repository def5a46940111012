package clickhouse_test

import (
	"context"
	"encoding/json"
	"reflect"
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

// fullEvent sets every optional field migration 0013 added a column for.
func fullEvent(id string, ts schemas.Time) schemas.Event {
	issued := schemas.NewTime(ts.Add(-26 * time.Hour))
	return schemas.Event{EventID: id, Source: "microsoft", Tenant: "C1", Time: ts,
		Integration:     schemas.Integration{ID: "app1", SourceAppID: "app1", Name: "Mail Archiver"},
		Credential:      schemas.Credential{Type: "oauth_token", ID: "sia-1", Name: "archiver-prod", Issuer: "https://sts.windows.net/0e9d/"},
		Principal:       schemas.Principal{ID: "cfo@example.com", Type: "user"},
		Action:          schemas.Action{Name: "graph.get", Category: "access"},
		Scopes:          []string{"Mail.Read"},
		RequestedScopes: []string{"Mail.ReadWrite", "Directory.ReadWrite.All"},
		TokenIssuedAt:   &issued,
		Impersonation:   true,
		Delegation:      schemas.DelegationAppOnly,
		DirectoryRoles:  []string{"0997a1d0-0d1d-4acb-b408-d5ca73121e90"},
		HTTP:            &schemas.HTTP{Method: "GET", Route: "/users/{id}/messages", StatusCode: 200},
		Network: schemas.Network{IP: "198.51.100.23", UserAgent: "python-requests/2.31.0", IPChain: []string{"198.51.100.23", "10.0.0.5"},
			Proxy: true, ASN: 64500, ASOrg: "EXAMPLE-NET"},
		Geo: &schemas.Geo{Country: "NL", ASN: 8075, ASOrg: "MICROSOFT-CORP-MSN-AS-BLOCK"}}
}

// eventContext is the row of migration 0013's event columns.
type eventContext struct {
	RequestedScopes, DirectoryRoles, IPChain                []string
	TokenIssuedAtMS                                         uint64
	Impersonation, Proxy                                    uint8
	Delegation, Method, Route, CredName, CredIssuer, NetOrg string
	Status                                                  uint16
	NetASN, GeoASN                                          uint32
}

func readEventContext(t *testing.T, ctx context.Context, c *clickhouse.Client, id string) eventContext {
	t.Helper()
	var r eventContext
	err := c.Conn().QueryRow(ctx, `SELECT requested_scopes, directory_roles, ip_chain, token_issued_at_ms, impersonation, proxy,
		delegation, http_method, http_route, credential_name, credential_issuer, network_as_org, http_status_code, network_asn, asn
		FROM events FINAL WHERE event_id = ?`, id).Scan(&r.RequestedScopes, &r.DirectoryRoles, &r.IPChain, &r.TokenIssuedAtMS,
		&r.Impersonation, &r.Proxy, &r.Delegation, &r.Method, &r.Route, &r.CredName, &r.CredIssuer, &r.NetOrg, &r.Status, &r.NetASN, &r.GeoASN)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func checkFullEventContext(t *testing.T, r eventContext, ev schemas.Event) {
	t.Helper()
	want := eventContext{RequestedScopes: ev.RequestedScopes, DirectoryRoles: ev.DirectoryRoles, IPChain: ev.Network.IPChain,
		TokenIssuedAtMS: uint64(ev.TokenIssuedAt.UnixMilli()), Impersonation: 1, Proxy: 1, Delegation: "app_only",
		Method: "GET", Route: "/users/{id}/messages", CredName: "archiver-prod", CredIssuer: "https://sts.windows.net/0e9d/",
		NetOrg: "EXAMPLE-NET", Status: 200, NetASN: 64500, GeoASN: 8075}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("event context columns:\n got %+v\nwant %+v", r, want)
	}
}

func TestEventAndAlertContextColumnsLand(t *testing.T) {
	ctx, _, c := migrated(t)
	ts := schemas.NewTime(time.Date(2026, 10, 27, 4, 20, 0, 123e6, time.UTC))
	full := fullEvent("e-full", ts)
	bare := schemas.Event{EventID: "e-bare", Source: "slack", Tenant: "C1", Time: ts, Integration: schemas.Integration{ID: "app2"},
		HTTP: &schemas.HTTP{StatusCode: 70000}} // out of range: clamped, never wrapped
	if err := c.WriteEvents(ctx, []schemas.Event{full, bare}); err != nil {
		t.Fatal(err)
	}
	checkFullEventContext(t, readEventContext(t, ctx, c, "e-full"), full)
	// Absent fields are plain zero values: 0 is an unknown issue time.
	if r := readEventContext(t, ctx, c, "e-bare"); !reflect.DeepEqual(r, eventContext{RequestedScopes: []string{}, DirectoryRoles: []string{},
		IPChain: []string{}, Status: 65535}) {
		t.Fatalf("bare event context columns: %+v", r)
	}
	// The token's age at use, as an analyst computes it.
	var ageH float64
	if err := c.Conn().QueryRow(ctx, "SELECT (time_ms - token_issued_at_ms) / 3600000 FROM events WHERE event_id = 'e-full' AND token_issued_at_ms > 0").Scan(&ageH); err != nil || ageH != 26 {
		t.Fatalf("token age: %v hours (%v), want 26", ageH, err)
	}

	a := schemas.Alert{ID: "a-ctx", Detector: "lifecycle.token_age", Severity: schemas.SeverityHigh, IntegrationID: "app1", Tenant: "C1",
		Title: "t", FirstSeen: ts, LastSeen: ts, EventIDs: []string{"e-full"}, Criticality: "critical", Owner: "mail-team@example.com",
		Purpose: "Archives executive mailboxes"}
	b := schemas.Alert{ID: "a-bare", Detector: "inventory.unowned", Severity: schemas.SeverityMedium, IntegrationID: "app2", Tenant: "C1", FirstSeen: ts, LastSeen: ts}
	if err := c.WriteAlerts(ctx, []schemas.Alert{a, b}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][3]string{"a-ctx": {"critical", "mail-team@example.com", "Archives executive mailboxes"}, "a-bare": {}} {
		var got [3]string
		if err := c.Conn().QueryRow(ctx, "SELECT criticality, owner, purpose FROM alerts FINAL WHERE id = ?", id).Scan(&got[0], &got[1], &got[2]); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("alert %s: criticality, owner, purpose = %q, want %q", id, got, want)
		}
	}
}

// migrated starts a throwaway clickhouse-server, applies the migrations and
// opens a client (closed with the test).
func migrated(t *testing.T) (context.Context, clickhouse.Config, *clickhouse.Client) {
	t.Helper()
	srv := chtest.New(t)
	ctx := context.Background()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{srv.TCPAddr}
	if _, err := clickhouse.Migrate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, cfg, c
}
