package poll

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// failingAfter lets the first n Events calls through to the real publisher and
// refuses the rest, as a broker outage would.
type failingAfter struct {
	*publish.Publisher
	n     int32
	calls atomic.Int32
}

func (f *failingAfter) Events(ctx context.Context, evs []schemas.Event) error {
	if f.calls.Add(1) > f.n {
		return errors.New("broker unavailable")
	}
	return f.Publisher.Events(ctx, evs)
}

func TestPollerResumesAfterCrashWithoutGapOverRealBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedded.Start(4, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bcfg := broker.DefaultConfig()
	bcfg.Brokers = b.Addrs()

	f := newFakeGoogle(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	f.add(seq("k", 11, now.Add(-3*time.Minute))...)
	cfg := pollerConfig(t, f, "")

	// Process 1: page 1 reaches Kafka, then the broker "fails".
	store1, err := cursor.OpenKafka(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	pub1 := &failingAfter{Publisher: publish.New(bcfg), n: 1}
	p1 := newPoller(t, cfg, store1, pub1, nil)
	if err := p1.PollOnce(ctx); err == nil {
		t.Fatal("PollOnce succeeded through a failing publisher")
	}
	pub1.Close()
	store1.Close()

	// Process 2: new cursor store (rebuilt from the topic), new publisher.
	store2, err := cursor.OpenKafka(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	pub2 := publish.New(bcfg)
	p2 := newPoller(t, cfg, store2, pub2, nil)
	pollToEnd(t, p2)
	if err := p2.PollOnce(ctx); err != nil { // overlap re-read
		t.Fatal(err)
	}
	store2.Close()

	// Process 3: restarted after the pass; its overlap re-read must find
	// everything in the dedup set it loaded from Kafka.
	store3, err := cursor.OpenKafka(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store3.Close()
	p3 := newPoller(t, cfg, store3, pub2, nil)
	if err := p3.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	pub2.Close()

	got := readTopic(t, ctx, bcfg, schemas.TopicEvents)
	assertExactlyOnce(t, got, f.servedIDs())
	if len(f.servedIDs()) != 11 {
		t.Fatalf("server served %d of 11 records", len(f.servedIDs()))
	}
}

// readTopic returns the event ids on every partition of topic, start to end.
func readTopic(t *testing.T, ctx context.Context, cfg broker.Config, topic string) []string {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	var ids []string
	for p := range cfg.Partitions {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := offs.Topics[topic][0].LastOffset
		for off := int64(0); off < end; {
			resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: off, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond})
			if err != nil || resp.Error != nil {
				t.Fatalf("fetch %s/%d@%d: %v %v", topic, p, off, err, resp.Error)
			}
			for {
				r, err := resp.Records.ReadRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.Offset < off {
					continue
				}
				off = r.Offset + 1
				v, _ := kafka.ReadAll(r.Value)
				m := kafka.Message{Value: v}
				for _, h := range r.Headers {
					m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
				}
				var ev schemas.Event
				if err := broker.DecodeEvent(m, &ev); err != nil {
					t.Fatalf("%s/%d@%d: %v", topic, p, r.Offset, err)
				}
				ids = append(ids, ev.EventID)
			}
		}
	}
	return ids
}
