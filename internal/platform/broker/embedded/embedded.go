// Package embedded runs an in-process Kafka-protocol broker (franz-go's kfake)
// with tokenwatch's topics, for the demo, the embedded single-binary default
// and tests. It is the only package that imports kfake.
package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
)

// Broker is the in-process Kafka-protocol broker.
type Broker struct{ c *kfake.Cluster }

// Start starts kfake with tokenwatch's topics. Only the demo, the
// embedded default and tests call it.
func Start(partitions int, dataDir string) (*Broker, error) {
	b, err := start(partitions, dataDir)
	if err != nil {
		return nil, fmt.Errorf("start in-process broker: %w", err)
	}
	return b, nil
}

// start runs kfake with tokenwatch's topics, persisted in dataDir when set.
func start(partitions int, dataDir string, extra ...kfake.Opt) (*Broker, error) {
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), broker.AllTopics...),
		kfake.DefaultNumPartitions(partitions), kfake.AllowAutoTopicCreation()}, extra...)
	if dataDir != "" {
		if err := dropSessions(dataDir); err != nil {
			return nil, err
		}
		opts = append(opts, kfake.DataDir(dataDir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	return &Broker{c: c}, nil
}

// Addrs are the broker addresses.
func (e *Broker) Addrs() []string { return e.c.ListenAddrs() }

// Close stops the broker.
func (e *Broker) Close() { e.c.Close() }

// StartOn is Start on a fixed port, so a test can stop the broker and start it
// again (same data dir, same address) under running clients.
func StartOn(partitions int, dataDir string, port int) (*Broker, error) {
	b, err := start(partitions, dataDir, kfake.Ports(port))
	if err != nil {
		return nil, fmt.Errorf("start in-process broker on port %d: %w", port, err)
	}
	return b, nil
}

// dropSessions removes the group sessions kfake saved at its last shutdown
// (members, their assignments and heartbeat times), keeping the logs and the
// committed offsets. kfake restores saved members as if alive; a member that
// died while the broker was down (or, in the embedded default, every member:
// they lived in the same process) then kept its partitions, unread, long past
// its session timeout: the fault suite stalled on it. Without the sessions,
// live consumers are told their member id is unknown and rejoin, as after a
// coordinator change, and resume from their committed offsets.
func dropSessions(dataDir string) error {
	err := os.Remove(filepath.Join(dataDir, "session_state.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("in-process broker: drop saved group sessions: %w", err)
	}
	return nil
}

// Fail drops the connection of the next n requests with the given Kafka API
// key (0 produce, 1 fetch, …): fault injection for reliability tests.
func (e *Broker) Fail(key int16, n int) {
	var left atomic.Int32
	left.Store(int32(n))
	e.c.ControlKey(key, func(kmsg.Request) (kmsg.Response, error, bool) {
		if left.Add(-1) < 0 {
			e.c.DropControl()
			return nil, nil, false
		}
		e.c.KeepControl()
		return nil, errors.New("injected fault"), true
	})
}

// RejectProduce lets the next `after` produce requests to topic ("": any)
// through, then answers the one after them with Kafka error code for every
// partition it carries (a non-retriable code such as 87 INVALID_RECORD is
// not retried by the client): fault injection for reliability tests.
func (e *Broker) RejectProduce(topic string, after int, code int16) {
	var seen atomic.Int32
	e.c.ControlKey(0, func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		if topic != "" && !slices.ContainsFunc(pr.Topics, func(t kmsg.ProduceRequestTopic) bool { return t.Topic == topic }) {
			return nil, nil, false // not ours: the broker handles it, this control stays
		}
		if int(seen.Add(1)) <= after {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true // answered: kfake drops this control
	})
}
