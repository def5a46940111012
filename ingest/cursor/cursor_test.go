package cursor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

func startBroker(t *testing.T) broker.Config {
	t.Helper()
	b, err := embedded.Start(4, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := broker.DefaultConfig()
	cfg.Brokers = b.Addrs()
	return cfg
}

func TestKafkaStoreNewInstanceLoadsLatestCursor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := startBroker(t)

	s1, err := cursor.OpenKafka(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...)}
	dc, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: cursor.Topic, ConfigNames: []string{"cleanup.policy"}}}})
	if err != nil || len(dc.Resources) != 1 || len(dc.Resources[0].ConfigEntries) != 1 || dc.Resources[0].ConfigEntries[0].ConfigValue != "compact" {
		t.Fatalf("topic %s is not compacted: %+v %v", cursor.Topic, dc, err)
	}
	if _, ok, err := s1.Load(ctx, "google_workspace", "acme"); ok || err != nil {
		t.Fatalf("empty topic: ok=%v err=%v", ok, err)
	}
	t0 := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	for i := range 5 {
		c := ingest.Cursor{Time: t0.Add(time.Duration(i) * time.Minute), Token: "tok" + string(rune('a'+i)), SeenAtTime: []string{"id" + string(rune('a'+i))}}
		if err := s1.Save(ctx, "google_workspace", "acme", c); err != nil {
			t.Fatal(err)
		}
	}
	other := ingest.Cursor{Time: t0, Token: "other"}
	if err := s1.Save(ctx, "google_workspace", "globex/eu", other); err != nil {
		t.Fatal(err)
	}
	// A large cursor (a busy overlap window) must fit.
	big := ingest.Cursor{Time: t0, SeenAtTime: []string{strings.Repeat("x", 2<<20)}}
	if err := s1.Save(ctx, "okta", "acme", big); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	s2, err := cursor.OpenKafka(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, ok, err := s2.Load(ctx, "google_workspace", "acme")
	if err != nil || !ok {
		t.Fatalf("load: ok=%v err=%v", ok, err)
	}
	want := ingest.Cursor{Time: t0.Add(4 * time.Minute), Token: "toke", SeenAtTime: []string{"ide"}}
	if !got.Time.Equal(want.Time) || got.Token != want.Token || len(got.SeenAtTime) != 1 || got.SeenAtTime[0] != "ide" {
		t.Fatalf("load = %+v, want %+v", got, want)
	}
	if got, ok, _ := s2.Load(ctx, "google_workspace", "globex/eu"); !ok || got.Token != "other" {
		t.Fatalf("tenant with a slash: %+v ok=%v", got, ok)
	}
	if got, ok, _ := s2.Load(ctx, "okta", "acme"); !ok || len(got.SeenAtTime) != 1 || len(got.SeenAtTime[0]) != 2<<20 {
		t.Fatalf("big cursor did not round-trip (ok=%v)", ok)
	}
	// Opening again (topic exists) works and still sees the latest.
	s3, err := cursor.OpenKafka(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if got, _, _ := s3.Load(ctx, "google_workspace", "acme"); got.Token != "toke" {
		t.Fatalf("third instance: %+v", got)
	}
}

func TestMemoryStoreDoesNotShareSlices(t *testing.T) {
	ctx := context.Background()
	s := cursor.NewMemory()
	c := ingest.Cursor{Token: "a", SeenAtTime: []string{"x"}}
	if err := s.Save(ctx, "slack", "t", c); err != nil {
		t.Fatal(err)
	}
	c.SeenAtTime[0] = "mutated"
	got, ok, _ := s.Load(ctx, "slack", "t")
	if !ok || got.SeenAtTime[0] != "x" || s.Saves() != 1 {
		t.Fatalf("got %+v ok=%v saves=%d", got, ok, s.Saves())
	}
}
