package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/push"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// runConfig is `tokenwatch config check FILE`: the same validation every role
// runs at start, plus building every detector, sink, poller source and the
// catalog, so a config that passes here starts.
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: usage: tokenwatch config check FILE", errUsage)
	}
	fs := newFlags("config check", stderr)
	if err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: usage: tokenwatch config check FILE", errUsage)
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	// The detect program exactly as run builds it: detectors, GeoIP, catalog.
	prog, err := program.Build(cfg.Program(), program.Options{})
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	defer prog.Close()
	dets := prog.DetectorIDs()
	for i, s := range cfg.Deliver.Sinks {
		if _, err := deliver.New(s.Kind, s.Name, s.Decode); err != nil {
			at := fmt.Sprintf("deliver.sinks[%d]", i)
			if slices.Contains(deliver.Kinds(), s.Kind) {
				at += ".config" // the sink refused its `config:`: name the field in it
			}
			return fmt.Errorf("config %s: %w (sink %s)", path, yamlstrict.At(at, err), s.Name)
		}
	}
	for i, pc := range cfg.Ingest.Pollers {
		if _, err := pc.NewSource(nil); err != nil {
			return fmt.Errorf("config %s: %w", path, yamlstrict.At(fmt.Sprintf("ingest.pollers[%d]", i), err))
		}
	}
	for i, ps := range cfg.Ingest.Push.Sources {
		if _, err := ingest.NewNormalizer(ps.Source, ps.Tenant); err != nil {
			return fmt.Errorf("config %s: ingest.push.sources[%d]: %w", path, i, err)
		}
	}
	if len(cfg.Ingest.Push.Sources) > 0 {
		if _, err := push.New(cfg.Ingest.Push, discard{}, nil); err != nil {
			return fmt.Errorf("config %s: ingest.push: %w", path, err)
		}
	}
	if cfg.Respond != nil {
		if _, err := cfg.Respond.Revokers(); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	brokers := "in-process broker"
	if len(cfg.Kafka.Brokers) > 0 {
		brokers = fmt.Sprint(cfg.Kafka.Brokers)
	}
	for _, n := range prog.RuleNotes() {
		fmt.Fprintf(stdout, "%s: note: %s\n", path, n)
	}
	fmt.Fprintf(stdout, "%s: ok (%d detectors, %d sinks, %d pollers, %d push sources, kafka %s)\n", path, len(dets),
		len(cfg.Deliver.Sinks), len(cfg.Ingest.Pollers), len(cfg.Ingest.Push.Sources), brokers)
	return nil
}

// discard is a publisher for building the push handler without Kafka.
type discard struct{}

func (discard) Events(context.Context, []schemas.Event) error           { return nil }
func (discard) DeadLetters(context.Context, []schemas.DeadLetter) error { return nil }
