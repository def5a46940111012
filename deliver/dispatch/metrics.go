package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the deliver role's instruments, labelled by sink name only.
type Metrics struct {
	sent, failures, retries, deadLetters *prometheus.CounterVec
	incidentsSent, incidentDeadLetters   *prometheus.CounterVec
	eventsWritten                        prometheus.Counter
	eventsFailures, eventsRetries        prometheus.Counter
	eventsDuplicates                     prometheus.Counter
	breakerOpen                          *prometheus.GaugeVec
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_deliveries_total",
			Help: "Alerts delivered, by sink."}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_failures_total",
			Help: "Batches that failed after all retries, by sink."}, []string{"sink"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_retries_total",
			Help: "Send attempts beyond the first, by sink."}, []string{"sink"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_dead_letters_total",
			Help: "Alerts sent to tokenwatch.alerts.deadletter, by sink."}, []string{"sink"}),
		incidentsSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_incident_deliveries_total",
			Help: "Incident versions delivered, by sink."}, []string{"sink"}),
		incidentDeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_incident_dead_letters_total",
			Help: "Incident versions sent to tokenwatch.alerts.deadletter, by sink."}, []string{"sink"}),
		eventsWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_clickhouse_events_written_total",
			Help: "Events written to the ClickHouse events table."}),
		eventsFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_clickhouse_events_write_failures_total",
			Help: "Failed writes of an events batch to ClickHouse (each is retried: the batch is never skipped)."}),
		eventsRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_clickhouse_events_write_retries_total",
			Help: "Attempts at an events batch after a failed one."}),
		eventsDuplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_clickhouse_events_duplicates_total",
			Help: "Events left out of an INSERT because their id was already stored (a redelivery or a re-read after a crash)."}),
		breakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_sink_circuit_open",
			Help: "1 while a sink's circuit breaker is open."}, []string{"sink"}),
	}
	reg.MustRegister(m.sent, m.failures, m.retries, m.deadLetters, m.eventsWritten, m.breakerOpen, m.incidentsSent, m.incidentDeadLetters,
		m.eventsFailures, m.eventsRetries, m.eventsDuplicates)
	return m
}
