package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
)

func runRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("redrive", stderr)
	cfgPath := fs.String("config", "", "config file (required; its kafka block and sinks)")
	sinkName := fs.String("sink", "", "sink whose dead-lettered alerts to send again (required)")
	idle := fs.Duration("idle", 3*time.Second, "stop after the dead-letter topic has been quiet this long")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *cfgPath == "" || *sinkName == "" {
		return fmt.Errorf("%w: --config and --sink are required", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return fmt.Errorf("%w: redrive needs kafka.brokers (the in-process broker of another process is not reachable)", errUsage)
	}
	cfg.HTTP.Listen = ""
	// Only the sinks are needed. The respond stage would open the SSF
	// transmitter's state and outbox files, which the running process owns:
	// rewriting its outbox under it would lose the SETs it queues next.
	cfg.Respond = nil
	p, closeFn, err := wiring.Build(ctx, cfg, newLogger(stderr, cfg.Log.Level, cfg.Log.Format))
	if err != nil {
		return err
	}
	defer closeFn()
	sinks, err := p.Sinks()
	if err != nil {
		return err
	}
	for _, s := range sinks {
		if s.Name() == *sinkName {
			res, err := p.Redrive(ctx, s, *idle)
			fmt.Fprintf(stdout, "redrive %s: %d sent, %d skipped (other sinks or not alerts), %d failed\n", s.Name(), res.Sent, res.Skipped, res.Failed)
			return err
		}
	}
	return fmt.Errorf("%w: no sink named %q in %s", errUsage, *sinkName, *cfgPath)
}
