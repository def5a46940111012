package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/brokertest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// `tokenwatch topic` prints the event topic as JSON lines whatever each
// record's encoding (MessagePack, JSON, JSON without a header), in offset
// order; --last and --meta narrow and annotate; a binary value of another
// topic comes out whole as base64.
func TestTopicPrintsEventsOfEitherEncodingAsJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc, b := brokertest.Start(t, 1)
	if err := broker.EnsureTopics(ctx, kc, schemas.TopicEvents, schemas.TopicState); err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for i, enc := range []string{schemas.EncodingMsgpack, schemas.EncodingJSON, schemas.EncodingMsgpack} {
		ev := schemas.Event{EventID: "e" + string(rune('1'+i)), Source: "github", Tenant: "acme", Time: schemas.UnixMilli(1_790_000_000_000 + int64(i)),
			Integration: schemas.Integration{ID: "app"}, Action: schemas.Action{Name: "git.clone", Category: "access"}, Raw: json.RawMessage(`{"k":1}`)}
		m, err := broker.EventMessage(enc, []byte("acme/app"), &ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, kafka.Message{Key: []byte("acme/app"), Value: []byte(`{"event_id":"e4","tenant":"acme","time":"2026-09-21T10:00:00.000Z"}`)})
	w := broker.NewWriter(kc, schemas.TopicEvents)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	state := broker.NewWriter(kc, schemas.TopicState)
	if err := state.WriteMessages(ctx, kafka.Message{Key: []byte("acme/app"), Value: []byte{0x00, 0xff, 0x10}}); err != nil {
		t.Fatal(err)
	}
	state.Close()
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("kafka: {brokers: ["+b.Addrs()[0]+"], partitions: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ids := func(out string) (ids []string) {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev schemas.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("not an event line: %q: %v", line, err)
			}
			ids = append(ids, ev.EventID)
		}
		return ids
	}
	code, out, errOut := tokenwatch(t, "topic", "--config", cfg, schemas.TopicEvents)
	if got := strings.Join(ids(out), ","); code != 0 || got != "e1,e2,e3,e4" {
		t.Fatalf("exit %d, events %s: %s", code, got, errOut)
	}
	if !strings.Contains(out, `"raw":{"k":1}`) {
		t.Errorf("raw record not printed as JSON: %s", out)
	}
	code, out, errOut = tokenwatch(t, "topic", "--config", cfg, "--last", "2", "--meta", schemas.TopicEvents)
	type record struct {
		Offset  int64             `json:"offset"`
		Key     string            `json:"key"`
		Headers map[string]string `json:"headers"`
		Value   schemas.Event     `json:"value"`
	}
	var recs []record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("exit %d: %q: %v (%s)", code, line, err, errOut)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 2 || recs[0].Offset != 2 || recs[0].Value.EventID != "e3" || recs[0].Headers[broker.HeaderEncoding] != "msgpack" ||
		recs[1].Value.EventID != "e4" || recs[1].Key != "acme/app" {
		t.Errorf("--last 2 --meta: %+v", recs)
	}
	code, out, errOut = tokenwatch(t, "topic", "--config", cfg, schemas.TopicState)
	if strings.TrimSpace(out) != `{"base64":"AP8Q"}` || code != 0 {
		t.Errorf("binary value: exit %d %q %s", code, out, errOut)
	}
	if code, _, errOut = tokenwatch(t, "topic", "--config", cfg, "--partition", "3", schemas.TopicEvents); code != 2 || !strings.Contains(errOut, "1 partitions") {
		t.Errorf("partition out of range: exit %d %s", code, errOut)
	}

	// --follow prints what arrives after it started, until interrupted.
	fctx, stop := context.WithCancel(ctx)
	var fo, fe syncBuffer
	done := make(chan int)
	go func() {
		done <- run(fctx, []string{"topic", "--config", cfg, "--last", "1", "--follow", schemas.TopicEvents}, &fo, &fe)
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(fo.String(), `"e4"`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	late := schemas.Event{EventID: "e5", Tenant: "acme", Time: schemas.UnixMilli(1_790_000_000_009), Integration: schemas.Integration{ID: "app"}}
	m, _ := broker.EventMessage(schemas.EncodingMsgpack, []byte("acme/app"), &late)
	w = broker.NewWriter(kc, schemas.TopicEvents)
	if err := w.WriteMessages(ctx, m); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(fo.String(), `"e5"`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if code := <-done; code != 0 || strings.Join(ids(fo.String()), ",") != "e4,e5" {
		t.Errorf("--follow: exit %d, printed %q %s", code, fo.String(), fe.String())
	}
}

// syncBuffer is a bytes.Buffer the test reads while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
