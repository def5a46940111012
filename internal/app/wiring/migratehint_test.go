package wiring_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
)

// Starting against a ClickHouse that was never migrated (no database, or a
// database without tokenwatch's tables) fails at once and says what to do.
func TestRunOnAnUnmigratedClickHouseSaysToMigrate(t *testing.T) {
	srv := chtest.New(t)
	ctx := context.Background()
	_, cfg := startBroker(t)
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}

	root := cfg.ClickHouse
	root.Database = "default"
	c, err := clickhouse.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Conn().Exec(ctx, "CREATE DATABASE IF NOT EXISTS tw_empty"); err != nil {
		t.Fatal(err)
	}
	// tw_behind: migrated by an older binary (only its first migration).
	if err := c.Conn().Exec(ctx, "CREATE DATABASE IF NOT EXISTS tw_behind"); err != nil {
		t.Fatal(err)
	}
	if err := c.Conn().Exec(ctx, "CREATE TABLE tw_behind.schema_migrations ENGINE = Memory AS SELECT toUInt32(1) AS version, 'events' AS name, now() AS applied_at"); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"tw_missing", "tw_empty", "tw_behind"} {
		cfg.ClickHouse.Database = db
		_, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.DiscardHandler))
		closeFn()
		if err == nil || !strings.Contains(err.Error(), "tokenwatch migrate") || !strings.Contains(err.Error(), db) {
			t.Fatalf("database %s: err %v, want it to say to run tokenwatch migrate", db, err)
		}
		t.Logf("%s: %v", db, err)
	}
	// Migrated, it starts.
	cfg.ClickHouse.Database = "tw_ok"
	if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
		t.Fatal(err)
	}
	_, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.DiscardHandler))
	closeFn()
	if err != nil {
		t.Fatal(err)
	}
}

// A ClickHouse that does not answer at start (down, restarting) is an
// outage, not a misconfiguration: the process starts, says so, and its
// writers retry; ingest and detect keep working meanwhile.
func TestRunStartsWhileClickHouseIsDown(t *testing.T) {
	ctx := context.Background()
	_, cfg := startBroker(t)
	cfg.ClickHouse.Addr = []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))} // nothing listens there
	var logs bytes.Buffer
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	defer closeFn()
	if err != nil {
		t.Fatalf("build with ClickHouse down: %v", err)
	}
	if p.CH == nil {
		t.Fatal("no ClickHouse client: the writers could not retry")
	}
	if !strings.Contains(logs.String(), "starting without ClickHouse") || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("log does not say ClickHouse is unreachable:\n%s", logs.String())
	}
}
