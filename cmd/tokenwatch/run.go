package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
)

var envLookup = os.LookupEnv

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	cfgPath := fs.String("config", "", "config file (required)")
	roles := fs.String("role", "all", "roles to run: ingest, detect, deliver, comma-separated, or all")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	rs, err := wiring.ParseRoles(*roles)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, loaded, err := config.Read(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	p, closeFn, err := wiring.Build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	// detect.rules and the shadow flags follow edits of the file.
	if err := p.WatchConfigFile(*cfgPath, loaded); err != nil {
		return err
	}
	log.Info("tokenwatch running", "version", version, "roles", rs, "brokers", p.Cfg.Kafka.Brokers, "detectors", len(p.Program.DetectorIDs()))
	err = p.Run(ctx, rs)
	log.Info("tokenwatch stopped")
	return err
}
