package stream

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the detect role's instruments. Labels are bounded (detector,
// severity), never an integration id.
type Metrics struct {
	events       prometheus.Counter
	duplicates   prometheus.Counter
	batch, lag   prometheus.Histogram
	alerts       *prometheus.CounterVec
	incidents    *prometheus.CounterVec
	integrations prometheus.Gauge
	ruleReloads  *prometheus.CounterVec
	rulesFailing prometheus.Gauge
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_detect_events_total",
			Help: "Events run through the detectors."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenwatch_detect_duplicate_events_total",
			Help: "Records whose event id the integration had already seen (a redelivery or re-ingest), skipped by the detectors."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tokenwatch_detect_batch_duration_seconds",
			Help: "Time to enrich and detect one consumed batch (excluding produce).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tokenwatch_detect_event_lag_seconds",
			Help: "Wall-clock time from an event's arrival on Kafka to its detection.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_alerts_total",
			Help: "Alerts raised, by detector and severity."}, []string{"detector", "severity"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_incidents_total",
			Help: "Incident versions produced, by status (open, acknowledged, resolved, suppressed)."}, []string{"status"}),
		integrations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tokenwatch_detect_integrations",
			Help: "Integrations whose detector state this process holds."}),
		ruleReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_detect_rule_reloads_total",
			Help: "Reloads of the Sigma rules after their files or the config file changed, by result (ok; error: the previous rules and config kept running)."}, []string{"result"}),
		rulesFailing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tokenwatch_detect_rules_reload_failing",
			Help: "1 while the rule files or the config file on disk could not be loaded and older rules keep running; 0 once a reload succeeds."}),
	}
	m.ruleReloads.WithLabelValues("ok")
	m.ruleReloads.WithLabelValues("error") // both series exist from the start, for rate() and alerts
	reg.MustRegister(m.events, m.duplicates, m.batch, m.lag, m.alerts, m.incidents, m.integrations, m.ruleReloads, m.rulesFailing)
	return m
}

// reloaded counts one reload of the rule files (or of the config file's
// detect.rules and shadow flags) and says whether the files on disk loaded
// (err nil) or not.
func (m *Metrics) reloaded(err error) {
	result, failing := "ok", 0.0
	if err != nil {
		result, failing = "error", 1
	}
	m.ruleReloads.WithLabelValues(result).Inc()
	m.rulesFailing.Set(failing)
}
