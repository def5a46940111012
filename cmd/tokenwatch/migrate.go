package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	cfgPath := fs.String("config", "", "config file (its clickhouse block)")
	addr := fs.String("clickhouse", "", "ClickHouse native address host:port (overrides config)")
	db := fs.String("database", "", "database (overrides config)")
	cluster := fs.String("cluster", "", "apply the cluster layout (replicated shards + Distributed tables) on this cluster")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		// Only the clickhouse block: no sink or poller secrets needed.
		if cfg, err = config.LoadClickHouse(*cfgPath); err != nil {
			return err
		}
	} else {
		cfg.ApplyEnv(envLookup)
	}
	if *addr != "" {
		cfg.ClickHouse.Addr = strings.Split(*addr, ",")
	}
	if *db != "" {
		cfg.ClickHouse.Database = *db
	}
	migrate := clickhouse.Migrate
	if *cluster != "" {
		migrate = func(ctx context.Context, c clickhouse.Config) ([]string, error) {
			return clickhouse.MigrateCluster(ctx, c, *cluster)
		}
	}
	applied, err := migrate(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema of %s is up to date\n", cfg.ClickHouse.Database)
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s to %s\n", m, cfg.ClickHouse.Database)
	}
	return nil
}
