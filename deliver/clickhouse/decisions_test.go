package clickhouse_test

import (
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestDecisionsJoinTheirIncident(t *testing.T) {
	ctx, _, c := migrated(t)
	at := schemas.NewTime(time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC))
	inc := func(id string, v int, risk float64) schemas.Incident {
		return schemas.Incident{ID: id, Version: v, Status: schemas.IncidentOpen, Tenant: "acme", IntegrationID: "crm", IntegrationIDs: []string{"crm"},
			Key: "crm", Severity: schemas.SeverityHigh, RiskScore: risk, FirstSeen: at, LastSeen: at, UpdatedAt: at, Title: id}
	}
	if err := c.WriteIncidents(ctx, []schemas.Incident{inc("a", 1, 120), inc("a", 2, 180), inc("b", 1, 110)}); err != nil {
		t.Fatal(err)
	}
	until := schemas.NewTime(at.Add(7 * 24 * time.Hour))
	for _, d := range []schemas.Decision{
		{IncidentID: "a", Tenant: "acme", Key: "crm", IntegrationID: "crm", Action: schemas.DecisionAcknowledge, Actor: "ana", DecidedAt: schemas.NewTime(time.Now().Add(-time.Minute))},
		{IncidentID: "a", Tenant: "acme", Key: "crm", IntegrationID: "crm", Action: schemas.DecisionSuppress, Reason: "vendor migration", Actor: "ana", DecidedAt: schemas.NewTime(time.Now()), Until: &until},
	} {
		if err := c.WriteDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	a, err := c.Incident(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 2 || a.RiskScore != 180 || a.Decision != schemas.DecisionSuppress || a.Key != "crm" {
		t.Fatalf("%+v", a)
	}
	all, err := c.Incidents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "a" || all[1].Decision != "" {
		t.Fatalf("%+v", all)
	}
	if _, err := c.Incident(ctx, "nope"); err == nil {
		t.Fatal("an unknown incident was found")
	}
}
