package googleworkspace

import "github.com/prometheus/client_golang/prometheus"

// unknownEvents counts token-activity events whose name the connector does
// not know; they are normalized with category "other", not dead-lettered.
var unknownEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tokenwatch_ingest_unknown_event_names_total",
	Help: "Audit events normalized with category other because the connector does not know their name.",
}, []string{"source", "event"})

// Collector exposes the connector's counters for the process's Prometheus
// registry: reg.MustRegister(googleworkspace.Collector).
var Collector prometheus.Collector = unknownEvents
