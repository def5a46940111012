package wiring

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus instruments, registered on an
// injected registry (never the global one). Labels are bounded: source,
// tenant, stage, detector, severity, sink, topic — never an integration id.
type Metrics struct {
	IngestEvents     *prometheus.CounterVec
	DeadLetters      *prometheus.CounterVec
	ProduceSeconds   *prometheus.HistogramVec
	DetectEvents     prometheus.Counter
	DetectBatch      prometheus.Histogram
	DetectLag        prometheus.Histogram
	Alerts           *prometheus.CounterVec
	Integrations     prometheus.Gauge
	SinkSent         *prometheus.CounterVec
	SinkFailures     *prometheus.CounterVec
	SinkRetries      *prometheus.CounterVec
	SinkDeadLetters  *prometheus.CounterVec
	EventsWritten    prometheus.Counter
	ConsumerLag      *prometheus.GaugeVec
	GeoIPDatabaseAge *prometheus.GaugeVec
	PollLag          *prometheus.GaugeVec
	PollErrors       *prometheus.CounterVec
	BreakerOpen      *prometheus.GaugeVec
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		IngestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_ingest_events_total",
			Help: "Normalized events produced to tokenwatch.events."}, []string{"source", "tenant"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_dead_letters_total",
			Help: "Records and alerts dead-lettered, by stage (parse, normalize, decode, deliver) and source or sink."}, []string{"stage", "source"}),
		ProduceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tokenwatch_kafka_produce_duration_seconds",
			Help: "Time for a produce batch to be acknowledged.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"topic"}),
		DetectEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_detect_events_total",
			Help: "Events run through the detectors."}),
		DetectBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tokenwatch_detect_batch_duration_seconds",
			Help: "Time to enrich and detect one consumed batch (excluding produce).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		DetectLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tokenwatch_detect_event_lag_seconds",
			Help: "Wall-clock time from an event's arrival on Kafka to its detection.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_alerts_total",
			Help: "Alerts raised, by detector and severity."}, []string{"detector", "severity"}),
		Integrations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tokenwatch_detect_integrations",
			Help: "Integrations whose detector state this process holds."}),
		SinkSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_deliveries_total",
			Help: "Alerts delivered, by sink."}, []string{"sink"}),
		SinkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_failures_total",
			Help: "Batches that failed after all retries, by sink."}, []string{"sink"}),
		SinkRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_retries_total",
			Help: "Send attempts beyond the first, by sink."}, []string{"sink"}),
		SinkDeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_sink_dead_letters_total",
			Help: "Alerts sent to tokenwatch.alerts.deadletter, by sink."}, []string{"sink"}),
		EventsWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_clickhouse_events_written_total",
			Help: "Events written to the ClickHouse events table."}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_kafka_consumer_lag",
			Help: "Messages behind the end of the topic, by consumer group and topic."}, []string{"group", "topic"}),
		GeoIPDatabaseAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_geoip_database_age_seconds",
			Help: "Age of the loaded GeoIP database (from its build epoch)."}, []string{"database"}),
		PollLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_poll_cursor_age_seconds",
			Help: "How far behind now a poller's cursor is, by source and tenant."}, []string{"source", "tenant"}),
		PollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_poll_errors_total",
			Help: "Failed polls, by source and tenant."}, []string{"source", "tenant"}),
		BreakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_sink_circuit_open",
			Help: "1 while a sink's circuit breaker is open."}, []string{"sink"}),
	}
	reg.MustRegister(m.IngestEvents, m.DeadLetters, m.ProduceSeconds, m.DetectEvents, m.DetectBatch, m.DetectLag, m.Alerts,
		m.Integrations, m.SinkSent, m.SinkFailures, m.SinkRetries, m.SinkDeadLetters, m.EventsWritten, m.ConsumerLag,
		m.GeoIPDatabaseAge, m.PollLag, m.PollErrors, m.BreakerOpen)
	return m
}
