package dispatch_test

import (
	"context"
	"testing"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

// startBroker runs a two-partition in-process broker with tokenwatch's topics
// for the test, and returns its config.
func startBroker(ctx context.Context, t *testing.T) broker.Config {
	t.Helper()
	b, err := embedded.Start(2, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	kc := broker.DefaultConfig()
	kc.Brokers, kc.Partitions = b.Addrs(), 2
	if err := broker.EnsureTopics(ctx, kc, broker.AllTopics...); err != nil {
		t.Fatal(err)
	}
	return kc
}
