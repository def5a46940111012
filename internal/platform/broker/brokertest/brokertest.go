// Package brokertest starts the in-process broker for a test and hands back
// the broker config that reaches it: the few lines every Kafka-facing test
// began with.
package brokertest

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

// Start runs an in-process broker with partitions partitions per topic until
// the test ends, and returns the default broker config pointed at it.
func Start(tb testing.TB, partitions int) (broker.Config, *embedded.Broker) {
	tb.Helper()
	b, err := embedded.Start(partitions, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	cfg := broker.DefaultConfig()
	cfg.Brokers, cfg.Partitions = b.Addrs(), partitions
	return cfg, b
}
