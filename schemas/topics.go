package schemas

import "time"

// Kafka topics. Every topic but the cursor and state topics is keyed by
// integration id, so one integration's events stay ordered on one partition
// and its baseline lives with exactly one detect instance.
const (
	TopicEvents          = "tokenwatch.events"
	TopicDeadLetter      = "tokenwatch.deadletter"
	TopicAlerts          = "tokenwatch.alerts"
	TopicAlertDeadLetter = "tokenwatch.alerts.deadletter"
	// TopicState is compacted: the latest detector state per integration,
	// written to the same partition number as the integration's events, plus
	// one checkpoint marker per partition (the events offset it covers).
	TopicState = "tokenwatch.state"
	// TopicIPSightings re-keys events by tenant/IP (one per integration, IP
	// and hour) for detectors that look across integrations (chain.shared_ip).
	TopicIPSightings = "tokenwatch.ip_sightings"
	// TopicStateIP is TopicState for the IP-keyed stage.
	TopicStateIP = "tokenwatch.state.ip"
	// TopicCursors is compacted: the latest poll cursor per (source, tenant).
	TopicCursors = "tokenwatch.cursors"
	// TopicDelivered is compacted: "sink/alert id" → when it was delivered, so
	// a restarted sink does not deliver an alert twice within its dedup window.
	TopicDelivered = "tokenwatch.delivered"
)

// DeadLetter is what lands on a dead-letter topic: the input that could not be
// processed, untouched, with the reason and where it came from.
type DeadLetter struct {
	Stage  string `json:"stage"`  // normalize, parse, deliver
	Source string `json:"source"` // connector or sink name
	Reason string `json:"reason"`
	Input  string `json:"input,omitempty"` // file, URL or topic
	// Record is the raw bytes as received (a string, since they may not be JSON).
	Record string `json:"record"`
	Time   Time   `json:"time"` // when it was dead-lettered (wall clock: operational only)
}

// NewDeadLetter fills Time with the current wall clock.
func NewDeadLetter(stage, source, input, reason string, record []byte) DeadLetter {
	return DeadLetter{Stage: stage, Source: source, Input: input, Reason: reason, Record: string(record), Time: NewTime(time.Now())}
}
