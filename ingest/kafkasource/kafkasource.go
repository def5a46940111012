// Package kafkasource ingests vendor records that arrive on a Kafka topic
// rather than from an API: Microsoft Graph activity logs cannot be pulled,
// tenants export them with diagnostic settings to Azure Event Hubs, and Event
// Hubs speaks the Kafka protocol. A Consumer reads such a topic in its own
// consumer group (SASL PLAIN over TLS for Event Hubs), splits each message
// into records (`{"records":[…]}` envelopes, arrays or single records),
// normalizes them with the source's normalizer and publishes; it commits a
// message's offset only after its events and dead letters are acknowledged.
package kafkasource

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is one entry of ingest.kafka_sources.
type Config struct {
	// Source is the normalizer id of the records' shape (microsoft for Graph activity logs).
	Source  string   `yaml:"source"`
	Tenant  string   `yaml:"tenant"`
	Brokers []string `yaml:"brokers"` // Event Hubs: <namespace>.servicebus.windows.net:9093
	Topic   string   `yaml:"topic"`   // Event Hubs: the event hub name
	Group   string   `yaml:"group"`   // Event Hubs: a consumer group of the hub
	TLS     bool     `yaml:"tls"`
	// SASL PLAIN; for Event Hubs the username is "$ConnectionString" and the
	// password the connection string (a secret: env: or file:).
	Username string        `yaml:"username"`
	Password secret.Secret `yaml:"password"`
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Source == "" {
		errs = append(errs, errors.New("source: required"))
	} else if _, err := ingest.NewNormalizer(c.Source, c.Tenant); err != nil {
		errs = append(errs, err)
	}
	if len(c.Brokers) == 0 || c.Topic == "" || c.Group == "" {
		errs = append(errs, errors.New("brokers, topic and group: required"))
	}
	for i, b := range c.Brokers {
		if err := validate.HostPort(fmt.Sprintf("brokers[%d]", i), b, false); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Username != "" && c.Password.IsZero() {
		errs = append(errs, errors.New("password: required with username"))
	}
	return errors.Join(errs...)
}

// Publisher is where normalized events go (satisfied by *publish.Publisher).
type Publisher interface {
	Events(ctx context.Context, evs []schemas.Event) error
	DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error
}

// Run consumes until ctx ends.
func Run(ctx context.Context, cfg Config, pub Publisher, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("kafka source %s: %w", cfg.Topic, err)
	}
	n, _ := ingest.NewNormalizer(cfg.Source, cfg.Tenant)
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	if cfg.TLS {
		dialer.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.Username != "" {
		dialer.SASLMechanism = plain.Mechanism{Username: cfg.Username, Password: cfg.Password.Reveal()}
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, GroupID: cfg.Group, Dialer: dialer,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 500 * time.Millisecond, StartOffset: kafka.FirstOffset, CommitInterval: 0})
	defer r.Close()
	input := "kafka://" + cfg.Topic
	return broker.Consume(ctx, r, 100, 200*time.Millisecond, log, func(ctx context.Context, batch []kafka.Message) error {
		var b ingest.Batch
		for _, m := range batch {
			recs, err := ingest.ReadRecords(bytes.NewReader(m.Value))
			if err != nil {
				b.Dead = append(b.Dead, schemas.NewDeadLetter("parse", cfg.Source, input, err.Error(), m.Value))
				continue
			}
			nb := ingest.NormalizeRecords(n, fmt.Sprintf("%s[%d]@%d", input, m.Partition, m.Offset), recs)
			b.Events = append(b.Events, nb.Events...)
			b.Dead = append(b.Dead, nb.Dead...)
		}
		if err := pub.Events(ctx, b.Events); err != nil {
			return err
		}
		return pub.DeadLetters(ctx, b.Dead)
	})
}
