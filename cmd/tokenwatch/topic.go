package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// runTopic prints a topic's records as JSON lines, which kcat cannot do for
// the event topics once they hold MessagePack: an event record is decoded
// from whichever encoding its header names and printed as JSON; any other
// record's value is printed as it is when it is JSON (alerts, incidents,
// dead letters, cursors), as a string when it is other text, and as
// {"base64": …} when it is binary (detector state).
func runTopic(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topic", stderr)
	cfgPath := fs.String("config", "", "config file (required; its kafka block)")
	partition := fs.Int("partition", -1, "read one partition (default: every partition, one after another)")
	last := fs.Int64("last", 0, "only the last N records of each partition (default: from the oldest)")
	meta := fs.Bool("meta", false, `print {"partition","offset","key","headers","value"} per record instead of the value alone`)
	follow := fs.Bool("follow", false, "keep printing new records until interrupted")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *cfgPath == "" || fs.NArg() != 1 {
		return fmt.Errorf("%w: usage: tokenwatch topic --config FILE [--partition N] [--last N] [--meta] [--follow] TOPIC", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return fmt.Errorf("%w: topic needs kafka.brokers (the in-process broker of another process is not reachable)", errUsage)
	}
	topic := fs.Arg(0)
	n, err := broker.Partitions(ctx, cfg.Kafka, topic)
	if err != nil {
		return err
	}
	parts := []int{*partition}
	if *partition < 0 {
		parts = parts[:0]
		for p := range n {
			parts = append(parts, p)
		}
	} else if *partition >= n {
		return fmt.Errorf("%w: %s has %d partitions", errUsage, topic, n)
	}
	out := &recordPrinter{w: bufio.NewWriter(stdout), events: schemas.IsEventTopic(topic), meta: *meta, flush: *follow}
	defer out.w.Flush()
	read := func(ctx context.Context, p int) error {
		return broker.ReadRange(ctx, cfg.Kafka, topic, p, *last, *follow, out.print)
	}
	if !*follow {
		for _, p := range parts {
			if err := read(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Go(func() {
			if err := read(ctx, p); err != nil && ctx.Err() == nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// recordPrinter writes one JSON line per record; safe for concurrent use.
type recordPrinter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	events bool // the topic holds events: decode them by their header
	meta   bool
	flush  bool // after each record (--follow)
}

func (p *recordPrinter) print(m kafka.Message) error {
	var value any
	switch {
	case p.events:
		var ev schemas.Event
		if err := broker.DecodeEvent(m, &ev); err != nil {
			return fmt.Errorf("%s: %w", broker.Where(m), err)
		}
		value = &ev
	case json.Valid(m.Value):
		value = json.RawMessage(m.Value)
	case utf8.Valid(m.Value):
		value = string(m.Value)
	default: // a binary value (a detector state snapshot): whole, as base64
		value = map[string]string{"base64": base64.StdEncoding.EncodeToString(m.Value)}
	}
	if p.meta {
		headers := map[string]string{}
		for _, h := range m.Headers {
			headers[h.Key] = string(h.Value)
		}
		value = struct {
			Partition int               `json:"partition"`
			Offset    int64             `json:"offset"`
			Key       string            `json:"key"`
			Headers   map[string]string `json:"headers,omitempty"`
			Value     any               `json:"value"`
		}{m.Partition, m.Offset, string(m.Key), headers, value}
	}
	line, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("%s: %w", broker.Where(m), err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Write(line)
	p.w.WriteByte('\n')
	if p.flush {
		return p.w.Flush()
	}
	return nil
}
