package clickhouse_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestEveryEventColumnLandsInItsPlace writes an event whose every string
// field holds the name of its column, and distinct numbers and arrays, and
// reads each column of the events table back by name: a writer that fills
// a column from the wrong field fails here, and so does a String column the
// writer does not fill.
func TestEveryEventColumnLandsInItsPlace(t *testing.T) {
	ctx, _, c := migrated(t)
	ts := schemas.NewTime(time.Date(2026, 10, 27, 4, 20, 0, 123e6, time.UTC))
	issued := schemas.NewTime(ts.Add(-time.Hour))
	ev := schemas.Event{EventID: "event_id", Source: "source", Tenant: "tenant", Time: ts,
		Integration:     schemas.Integration{ID: "integration_id", SourceAppID: "source_app_id", Name: "integration_name"},
		Credential:      schemas.Credential{Type: "credential_type", ID: "credential_id", Name: "credential_name", Issuer: "credential_issuer"},
		Principal:       schemas.Principal{ID: "principal_id", Type: "principal_type"},
		Action:          schemas.Action{Name: "action_name", Category: "action_category"},
		TargetApp:       "target_app",
		Resource:        schemas.Resource{Type: "resource_type", ID: "resource_id"},
		Scopes:          []string{"scopes"},
		RequestedScopes: []string{"requested_scopes", "2"},
		TokenIssuedAt:   &issued,
		Impersonation:   true,
		Delegation:      "delegation",
		DirectoryRoles:  []string{"directory_roles", "2", "3"},
		HTTP:            &schemas.HTTP{Method: "http_method", Route: "http_route", StatusCode: 201},
		Network: schemas.Network{IP: "ip", UserAgent: "user_agent", IPChain: []string{"ip_chain", "2", "3", "4"},
			ASN: 64501, ASOrg: "network_as_org"},
		Outcome: "outcome", Bytes: 1 << 40, Records: 7,
		Geo: &schemas.Geo{Country: "country", City: "city", Lat: 52.5, Lon: -4.25, ASN: 8075, ASOrg: "as_org"},
		Raw: json.RawMessage(`{"raw":1}`)}
	if err := c.WriteEvents(ctx, []schemas.Event{ev}); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Conn().Query(ctx, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND type = 'String'")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if len(names) < 28 {
		t.Fatalf("events has %d String columns: %v", len(names), names)
	}
	for _, n := range names {
		want := n
		if n == "raw" {
			want = `{"raw":1}`
		}
		var got string
		if err := c.Conn().QueryRow(ctx, "SELECT "+n+" FROM events").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("column %s = %q, want %q", n, got, want)
		}
	}
	type other struct {
		Time                       time.Time
		TimeMS, IssuedMS, By, Recs uint64
		Imp, Proxy                 uint8
		Status                     uint16
		NetASN, ASN                uint32
		Lat, Lon                   float64
		Scopes, Req, Roles, Chain  []string
	}
	var got other
	if err := c.Conn().QueryRow(ctx, `SELECT time, time_ms, token_issued_at_ms, bytes, records, impersonation, proxy,
		http_status_code, network_asn, asn, lat, lon, scopes, requested_scopes, directory_roles, ip_chain FROM events`).Scan(
		&got.Time, &got.TimeMS, &got.IssuedMS, &got.By, &got.Recs, &got.Imp, &got.Proxy, &got.Status, &got.NetASN, &got.ASN,
		&got.Lat, &got.Lon, &got.Scopes, &got.Req, &got.Roles, &got.Chain); err != nil {
		t.Fatal(err)
	}
	got.Time = got.Time.UTC()
	want := other{Time: ts.Truncate(time.Second), TimeMS: uint64(ts.UnixMilli()), IssuedMS: uint64(issued.UnixMilli()), By: 1 << 40,
		Recs: 7, Imp: 1, Status: 201, NetASN: 64501, ASN: 8075, Lat: 52.5, Lon: -4.25, Scopes: ev.Scopes,
		Req: ev.RequestedScopes, Roles: ev.DirectoryRoles, Chain: ev.Network.IPChain}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("non-string columns:\n got %+v\nwant %+v", got, want)
	}
}

// A batch larger than the driver chunk goes in several blocks of one INSERT:
// every event lands once (a repeat across a chunk boundary left out), the
// server writes one part per partition, and the pooled buffers serve a
// smaller batch next without leftovers.
func TestBatchOverSeveralChunksLandsOnce(t *testing.T) {
	ctx, _, c := migrated(t)
	const chunk = clickhouse.InsertChunk
	// The big batch crosses into November whatever the chunk size.
	base, step := time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC), 8*24*time.Hour/(2*chunk)
	ev := func(i int) schemas.Event {
		return schemas.Event{EventID: fmt.Sprintf("e%05d", i), Source: "okta", Tenant: "T1",
			Time: schemas.NewTime(base.Add(time.Duration(i) * step)), Integration: schemas.Integration{ID: "app1"}, Bytes: int64(i)}
	}
	// No merges: each part counted below is one an INSERT wrote.
	if err := c.Conn().Exec(ctx, "SYSTEM STOP MERGES events"); err != nil {
		t.Fatal(err)
	}
	var big []schemas.Event
	for i := 0; i < 2*chunk+1; i++ {
		big = append(big, ev(i))
		if i == chunk { // the first event of the second chunk repeats the last of the first
			big = append(big, ev(chunk-1))
		}
	}
	skipped, err := c.WriteNewEvents(ctx, big)
	if err != nil || skipped != 1 {
		t.Fatalf("%d events over three chunks: %d left out (%v), want 1", len(big), skipped, err)
	}
	small := []schemas.Event{ev(2*chunk + 10), ev(2*chunk + 11)} // November too
	if err := c.WriteEvents(ctx, small); err != nil {
		t.Fatal(err)
	}
	var n, distinct, sum uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count(), uniqExact(event_id), sum(bytes) FROM events").Scan(&n, &distinct, &sum); err != nil {
		t.Fatal(err)
	}
	want := uint64(2*chunk+1) + 2
	wantSum := uint64((2*chunk)*(2*chunk+1)/2) + (2*chunk + 10) + (2*chunk + 11)
	if n != want || distinct != want || sum != wantSum {
		t.Fatalf("count %d, distinct ids %d, bytes %d: want %d, %d, %d", n, distinct, sum, want, want, wantSum)
	}
	var parts, partitions uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count(), uniqExact(partition) FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active").Scan(&parts, &partitions); err != nil {
		t.Fatal(err)
	}
	// Two INSERTs: the big one spans two months (two parts, one per
	// partition, where one per chunk would be four), the small one one.
	if parts != 3 || partitions != 2 {
		t.Fatalf("%d parts over %d partitions, want 3 over 2: the big INSERT was written in pieces", parts, partitions)
	}
}
