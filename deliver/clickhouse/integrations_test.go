package clickhouse_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
)

func TestWriteIntegrationsKeepsTheLatestRowPerIntegration(t *testing.T) {
	ctx, _, c := migrated(t)
	t0 := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	first := clickhouse.IntegrationRow{Tenant: "acme", IntegrationID: "crm-sync", Name: "CRM Sync", Catalogued: true,
		FirstSeen: t0, LastSeen: t0.Add(time.Hour), Sources: []string{"google_workspace"}, Scopes: []string{"api"}}
	later := first
	later.Owner, later.LastSeen = "revops@acme.test", t0.Add(3*time.Hour)
	later.Sources = []string{"google_workspace", "salesforce"}
	stray := clickhouse.IntegrationRow{Tenant: "acme", IntegrationID: "pdf-helper", FirstSeen: t0, LastSeen: t0}
	if err := c.WriteIntegrations(ctx, []clickhouse.IntegrationRow{first, stray}); err != nil {
		t.Fatal(err)
	}
	// A second batch with the newer row, and a stale copy arriving late.
	if err := c.WriteIntegrations(ctx, []clickhouse.IntegrationRow{later, first}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteIntegrations(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	got, err := c.ReadIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []clickhouse.IntegrationRow{later, stray}
	want[1].Sources, want[1].Scopes = []string{}, []string{}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("integrations FINAL:\n got %+v\nwant %+v", got, want)
	}
	var n uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM integrations FINAL WHERE catalogued = 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("uncatalogued rows = %d, want 1", n)
	}
}
