package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// gathered reads one sample of a metric (by name and, for vectors, label
// values) from reg; ok is false while it has none.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (v float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, has := labels[lp.GetName()]; has && want != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

// With ClickHouse down the events writer cannot write: its consumer lag
// shows the whole backlog (not the 0 it read when lag was set only after a
// successful write), and every failed attempt and retry is counted.
func TestEventsWriterLagAndFailuresWhileClickHouseIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc := startBroker(ctx, t)
	const n = 300
	var evs []any
	t0 := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		evs = append(evs, schemas.Event{EventID: fmt.Sprintf("e%d", i), Source: "github", Tenant: "t",
			Integration: schemas.Integration{ID: fmt.Sprintf("app-%d", i%7)}, Time: schemas.NewTime(t0.Add(time.Duration(i) * time.Second))})
	}
	produce(t, ctx, kc, schemas.TopicEvents, evs...)

	chCfg := clickhouse.DefaultConfig()
	chCfg.Addr, chCfg.DialTimeout = []string{"127.0.0.1:1"}, 200*time.Millisecond // nothing listens: ClickHouse is down
	ch, err := clickhouse.Open(ctx, chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	cfg := dispatch.DefaultConfig()
	cfg.FlushInterval = 10 * time.Millisecond
	reg := prometheus.NewRegistry()
	d := dispatch.New(cfg, kc, ch, nil, dispatch.NewMetrics(reg), broker.NewMetrics(reg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.RunEventWriter(runCtx) }()
	defer func() { stop(); <-done }()

	group := kc.Group("sink-clickhouse-events")
	deadline := time.Now().Add(90 * time.Second)
	for {
		lag, _ := gathered(t, reg, "tokenwatch_kafka_consumer_lag", map[string]string{"group": group, "topic": schemas.TopicEvents})
		failures, _ := gathered(t, reg, "tokenwatch_clickhouse_events_write_failures_total", nil)
		retries, _ := gathered(t, reg, "tokenwatch_clickhouse_events_write_retries_total", nil)
		written, _ := gathered(t, reg, "tokenwatch_clickhouse_events_written_total", nil)
		if written != 0 {
			t.Fatalf("%v events written to a ClickHouse that is down", written)
		}
		if lag == n && failures >= 2 && retries >= 1 {
			t.Logf("lag %v, failures %v, retries %v", lag, failures, retries)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag %v (want %d), failures %v (want >= 2), retries %v (want >= 1)", lag, n, failures, retries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
