package schemas

import (
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"
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

// IsEventTopic reports whether topic carries events (schemas.Event in the
// encoding each record's header names): tokenwatch.events and the re-key
// topics.
func IsEventTopic(topic string) bool {
	return topic == TopicEvents || strings.HasPrefix(topic, RekeyTopic(""))
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
	// Record is the raw bytes as received (a string, since they may not be
	// JSON) when they are UTF-8 text; RecordBase64 holds them otherwise (a
	// binary event record), which a JSON string could not carry intact.
	Record       string `json:"record"`
	RecordBase64 string `json:"record_base64,omitempty"`
	// RecordTruncated says Record (or RecordBase64) holds only the start of
	// a record too large for a dead letter; RecordLength is its whole length
	// and Input says where the whole record still is.
	RecordTruncated bool `json:"record_truncated,omitempty"`
	RecordLength    int  `json:"record_length,omitempty"`
	Time            Time `json:"time"` // when it was dead-lettered (wall clock: operational only)
}

// NewDeadLetter fills Time with the current wall clock.
func NewDeadLetter(stage, source, input, reason string, record []byte) DeadLetter {
	d := DeadLetter{Stage: stage, Source: source, Input: input, Reason: reason, Time: NewTime(time.Now())}
	d.setRecord(record)
	return d
}

// Truncate keeps the first n bytes of the record (n below its length),
// marking the dead letter truncated.
func (d *DeadLetter) Truncate(record []byte, n int) {
	d.RecordTruncated, d.RecordLength = true, len(record)
	d.setRecord(record[:n])
}

func (d *DeadLetter) setRecord(record []byte) {
	d.Record, d.RecordBase64 = "", ""
	if utf8.Valid(record) {
		d.Record = string(record)
	} else {
		d.RecordBase64 = base64.StdEncoding.EncodeToString(record)
	}
}

// Bytes returns the dead-lettered record as it was received.
func (d DeadLetter) Bytes() ([]byte, error) {
	if d.RecordBase64 != "" {
		return base64.StdEncoding.DecodeString(d.RecordBase64)
	}
	return []byte(d.Record), nil
}
