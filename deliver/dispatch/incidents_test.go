package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	_ "github.com/tokenwatch/tokenwatch/deliver/slack"
	_ "github.com/tokenwatch/tokenwatch/deliver/webhook"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// receiver records what a webhook receiver got, by kind.
type receiver struct {
	mu        sync.Mutex
	incidents []string // "id v<version>" in arrival order
	alerts    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch r.Header.Get("X-Tokenwatch-Kind") {
	case "incident":
		var inc schemas.Incident
		json.Unmarshal(body, &inc)
		if r.Header.Get("X-Tokenwatch-Incident-Version") != fmt.Sprint(inc.Version) || r.Header.Get("Idempotency-Key") != fmt.Sprintf("%s/v%d", inc.ID, inc.Version) {
			http.Error(w, "headers do not name the version", http.StatusBadRequest)
			return
		}
		rc.incidents = append(rc.incidents, fmt.Sprintf("%s v%d", inc.ID, inc.Version))
	default:
		var a schemas.Alert
		json.Unmarshal(body, &a)
		rc.alerts = append(rc.alerts, a.ID)
	}
}

func (rc *receiver) got() ([]string, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.incidents), slices.Clone(rc.alerts)
}

func sinkConfig(t *testing.T, name, kind, config string) dispatch.SinkConfig {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(config), &n); err != nil {
		t.Fatal(err)
	}
	return dispatch.SinkConfig{Name: name, Kind: kind, Config: *n.Content[0], Breaker: deliver.DefaultBreakerConfig()}
}

func produce(t *testing.T, ctx context.Context, kc broker.Config, topic string, vals ...any) {
	t.Helper()
	w := broker.NewWriter(kc, topic)
	defer w.Close()
	var msgs []kafka.Message
	for _, v := range vals {
		b, _ := json.Marshal(v)
		key := ""
		switch x := v.(type) {
		case schemas.Incident:
			key = x.ID
		case schemas.Alert:
			key = x.IntegrationID
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: b})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func waitFor(ctx context.Context, d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if f() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f()
}

func incident(id string, v int, status string) schemas.Incident {
	return schemas.Incident{ID: id, Version: v, Status: status, Tenant: "t", IntegrationID: "app", Severity: schemas.SeverityHigh,
		Detectors: []string{"geo.new_country"}, AlertIDs: []string{"a1"}, Title: "app compromised"}
}

// TestIncidentVersionsAreDeliveredInOrderOnceAcrossRestarts: a webhook sink
// gets every new version of an incident in order; a version it already
// delivered, or an older one, is not sent again, even after a restart; of
// several versions in one batch only the newest goes.
func TestIncidentVersionsAreDeliveredInOrderOnceAcrossRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc := startBroker(ctx, t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := dispatch.DefaultConfig()
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.Retry = deliver.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
	cfg.Sinks = []dispatch.SinkConfig{sinkConfig(t, "soc", "webhook", "url: "+srv.URL+"\nsecret: k\n")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(until func() bool) *dispatch.Role {
		t.Helper()
		reg := prometheus.NewRegistry()
		d := dispatch.New(cfg, kc, nil, nil, dispatch.NewMetrics(reg), broker.NewMetrics(reg), log)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(rctx) }()
		ok := waitFor(ctx, time.Minute, until)
		time.Sleep(300 * time.Millisecond) // room for a wrong extra delivery
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !ok {
			inc, al := rc.got()
			t.Fatalf("receiver has incidents %q, alerts %q", inc, al)
		}
		return d
	}
	count := func(n int) func() bool {
		return func() bool { inc, _ := rc.got(); return len(inc) >= n }
	}

	produce(t, ctx, kc, schemas.TopicIncidents, incident("i1", 1, schemas.IncidentOpen))
	produce(t, ctx, kc, schemas.TopicAlerts, schemas.Alert{ID: "a1", Detector: "geo.new_country", IntegrationID: "app", Tenant: "t", Severity: "high"})
	d := run(func() bool { _, al := rc.got(); return count(1)() && len(al) == 1 })
	if d.Stats.Incidents("soc") != 1 || d.Stats.Delivered("soc") != 1 {
		t.Fatalf("stats: %d incidents, %d alerts", d.Stats.Incidents("soc"), d.Stats.Delivered("soc"))
	}
	// Restart: v1 again (a replay), then v2.
	produce(t, ctx, kc, schemas.TopicIncidents, incident("i1", 1, schemas.IncidentOpen))
	produce(t, ctx, kc, schemas.TopicIncidents, incident("i1", 2, schemas.IncidentOpen))
	run(count(2))
	// Restart: v2 again and v3 in one batch, then an older v1.
	produce(t, ctx, kc, schemas.TopicIncidents, incident("i1", 2, schemas.IncidentOpen), incident("i1", 3, schemas.IncidentResolved), incident("i1", 1, schemas.IncidentOpen))
	run(count(3))

	inc, alerts := rc.got()
	if want := []string{"i1 v1", "i1 v2", "i1 v3"}; !slices.Equal(inc, want) {
		t.Fatalf("incident deliveries %q, want %q", inc, want)
	}
	// The webhook does not page: it keeps getting alerts by default.
	if !slices.Equal(alerts, []string{"a1"}) {
		t.Fatalf("alert deliveries %q", alerts)
	}
}

// TestSlackUpdatesTheSameMessageAfterARestart: the message ts Slack answered
// for an incident's first version survives a restart (it is the receipt in
// tokenwatch.delivered), so the next version is chat.update of it.
func TestSlackUpdatesTheSameMessageAfterARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc := startBroker(ctx, t)
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Channel, TS, Text string }
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/api/chat.postMessage":
			calls = append(calls, "post "+m.Channel)
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C9", "ts": fmt.Sprintf("17.%d", len(calls))})
		case "/api/chat.update":
			calls = append(calls, "update "+m.Channel+" "+m.TS)
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
		}
	}))
	defer srv.Close()
	cfg := dispatch.DefaultConfig()
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.Sinks = []dispatch.SinkConfig{sinkConfig(t, "soc-slack", "slack", "bot_token: xoxb-1\nchannel: '#soc'\napi_url: "+srv.URL+"/api\n")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(calls) }
	run := func(n int) {
		t.Helper()
		reg := prometheus.NewRegistry()
		d := dispatch.New(cfg, kc, nil, nil, dispatch.NewMetrics(reg), broker.NewMetrics(reg), log)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(rctx) }()
		ok := waitFor(ctx, time.Minute, func() bool { return len(got()) >= n })
		time.Sleep(300 * time.Millisecond)
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("slack calls %q", got())
		}
	}
	produce(t, ctx, kc, schemas.TopicIncidents, incident("i1", 1, schemas.IncidentOpen))
	// A paging sink: this alert is not posted.
	produce(t, ctx, kc, schemas.TopicAlerts, schemas.Alert{ID: "a1", Detector: "geo.new_country", IntegrationID: "app", Tenant: "t", Severity: "high", Title: "x"})
	run(1)
	produce(t, ctx, kc, schemas.TopicIncidents, incident("i1", 2, schemas.IncidentOpen))
	run(2)
	if want := []string{"post #soc", "update C9 17.1"}; !slices.Equal(got(), want) {
		t.Fatalf("slack calls %q, want %q", got(), want)
	}
}
