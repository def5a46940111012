// Package clickhouse writes events and alerts to ClickHouse over the native
// protocol (clickhouse-go/v2) in batches, and applies the versioned migrations
// embedded in package schemas. It works against ClickHouse 18.16 (what Debian
// ships, what CI runs) and current servers: INSERTs name their columns (18.16
// rejects bare INSERT INTO t with PrepareBatch) and the DDL avoids types 18.16
// lacks (DateTime64, Map, JSON).
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind for alerts in config.
const Kind = "clickhouse"

// Config is the connection config (the `clickhouse:` block).
type Config struct {
	Addr        []string      `yaml:"addr"` // host:port of the native protocol (9000)
	Database    string        `yaml:"database"`
	Username    string        `yaml:"username"`
	Password    secret.Secret `yaml:"password"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// DefaultConfig: database tokenwatch, user default.
func DefaultConfig() Config {
	return Config{Database: "tokenwatch", Username: "default", DialTimeout: 5 * time.Second}
}

// Validate checks the config.
func (c Config) Validate() error {
	if len(c.Addr) == 0 {
		return errors.New("clickhouse.addr: at least one host:port of the native protocol (e.g. localhost:9000)")
	}
	if c.Database == "" || strings.ContainsAny(c.Database, "`'\" .;") {
		return fmt.Errorf("clickhouse.database %q: a plain identifier", c.Database)
	}
	return nil
}

// Client is a ClickHouse connection with tokenwatch's writers.
type Client struct {
	conn driver.Conn
	cfg  Config
}

// Open connects (lazily: clickhouse-go dials on first use) and pings.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := open(cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, cfg: cfg}, nil
}

func open(cfg Config, database string) (driver.Conn, error) {
	conn, err := ch.Open(&ch.Options{
		Addr:        cfg.Addr,
		Protocol:    ch.Native,
		Auth:        ch.Auth{Database: database, Username: cfg.Username, Password: cfg.Password.Reveal()},
		DialTimeout: cfg.DialTimeout,
		ReadTimeout: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse open %v: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Conn exposes the driver connection for queries (tests, analysts' tools).
func (c *Client) Conn() driver.Conn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Ping checks the server is reachable.
func (c *Client) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

// Migrate creates the database and applies migrations not yet recorded in
// schema_migrations, in version order. It is idempotent.
func Migrate(ctx context.Context, cfg Config) (applied []string, err error) {
	migs, err := schemas.Migrations()
	if err != nil {
		return nil, err
	}
	return apply(ctx, cfg, migs, "")
}

// MigrateCluster applies the cluster layout (schemas/cluster) on the named
// ClickHouse cluster: replicated local tables and Distributed tables over
// them. It records its steps as versions 1000+ so they never collide with the
// single-server ones.
func MigrateCluster(ctx context.Context, cfg Config, cluster string) (applied []string, err error) {
	if cluster == "" || strings.ContainsAny(cluster, "'`\" ;") {
		return nil, fmt.Errorf("cluster %q: a plain cluster name from remote_servers", cluster)
	}
	migs, err := schemas.ClusterMigrations(cluster)
	if err != nil {
		return nil, err
	}
	for i := range migs {
		migs[i].Version += 1000
	}
	return apply(ctx, cfg, migs, cluster)
}

func apply(ctx context.Context, cfg Config, migs []schemas.Migration, cluster string) (applied []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := open(cfg, "default")
	if err != nil {
		return nil, err
	}
	defer root.Close()
	create := "CREATE DATABASE IF NOT EXISTS " + cfg.Database
	if cluster != "" {
		create += " ON CLUSTER '" + cluster + "'"
	}
	if err := root.Exec(ctx, create); err != nil {
		return nil, fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	conn, err := open(cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime)
		ENGINE = ReplacingMergeTree ORDER BY version`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done := map[uint32]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		done[v] = true
	}
	rows.Close()
	for _, m := range migs {
		if done[uint32(m.Version)] {
			continue
		}
		for i, st := range m.Statements {
			if err := conn.Exec(ctx, st); err != nil {
				return applied, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, m); err != nil {
			return applied, fmt.Errorf("record migration %04d: %w", m.Version, err)
		}
		applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	return applied, nil
}

// recordMigration inserts through a batch: 18.16 does not answer an INSERT …
// VALUES sent through Exec by this driver (the read times out).
func recordMigration(ctx context.Context, conn driver.Conn, m schemas.Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name, time.Now().UTC()); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}

const insertAlerts = `INSERT INTO alerts (id, detector, severity, integration_id, tenant, title, summary, first_seen,
	last_seen, event_ids, observed, baseline, query, criticality, owner, purpose, shadow, created_at)`

// WriteAlerts inserts the alerts not already stored as one batch: an alert
// id is raised once (detect/engine), so a stored id is a redelivery.
func (c *Client) WriteAlerts(ctx context.Context, alerts []schemas.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	ids := make([]string, len(alerts))
	for i := range alerts {
		ids[i] = alerts[i].ID
	}
	stored, err := c.storedIDs(ctx, "alerts", "id", ids)
	if err != nil {
		return err
	}
	fresh := alerts[:0:0]
	for _, a := range alerts {
		if !stored[a.ID] {
			stored[a.ID] = true
			fresh = append(fresh, a)
		}
	}
	if alerts = fresh; len(alerts) == 0 {
		return nil
	}
	b, err := c.conn.PrepareBatch(ctx, insertAlerts)
	if err != nil {
		return fmt.Errorf("clickhouse: prepare alerts batch: %w", err)
	}
	defer b.Abort()
	now := time.Now().UTC()
	for i := range alerts {
		a := &alerts[i]
		sev := string(a.Severity)
		if a.Severity.Rank() < 0 {
			sev = string(schemas.SeverityInfo)
		}
		ids := a.EventIDs
		if ids == nil {
			ids = []string{}
		}
		if err := b.Append(a.ID, a.Detector, sev, a.IntegrationID, a.Tenant, a.Title, a.Summary, a.FirstSeen.Time,
			a.LastSeen.Time, ids, string(a.Observed), string(a.Baseline), a.Query, a.Criticality, a.Owner, a.Purpose,
			flag(a.Shadow), now); err != nil {
			return fmt.Errorf("clickhouse: append alert %s: %w", a.ID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d alerts: %w", len(alerts), err)
	}
	return nil
}

// strings0 is s, or an empty array for nil (the driver wants a slice).
func strings0(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// flag is a bool as the UInt8 18.16 stores it in.
func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// AlertSink adapts a Client to deliver.Sink for the alerts table.
type AlertSink struct {
	name string
	c    *Client
}

var _ deliver.Sink = (*AlertSink)(nil)

// NewAlertSink wraps c.
func NewAlertSink(name string, c *Client) *AlertSink { return &AlertSink{name: name, c: c} }

// Name implements deliver.Sink.
func (s *AlertSink) Name() string { return s.name }

// Idempotent implements deliver.Idempotent: rows collapse on alert id.
func (s *AlertSink) Idempotent() bool { return true }

// Send implements deliver.Sink.
func (s *AlertSink) Send(ctx context.Context, alerts []schemas.Alert) error {
	return s.c.WriteAlerts(ctx, alerts)
}
