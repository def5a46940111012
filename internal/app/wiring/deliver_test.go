package wiring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/deliver/webhook"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// flakyReceiver answers 500 while broken, and records alert ids (and,
// apart, incident ids) otherwise.
type flakyReceiver struct {
	broken    atomic.Bool
	calls     atomic.Int32
	mu        sync.Mutex
	ids       map[string]int
	incidents map[string]int
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.broken.Load() {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var a schemas.Alert
	body, _ := io.ReadAll(r.Body)
	json.Unmarshal(body, &a)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get(webhook.HeaderKind) == "incident" {
		if f.incidents == nil {
			f.incidents = map[string]int{}
		}
		f.incidents[a.ID]++
		return
	}
	f.ids[a.ID]++
}

func (f *flakyReceiver) distinct() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.ids) }

func webhookSink(t *testing.T, name, url string) dispatch.SinkConfig {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("url: "+url+"\nsecret: k\ntimeout: 2s\n"), &n); err != nil {
		t.Fatal(err)
	}
	return dispatch.SinkConfig{Name: name, Kind: "webhook", Config: *n.Content[0],
		Breaker: deliver.BreakerConfig{Failures: 5, CoolDown: 50 * time.Millisecond}}
}

func TestBrokenSinkDeadLettersWithoutDelayingOthersAndRedriveDelivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	good, bad := &flakyReceiver{ids: map[string]int{}}, &flakyReceiver{ids: map[string]int{}}
	bad.broken.Store(true)
	gs, bs := httptest.NewServer(good), httptest.NewServer(bad)
	defer gs.Close()
	defer bs.Close()

	cfg := config.Default()
	cfg.HTTP.Listen = ""
	cfg.Deliver.Retry = deliver.RetryPolicy{MaxAttempts: 3, InitialInterval: 20 * time.Millisecond, MaxInterval: 50 * time.Millisecond}
	cfg.Deliver.Sinks = []dispatch.SinkConfig{webhookSink(t, "good", gs.URL), webhookSink(t, "bad", bs.URL)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	const n = 5
	w := broker.NewWriter(p.Cfg.Kafka, schemas.TopicAlerts)
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		a := schemas.Alert{ID: fmt.Sprintf("alert-%d", i), Detector: "geo.new_country", Severity: schemas.SeverityHigh, IntegrationID: fmt.Sprintf("app%d", i), Tenant: "t"}
		v, _ := json.Marshal(a)
		msgs = append(msgs, kafka.Message{Key: []byte(a.IntegrationID), Value: v})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDeliver}) }()
	ok := wiring.WaitFor(ctx, time.Minute, func() bool {
		return p.Stats.Delivered("good") == n && p.Stats.DeadAlerts("bad") == n
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("good delivered %d, bad dead-lettered %d; want %d each", p.Stats.Delivered("good"), p.Stats.DeadAlerts("bad"), n)
	}
	if good.distinct() != n {
		t.Errorf("good receiver got %d distinct alerts", good.distinct())
	}
	// Each alert was tried at most max_attempts times; once 5 failed in a row
	// the circuit opened and spared the receiver some of them.
	if c := int(bad.calls.Load()); c < 5 || c > n*3 {
		t.Errorf("bad receiver saw %d calls, want between 5 and %d", c, n*3)
	}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `tokenwatch_sink_dead_letters_total{sink="bad"} 5`) {
		t.Errorf("metrics do not count the dead letters")
	}

	// The receiver is mended: redrive sends each dead-lettered alert once.
	bad.broken.Store(false)
	sinks, err := p.Sinks()
	if err != nil {
		t.Fatal(err)
	}
	var badSink deliver.Sink
	for _, s := range sinks {
		if s.Name() == "bad" {
			badSink = s
		}
	}
	res, err := p.Redrive(ctx, badSink, 2*time.Second)
	if err != nil || res.Sent != n || bad.distinct() != n {
		t.Fatalf("redrive: %+v err %v, receiver has %d alerts", res, err, bad.distinct())
	}
	// A second redrive finds nothing left.
	res, err = p.Redrive(ctx, badSink, time.Second)
	if err != nil || res.Sent != 0 {
		t.Fatalf("second redrive: %+v err %v", res, err)
	}
}

// TestSinkNeverRedeliversAcrossRestartOrPartialBatch: a receiver that fails
// once in the middle of a batch, then a restart that sees the same alert ids
// again (as a detect replay after a crash produces them): every alert reaches
// the receiver exactly once.
func TestSinkNeverRedeliversAcrossRestartOrPartialBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var posts atomic.Int32
	rc := &flakyReceiver{ids: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 3 { // the third POST of the first batch fails once
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, cfg := startBroker(t)
	cfg.Deliver.Retry = deliver.RetryPolicy{MaxAttempts: 5, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond}
	cfg.Deliver.Sinks = []dispatch.SinkConfig{webhookSink(t, "soc", srv.URL)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	produce := func(ids ...int) {
		w := broker.NewWriter(cfg.Kafka, schemas.TopicAlerts)
		defer w.Close()
		var msgs []kafka.Message
		for _, i := range ids {
			a := schemas.Alert{ID: fmt.Sprintf("alert-%d", i), Detector: "geo.new_country", Severity: schemas.SeverityHigh, IntegrationID: "app", Tenant: "t"}
			v, _ := json.Marshal(a)
			msgs = append(msgs, kafka.Message{Key: []byte("t/app"), Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	run := func(until func() bool) {
		p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx, []string{wiring.RoleDeliver}) }()
		ok := wiring.WaitFor(ctx, time.Minute, until)
		time.Sleep(300 * time.Millisecond) // room for a wrong second delivery
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("receiver has %d alerts", rc.distinct())
		}
	}
	produce(0, 1, 2, 3, 4)
	run(func() bool { return rc.distinct() == 5 })
	// Restart; the same five ids arrive again, plus one new alert.
	produce(0, 1, 2, 3, 4, 5)
	run(func() bool { return rc.distinct() == 6 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, n := range rc.ids {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}
