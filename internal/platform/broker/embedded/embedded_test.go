package embedded_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/brokertest"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A restart on the same data dir keeps the records and the committed offsets
// but no group member: the members saved at shutdown are not restored as if
// alive (a dead one would keep its partitions unread), and the consumers that
// are alive rejoin and resume from their commits.
func TestRestartKeepsOffsetsNotMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, port := t.TempDir(), freePort(t)
	b, err := embedded.StartOn(1, dir, port)
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Brokers, cfg.Partitions = b.Addrs(), 1
	w := broker.NewWriter(cfg, schemas.TopicEvents)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("one")}, kafka.Message{Key: []byte("k"), Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	group := cfg.Group("restart-test")
	r := broker.NewReader(cfg, schemas.TopicEvents, group)
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatal(err)
	}
	// The broker stops under a live member (its reader is not closed: no
	// LeaveGroup), as when the process holding both dies.
	b.Close()
	if _, err := os.Stat(filepath.Join(dir, "session_state.json")); err != nil {
		t.Fatalf("kfake saved no group sessions at shutdown (%v): the test no longer covers what dropSessions drops", err)
	}
	b, err = embedded.StartOn(1, dir, port)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer r.Close()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second}
	var dg *kafka.DescribeGroupsResponse
	for { // the client's pooled connection died with the old broker
		if dg, err = client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}}); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(dg.Groups) != 1 || len(dg.Groups[0].Members) != 0 {
		t.Fatalf("after restart the group has members %+v: want none until a consumer rejoins", dg.Groups)
	}
	if lag, err := broker.GroupLag(ctx, cfg, group, schemas.TopicEvents); err != nil || lag != 1 {
		t.Fatalf("after restart the group's lag is %d (%v): want 1, the commit kept", lag, err)
	}
	// A fresh consumer of the group resumes after the commit.
	r2 := broker.NewReader(cfg, schemas.TopicEvents, group)
	defer r2.Close()
	m2, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m2.Value) != "two" {
		t.Fatalf("resumed at %q, want the record after the commit", m2.Value)
	}
}

// The largest message a writer sends (BatchBytes, Kafka's message.max.bytes)
// fits in one fetch of every reader tokenwatch builds, the group reader and
// the partition reader alike, with the small messages around it intact.
func TestTheLargestMessageFitsOneFetch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, _ := brokertest.Start(t, 1)
	w := broker.NewWriter(cfg, schemas.TopicEvents)
	big := bytes.Repeat([]byte("x"), int(w.BatchBytes)-512) // the record's own framing takes the rest
	msgs := []kafka.Message{{Key: []byte("k"), Value: []byte("before")}, {Key: []byte("k"), Value: big}, {Key: []byte("k"), Value: []byte("after")}}
	for _, m := range msgs { // one at a time: each is its own batch, the big one alone
		if err := w.WriteMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if int64(2*w.BatchBytes) > broker.FetchMaxBytes {
		t.Fatalf("FetchMaxBytes %d is less than twice the writer's BatchBytes %d", broker.FetchMaxBytes, w.BatchBytes)
	}
	var got [][]byte
	if err := broker.ReadPartition(ctx, cfg, schemas.TopicEvents, 0, func(m kafka.Message) { got = append(got, m.Value) }); err != nil {
		t.Fatal(err)
	}
	r := broker.NewReader(cfg, schemas.TopicEvents, cfg.Group("largest-message"))
	defer r.Close()
	for range msgs {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Value)
	}
	for i, v := range got {
		if want := msgs[i%len(msgs)].Value; !bytes.Equal(v, want) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(v), len(want))
		}
	}
}

// Each kafka.compression writes record batches the broker stores and a
// reader takes back whole, in order.
func TestEveryCompressionRoundTrips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, _ := brokertest.Start(t, 1)
	for _, name := range broker.Compressions {
		cfg := base
		cfg.Compression = name
		topic := "compression." + name
		if err := broker.EnsureTopics(ctx, cfg, topic); err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		var msgs []kafka.Message
		for i := range 200 {
			v := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
			want = append(want, v)
			msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: v})
		}
		w := broker.NewWriter(cfg, topic)
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w.Close()
		var got [][]byte
		if err := broker.ReadPartition(ctx, cfg, topic, 0, func(m kafka.Message) { got = append(got, m.Value) }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: read %d records, wrote %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: record %d differs", name, i)
			}
		}
	}
}
