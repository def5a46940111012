package broker

import (
	"fmt"

	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Metrics are the Kafka-side instruments every role shares: how far each
// consumer is behind, how long produces take, and what went to a dead-letter
// topic. Labels are bounded (group, topic, stage, source), never an id.
type Metrics struct {
	ConsumerLag    *prometheus.GaugeVec
	ProduceSeconds *prometheus.HistogramVec
	DeadLetters    *prometheus.CounterVec
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_kafka_consumer_lag",
			Help: "Messages behind the end of the topic, by consumer group and topic."}, []string{"group", "topic"}),
		ProduceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tokenwatch_kafka_produce_duration_seconds",
			Help: "Time for a produce batch to be acknowledged.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"topic"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_dead_letters_total",
			Help: "Records and alerts dead-lettered, by stage (parse, normalize, decode, deliver) and source or sink."}, []string{"stage", "source"}),
	}
	reg.MustRegister(m.ConsumerLag, m.ProduceSeconds, m.DeadLetters)
	return m
}

// DeadLetterMessage wraps a record that could not be processed for a
// dead-letter topic, with the reason in the value and the headers.
//
// A dead letter must fit in one produce request, or producing it fails for
// good and the consumer behind it stops: a record whose dead letter would
// not (a JSON record near the size limit, escaped; a binary one, in base64)
// keeps only as much of its start as fits, and says so.
func DeadLetterMessage(stage, source, input, reason string, record []byte) kafka.Message {
	d := schemas.NewDeadLetter(stage, source, input, reason, record)
	v, _ := json.Marshal(&d)
	for n := len(record) / 2; len(v) > deadLetterBytes && n > 0; n /= 2 {
		d.Truncate(record, n)
		v, _ = json.Marshal(&d)
	}
	return kafka.Message{Key: []byte(source), Value: v, Headers: []kafka.Header{
		Header(HeaderSource, source), Header(HeaderReason, reason)}}
}

// deadLetterBytes bounds a dead letter's value: the writer's BatchBytes
// less room for the key, headers and the record batch's own framing.
const deadLetterBytes = 1<<20 - 16<<10

// Where names a consumed message for a dead letter: "topic[partition]@offset".
func Where(m kafka.Message) string {
	return fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset)
}
