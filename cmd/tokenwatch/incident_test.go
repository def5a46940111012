package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The analyst's loop: the bundled theft runs through the roles into
// ClickHouse, `incident list` shows its incident, `incident suppress`
// records the decision in ClickHouse and on the decisions topic the detect
// role reads, and `incident list` then shows it in force.
func TestIncidentListAndDecisions(t *testing.T) {
	srv := chtest.New(t)
	b, err := embedded.Start(2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tokenwatch.yaml")
	yaml := fmt.Sprintf(`http: {listen: ""}
kafka: {brokers: [%q], partitions: 2}
clickhouse: {addr: [%q]}
geoip: {city: %q, asn: %q}
ingest:
  files: [{source: google_workspace, path: %q}]
`, b.Addrs()[0], srv.TCPAddr, city, asn, filepath.Join(scen, "token_activity.jsonl.gz"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// A condition, not a clock: the bounds only stop a hung run (under -race
	// on two busy cores the pipeline takes minutes).
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
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
	go func() { done <- p.Run(runCtx, []string{wiring.RoleIngest, wiring.RoleDetect, wiring.RoleDeliver}) }()
	var id string
	ok := wiring.WaitFor(ctx, 5*time.Minute, func() bool {
		code, out, _ := tokenwatch(t, "incident", "list", "--config", cfgPath)
		if code != 0 || strings.Count(out, "\n") < 2 {
			return false
		}
		id = strings.Fields(strings.Split(out, "\n")[1])[0]
		return true
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("no incident reached ClickHouse")
	}
	// The timeline: the incident's alerts, then an action recorded on it.
	ch, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	now := schemas.NewTime(time.Now())
	if err := ch.Record(ctx, []schemas.Response{{ID: "resp-1", IncidentID: id, Source: "google_workspace", IntegrationID: "crm", Target: "crm-client",
		Action: schemas.ActionRequestApproval, Mode: schemas.ModeEnforce, Status: schemas.ResponseDenied, Actor: "slack:U0ANA", At: now, RecordedAt: now}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tokenwatch(t, "incident", "timeline", id, "--config", cfgPath)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) < 3 || !strings.Contains(lines[1], "alert") ||
		strings.Join(strings.Fields(lines[len(lines)-1])[2:], " ") != "response request_approval denied slack:U0ANA google_workspace crm-client" {
		t.Fatalf("timeline: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = tokenwatch(t, "incident", "suppress", id, "--config", cfgPath, "--reason", "red-team exercise", "--for", "24h", "--actor", "ana")
	if code != 0 || !strings.Contains(out, "suppress until") {
		t.Fatalf("suppress: exit %d %q %q", code, out, errOut)
	}
	code, out, _ = tokenwatch(t, "incident", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "suppress") {
		t.Fatalf("list after suppress: exit %d\n%s", code, out)
	}
	// The decision is on the topic the detect role reads, keyed by incident.
	var got []schemas.Decision
	for part := 0; part < cfg.Kafka.Partitions; part++ {
		err := broker.ReadPartition(ctx, cfg.Kafka, schemas.TopicDecisions, part, func(m kafka.Message) {
			var d schemas.Decision
			json.Unmarshal(m.Value, &d)
			got = append(got, d)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].IncidentID != id || got[0].Action != schemas.DecisionSuppress || got[0].Until == nil ||
		got[0].Key != "123456789012-abc.apps.googleusercontent.com" || got[0].Actor != "ana" || got[0].Reason != "red-team exercise" {
		t.Fatalf("decisions on the topic: %+v", got)
	}
	// incident decisions prints what ClickHouse recorded, the same record as
	// the topic's, which replay --decisions reads back.
	code, out, errOut = tokenwatch(t, "incident", "decisions", "--config", cfgPath)
	var listed schemas.Decision
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &listed) != nil || listed.IncidentID != id || listed.Key != got[0].Key ||
		listed.Action != schemas.DecisionSuppress || listed.Until == nil || !listed.Until.Equal(got[0].Until.Truncate(time.Second)) || listed.Validate() != nil {
		t.Fatalf("incident decisions: exit %d %q %q, want the topic's %+v", code, out, errOut, got[0])
	}
	// Usage errors are one line and exit 2.
	for _, args := range [][]string{{"incident"}, {"incident", "frob", "--config", cfgPath}, {"incident", "ack", "--config", cfgPath}} {
		if code, _, errOut := tokenwatch(t, args...); code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
