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
		if errors.As(err, &ex) {
			return fmt.Errorf("clickhouse %v: %w", cfg.Addr, err)
		}
		// No answer at all (refused, reset, timed out): ClickHouse is down,
		// not wrong. Writers retry until it is back and Kafka holds their
		// input; a restart during an outage must not stop ingest too.
		return fmt.Errorf("%w: clickhouse %v: %w", errClickHouseUnreachable, cfg.Addr, err)
	}
	var tables uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", cfg.Database).Scan(&tables); err != nil {
		return fmt.Errorf("clickhouse %v: read system.tables: %w", cfg.Addr, err)
	}
	if tables == 0 {
		return fmt.Errorf("clickhouse %v: database %s has no tokenwatch schema (no schema_migrations table): %s", cfg.Addr, cfg.Database, hint)
	}
	var applied uint32
	if err := c.Conn().QueryRow(ctx, "SELECT max(version) FROM "+cfg.Database+".schema_migrations").Scan(&applied); err != nil {
		return fmt.Errorf("clickhouse %v: read schema_migrations: %w", cfg.Addr, err)
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
