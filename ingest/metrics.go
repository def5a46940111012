package ingest

import "github.com/prometheus/client_golang/prometheus"

// unknown counts what connectors normalized with category "other" because
// they did not know it: a vendor's new event name or actor type shows up
// here (and in the events) instead of being dead-lettered.
var unknown = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tokenwatch_ingest_unknown_total",
	Help: "Records normalized with category other because the connector does not know their event name or actor type, by source, kind (event, actor) and name.",
}, []string{"source", "kind", "name"})

// CountUnknown records one record of source whose event name or actor type
// (kind "event" or "actor") the connector did not know. Names are the
// vendor's own, a bounded vocabulary; never pass an id.
func CountUnknown(source, kind, name string) {
	if len(name) > 80 {
		name = name[:80]
	}
	unknown.WithLabelValues(source, kind, name).Inc()
}

// Collectors are the ingest package's process-wide instruments, for the
// process's registry.
func Collectors() []prometheus.Collector { return []prometheus.Collector{unknown} }
