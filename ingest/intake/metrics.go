package intake

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest role's instruments, labelled by source and tenant.
type Metrics struct {
	events     *prometheus.CounterVec
	pollLag    *prometheus.GaugeVec
	pollErrors *prometheus.CounterVec
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_ingest_events_total",
			Help: "Normalized events produced to tokenwatch.events."}, []string{"source", "tenant"}),
		pollLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_poll_cursor_age_seconds",
			Help: "How far behind now a poller's cursor is, by source and tenant."}, []string{"source", "tenant"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_poll_errors_total",
			Help: "Failed polls, by source and tenant."}, []string{"source", "tenant"}),
	}
	reg.MustRegister(m.events, m.pollLag, m.pollErrors)
	return m
}
