package respond_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/googleworkspace"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestRoleRevokesFromTheIncidentsTopicOnce runs the stage on an in-process
// broker: an enforced revoke reaches the fake Directory API once per user,
// every step lands on tokenwatch.responses, and a restarted stage (same
// store, same group) sends nothing again.
func TestRoleRevokesFromTheIncidentsTopicOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedded.Start(2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kc := broker.DefaultConfig()
	kc.Brokers, kc.Partitions = b.Addrs(), 2
	if err := broker.EnsureTopics(ctx, kc, append(broker.AllTopics, schemas.TopicResponses)...); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	gws, err := googleworkspace.New(googleworkspace.Config{AccessToken: secret.New("tok"), BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	revokers := map[string]respond.Revoker{gws.Source(): gws}
	cfg := policy(revokeHigh)
	inc := incident("inc-1", "google_workspace", client, t0, "ana@acme.example", "bo@acme.example")
	v, _ := json.Marshal(inc)
	w := broker.NewWriter(kc, schemas.TopicIncidents)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(inc.ID), Value: v}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	store := &respond.MemoryStore{}
	reg := prometheus.NewRegistry()
	metrics := respond.NewMetrics(reg)
	sig := &signals{}
	runRole := func(until func(*respond.Role) bool) {
		rctx, stop := context.WithCancel(ctx)
		role := respond.NewRole(cfg, revokers, nil, store, []respond.Recorder{store}, kc, metrics, slog.New(slog.DiscardHandler))
		role.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- role.Run(rctx) }()
		deadline := time.Now().Add(30 * time.Second)
		for !until(role) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	executed := func() int {
		n := 0
		for _, r := range store.All() {
			if r.Status == schemas.ResponseExecuted {
				n++
			}
		}
		return n
	}
	runRole(func(*respond.Role) bool { return executed() == 2 })
	if executed() != 2 || hits.Load() != 2 {
		t.Fatalf("executed %d, vendor hit %d times; records %+v", executed(), hits.Load(), store.All())
	}
	// The signaler (the SSF transmitter) heard of the incident before the
	// records of the actions it led to.
	if got := sig.seen(); len(got) < 3 || got[0] != "incident inc-1" || got[len(got)-1] != "record executed" {
		t.Errorf("signaled %v, want the incident first, then its records", got)
	}
	// Restart: the group's offsets are committed and the store knows the
	// ids; replaying the same incident again sends nothing either.
	w = broker.NewWriter(kc, schemas.TopicIncidents)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(inc.ID), Value: v}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	runRole(func(r *respond.Role) bool { return r.Incidents.Load() >= 1 })
	if hits.Load() != 2 {
		t.Errorf("the restarted stage revoked again: %d requests", hits.Load())
	}
	if got := counter(t, reg, "executed"); got != 2 {
		t.Errorf("tokenwatch_respond_actions_total{status=executed} = %v, want 2", got)
	}
	// The trail is on the topic too: planned and executed for each user.
	n := 0
	for p := 0; p < 2; p++ {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: kc.Brokers, Topic: schemas.TopicResponses, Partition: p, MaxWait: 100 * time.Millisecond})
		for {
			mctx, c := context.WithTimeout(ctx, 500*time.Millisecond)
			_, err := rd.ReadMessage(mctx)
			c()
			if err != nil {
				break
			}
			n++
		}
		rd.Close()
	}
	if n != 4 {
		t.Errorf("%d records on %s, want 4 (planned + executed for two users)", n, schemas.TopicResponses)
	}
}

// signals is a respond.Signaler that notes what it is told, in order.
type signals struct {
	mu  sync.Mutex
	log []string
}

func (s *signals) Incident(inc schemas.Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, "incident "+inc.ID)
}

func (s *signals) Record(_ context.Context, rs []schemas.Response) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		s.log = append(s.log, "record "+r.Status)
	}
	return nil
}

func (s *signals) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// counter is the actions counter of google_workspace revokes with status,
// read back from the registry.
func counter(t *testing.T, reg *prometheus.Registry, status string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if f.GetName() == "tokenwatch_respond_actions_total" && labels["status"] == status && labels["action"] == "revoke" {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
