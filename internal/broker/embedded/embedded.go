// Package embedded runs an in-process Kafka-protocol broker (franz-go's kfake)
// with tokenwatch's topics, for the demo, the embedded single-binary default
// and tests. It is the only package that imports kfake.
package embedded

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tokenwatch/tokenwatch/internal/broker"
)

// Broker is the in-process Kafka-protocol broker.
type Broker struct{ c *kfake.Cluster }

// Start starts kfake with tokenwatch's topics. Only the demo, the
// embedded default and tests call it.
func Start(partitions int, dataDir string) (*Broker, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), broker.AllTopics...),
		kfake.DefaultNumPartitions(partitions), kfake.AllowAutoTopicCreation()}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start in-process broker: %w", err)
	}
	return &Broker{c: c}, nil
}

// Addrs are the broker addresses.
func (e *Broker) Addrs() []string { return e.c.ListenAddrs() }

// Close stops the broker.
func (e *Broker) Close() { e.c.Close() }
