package kafkasource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/ingest/kafkasource"
	_ "github.com/tokenwatch/tokenwatch/ingest/microsoft"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/schemas"
)

type recorder struct {
	mu     sync.Mutex
	events []schemas.Event
	dead   []schemas.DeadLetter
}

func (r *recorder) Events(_ context.Context, evs []schemas.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) DeadLetters(_ context.Context, dls []schemas.DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = append(r.dead, dls...)
	return nil
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events), len(r.dead)
}

// TestGraphActivityLogsFromAnEventHub plays Event Hubs with a second Kafka
// broker: diagnostic-settings envelopes {"records":[…]} of Graph activity logs.
func TestGraphActivityLogsFromAnEventHub(t *testing.T) {
	hub, err := embedded.Start(2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	bcfg := broker.DefaultConfig()
	bcfg.Brokers = hub.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := broker.EnsureTopics(ctx, bcfg, "graph-activity"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("../microsoft/testdata/records.jsonl")
	var graph []json.RawMessage
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if bytes.Contains(line, []byte(`"RequestUri"`)) {
			graph = append(graph, line)
		}
	}
	if len(graph) == 0 {
		t.Fatal("no Graph activity log records in the microsoft testdata")
	}
	env, _ := json.Marshal(map[string]any{"records": graph})
	w := broker.NewWriter(bcfg, "graph-activity")
	if err := w.WriteMessages(ctx, kafka.Message{Value: env}, kafka.Message{Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	rec := &recorder{}
	cfg := kafkasource.Config{Source: "microsoft", Tenant: "contoso", Brokers: hub.Addrs(), Topic: "graph-activity", Group: "tokenwatch"}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- kafkasource.Run(runCtx, cfg, rec, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if e, d := rec.counts(); e >= len(graph) && d >= 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e, d := rec.counts()
	if e != len(graph) || d != 1 {
		t.Fatalf("events %d (want %d), dead letters %d (want 1: the malformed message)", e, len(graph), d)
	}
	for _, ev := range rec.events {
		if ev.Source != "microsoft" || ev.Integration.ID == "" || ev.Network.IP == "" {
			t.Errorf("event %+v", ev)
		}
	}
	if !strings.Contains(rec.dead[0].Reason, "malformed") {
		t.Errorf("dead letter reason %q", rec.dead[0].Reason)
	}
}

func TestConfigNamesWhatIsMissing(t *testing.T) {
	err := kafkasource.Config{Source: "myspace", Username: "$ConnectionString"}.Validate()
	for _, want := range []string{"myspace", "brokers, topic and group", "password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v lacks %q", err, want)
		}
	}
}
