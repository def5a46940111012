package schemas

import (
	"strings"
	"time"
)

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
	// TopicCursors is compacted: the latest poll cursor per (source, tenant).
	TopicCursors = "tokenwatch.cursors"
	// TopicDelivered is compacted: "sink/alert id" → when it was delivered, so
	// a restarted sink does not deliver an alert twice within its dedup window.
	TopicDelivered = "tokenwatch.delivered"
	// TopicResponses is the respond stage's audit trail (schemas.Response):
	// every planned, executed, failed and already-done action.
	TopicResponses = "tokenwatch.responses"
)

// RekeyTopic is the repartition topic of the detect stage keyed by keying
// (detect.Keying.Name): events re-keyed for detectors that look across
// integrations, such as chain.shared_ip by source IP.
func RekeyTopic(keying string) string { return "tokenwatch.rekey." + keying }

// StateTopic is the compacted state topic of the detect stage keyed by
// keying: TopicState for the integration stage ("").
func StateTopic(keying string) string {
	if keying == "" {
		return TopicState
	}
	return TopicState + "." + keying
}

// IsStateTopic reports whether topic is a detect stage's state topic.
func IsStateTopic(topic string) bool {
	return topic == TopicState || strings.HasPrefix(topic, TopicState+".")
}

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
