package wiring

import (
	"context"
	"errors"
	"fmt"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ClickHouse exception codes a run against a server tokenwatch never
// migrated meets.
const chUnknownDatabase = 81

// errClickHouseUnreachable marks a readiness check that got no answer from
// the server: Build warns and starts anyway (the schema is checked when it
// answers: by the first write, which fails and retries until migrated).
var errClickHouseUnreachable = errors.New("ClickHouse unreachable at start")

// clickHouseReady pings ClickHouse and checks that tokenwatch's schema is
// there and current, so a run against an unmigrated server fails at start
// saying what to do, not at the first write with "table doesn't exist".
func clickHouseReady(ctx context.Context, c *clickhouse.Client, cfg clickhouse.Config) error {
	hint := fmt.Sprintf("run `tokenwatch migrate --config FILE` (or `tokenwatch migrate --clickhouse %s --database %s`) first", cfg.Addr[0], cfg.Database)
	if err := c.Ping(ctx); err != nil {
		var ex *ch.Exception
		if errors.As(err, &ex) && ex.Code == chUnknownDatabase {
			return fmt.Errorf("clickhouse %v: database %s does not exist: %s (%w)", cfg.Addr, cfg.Database, hint, err)
		}
		return unanswered(cfg, "ping", err)
	}
	var tables uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", cfg.Database).Scan(&tables); err != nil {
		return unanswered(cfg, "read system.tables", err)
	}
	if tables == 0 {
		return fmt.Errorf("clickhouse %v: database %s has no tokenwatch schema (no schema_migrations table): %s", cfg.Addr, cfg.Database, hint)
	}
	var applied uint32
	if err := c.Conn().QueryRow(ctx, "SELECT max(version) FROM "+cfg.Database+".schema_migrations").Scan(&applied); err != nil {
		return unanswered(cfg, "read schema_migrations", err)
	}
	migs, err := schemas.Migrations()
	if err != nil {
		return err
	}
	want, layout := migs[len(migs)-1].Version, "single-server"
	if applied >= 1000 { // the cluster layout records its steps as 1000+
		cl, err := schemas.ClusterMigrations("cluster")
		if err != nil {
			return err
		}
		want, layout, applied = cl[len(cl)-1].Version, "cluster", applied-1000
	}
	if int(applied) < want {
		return fmt.Errorf("clickhouse %v: the %s schema of database %s is at migration %d, this binary writes migration %d's: %s",
			cfg.Addr, layout, cfg.Database, applied, want, hint)
	}
	return nil
}

// unanswered wraps a failed readiness step. A server exception is an answer
// (a wrong server, a missing grant) and stops the start; anything else
// (refused, reset, timed out) means ClickHouse is down, not wrong, at any of
// the steps: a server killed between the ping and the schema read is as down
// as one that refused the ping. Writers retry until it is back and Kafka holds
// their input, so a restart during an outage must not stop ingest too.
func unanswered(cfg clickhouse.Config, step string, err error) error {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return fmt.Errorf("clickhouse %v: %s: %w", cfg.Addr, step, err)
	}
	return fmt.Errorf("%w: clickhouse %v: %s: %w", errClickHouseUnreachable, cfg.Addr, step, err)
}
