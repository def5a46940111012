package wiring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics, /healthz (the process is up) and /readyz (Kafka and,
// when configured, ClickHouse answer), the push receiver's paths, and
// respond.slack.path where the respond stage runs.
func (p *Pipeline) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{Registry: p.Registry}))
	p.Ingest.Register(mux)
	if p.SlackApprovals != nil && p.decides.Load() {
		// Only where the respond stage runs: it decides the clicks.
		mux.Handle(p.SlackApprovals.Path(), p.SlackApprovals)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := p.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Ready checks the dependencies: a Kafka broker accepts a connection and
// ClickHouse (when configured) answers a ping.
func (p *Pipeline) Ready(ctx context.Context) error {
	var errs []error
	ok := false
	var d net.Dialer
	for _, b := range p.Cfg.Kafka.Brokers {
		c, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			c.Close()
			ok = true
			break
		}
	}
	if !ok {
		errs = append(errs, fmt.Errorf("kafka: no broker of %v reachable", p.Cfg.Kafka.Brokers))
	}
	if p.CH != nil {
		if err := p.CH.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clickhouse: %w", err))
		}
	}
	// A stalled poller is not ready, so the orchestrator and the operator see it.
	errs = append(errs, p.Ingest.Stalled()...)
	return errors.Join(errs...)
}

// Serve runs the HTTP endpoints on addr until ctx ends.
func (p *Pipeline) Serve(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("http %s: %w", addr, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
