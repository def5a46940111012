package respond

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the respond stage's instruments.
type Metrics struct {
	// actions counts audit records by source, action and status: planned,
	// skipped, executed, already_done, failed.
	actions *prometheus.CounterVec
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_respond_actions_total",
		Help: "Respond actions recorded, by source, action (notify, request_approval, revoke) and status (planned, skipped, executed, already_done, failed)."},
		[]string{"source", "action", "status"})}
	reg.MustRegister(m.actions)
	return m
}

func (m *Metrics) count(source, action, status string) {
	if m != nil {
		m.actions.WithLabelValues(source, action, status).Inc()
	}
}
