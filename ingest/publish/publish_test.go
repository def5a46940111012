package publish_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/brokertest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// A produce request refused without retry in the middle of a publish leaves
// each partition holding a prefix of what it was sent, never a gap: the
// caller publishes the set again, and a gap's events would then land after
// later events of their integration (order-sensitive detectors fire on
// that). 1,500 events of 2 KiB for one integration are about three produce
// batches' worth; the second request is refused.
func TestRefusedProduceLeavesAPrefix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, b := brokertest.Start(t, 1)
	p := publish.New(cfg)
	defer p.Close()
	evs := make([]schemas.Event, 1500)
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = schemas.Event{EventID: fmt.Sprintf("e%04d", i), Tenant: "acme", Source: "github",
			Time: schemas.NewTime(base.Add(time.Duration(i) * time.Second)), TargetApp: strings.Repeat("x", 2048),
			Integration: schemas.Integration{ID: "app-1"}}
	}
	b.RejectProduce(schemas.TopicEvents, 1, 87) // INVALID_RECORD: not retriable
	if err := p.Events(ctx, evs); err == nil {
		t.Fatal("publish succeeded through a refused produce request")
	}
	var got []string
	if err := broker.ReadPartition(ctx, cfg, schemas.TopicEvents, 0, func(m kafka.Message) {
		var ev schemas.Event
		if err := broker.DecodeEvent(m, &ev); err != nil {
			t.Errorf("%s: %v", broker.Where(m), err)
		}
		got = append(got, ev.EventID)
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) == len(evs) {
		t.Fatalf("partition holds %d of %d events: want the refusal to stop the publish part way", len(got), len(evs))
	}
	for i, id := range got {
		if want := fmt.Sprintf("e%04d", i); id != want {
			t.Fatalf("record %d is %s, want %s: the partition has a gap (%d records landed)", i, id, want, len(got))
		}
	}
	t.Logf("%d of %d events landed, in order, before the refusal stopped the publish", len(got), len(evs))
}
