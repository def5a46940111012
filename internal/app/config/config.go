// Package config owns tokenwatch's one YAML config file: its shape, defaults,
// environment overrides and validation. Every role validates the same way at
// start, so a bad file fails fast with the field named.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/ingest/kafkasource"
	"github.com/tokenwatch/tokenwatch/ingest/poll"
	"github.com/tokenwatch/tokenwatch/ingest/push"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
)

// Config is the whole file.
type Config struct {
	Log        Log               `yaml:"log"`
	HTTP       HTTP              `yaml:"http"`
	Kafka      broker.Config     `yaml:"kafka"`
	ClickHouse clickhouse.Config `yaml:"clickhouse"`
	GeoIP      GeoIP             `yaml:"geoip"`
	Inventory  Inventory         `yaml:"inventory"`
	Ingest     Ingest            `yaml:"ingest"`
	Detect     Detect            `yaml:"detect"`
	Deliver    Deliver           `yaml:"deliver"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// HTTP is where /metrics, /healthz and /readyz are served.
type HTTP struct {
	Listen string `yaml:"listen"` // "" turns the endpoints off
}

// GeoIP names the MaxMind databases.
type GeoIP struct {
	City      string `yaml:"city"`
	ASN       string `yaml:"asn"`
	CacheSize int    `yaml:"cache_size"`
	// ReloadInterval is how often the files are checked for an update.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Inventory names the integration catalog (YAML), reloaded when it changes.
type Inventory struct {
	Path           string        `yaml:"path"`
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// DiscoveryInterval is how often discovered integrations are written to
	// the ClickHouse integrations table.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
}

// Ingest configures the ingest role.
type Ingest struct {
	// Files are raw vendor records to ingest once at start (dev, backfill).
	Files []FileInput `yaml:"files"`
	// Pollers poll vendor audit APIs, one per (source, tenant).
	Pollers []poll.Config `yaml:"pollers"`
	// Push receives signed webhook pushes on POST /ingest/{source} (on http.listen).
	Push push.Config `yaml:"push"`
	// KafkaSources consume records exported to Kafka-protocol topics
	// (Microsoft Graph activity logs on Azure Event Hubs).
	KafkaSources []kafkasource.Config `yaml:"kafka_sources"`
}

// FileInput is a raw file and the source whose shape it holds.
type FileInput struct {
	Source string `yaml:"source"`
	Tenant string `yaml:"tenant"`
	Path   string `yaml:"path"`
}

// Detect configures detection.
type Detect struct {
	// Detectors maps a detector id to its config; `enabled: false` turns it off.
	Detectors map[string]yaml.Node `yaml:"detectors"`
	// BatchSize and FlushInterval bound the detect consumer's batches.
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// CheckpointInterval is how often detector state is written to
	// tokenwatch.state and offsets committed: the most a crash replays.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// EvictIdle: an integration without events for this long (event time) is
	// moved out of the live state into a compressed snapshot after a
	// checkpoint (about 1 KiB instead of 4.6), and restored on its next event.
	EvictIdle time.Duration `yaml:"evict_idle"`
}

// Deliver configures sinks.
type Deliver struct {
	Retry deliver.RetryPolicy `yaml:"retry"`
	Sinks []Sink              `yaml:"sinks"`
	// Routes send alerts to sinks by severity, detector, tenant; none = every
	// sink gets every alert. The ClickHouse alerts table always gets all.
	Routes deliver.Routes `yaml:"routes"`
	// EventsToClickHouse writes every event to the events table (needs clickhouse.addr).
	EventsToClickHouse bool `yaml:"events_to_clickhouse"`
	// DedupWindow: an alert id delivered to a sink is not delivered to it
	// again within this window, across restarts (tokenwatch.delivered).
	DedupWindow   time.Duration `yaml:"dedup_window"`
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Sink is one configured alert sink.
type Sink struct {
	Name      string                  `yaml:"name"`
	Kind      string                  `yaml:"kind"`
	Config    yaml.Node               `yaml:"config"`
	Breaker   deliver.BreakerConfig   `yaml:"breaker"`
	RateLimit deliver.RateLimitConfig `yaml:"rate_limit"`
}

// Decode fills a sink's own config struct from its `config:` node (nothing
// when the node is absent): the decode function deliver.New takes.
func (s Sink) Decode(v any) error {
	if s.Config.Kind == 0 {
		return nil
	}
	return s.Config.Decode(v)
}

// UnmarshalYAML applies the sink defaults before decoding.
func (s *Sink) UnmarshalYAML(n *yaml.Node) error {
	type plain Sink
	p := plain{Breaker: deliver.DefaultBreakerConfig()}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = Sink(p)
	return nil
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Log:        Log{Level: "info", Format: "text"},
		HTTP:       HTTP{Listen: ":9464"},
		Inventory:  Inventory{ReloadInterval: 30 * time.Second, DiscoveryInterval: time.Minute},
		GeoIP:      GeoIP{ReloadInterval: time.Minute},
		Ingest:     Ingest{Push: push.DefaultConfig()},
		Kafka:      broker.DefaultConfig(),
		ClickHouse: clickhouse.DefaultConfig(),
		Detect:     Detect{BatchSize: 2000, FlushInterval: 50 * time.Millisecond, CheckpointInterval: 5 * time.Second, EvictIdle: 6 * time.Hour},
		Deliver: Deliver{Retry: deliver.DefaultRetryPolicy(), EventsToClickHouse: true, BatchSize: 50000, DedupWindow: 7 * 24 * time.Hour,
			FlushInterval: 200 * time.Millisecond},
	}
}

// Load reads, decodes strictly (unknown fields are errors), applies env
// overrides and validates.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes config bytes; name labels errors.
func Parse(b []byte, name string) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	cfg.ApplyEnv(os.LookupEnv)
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

// ApplyEnv overrides fields from TOKENWATCH_* variables, for containers.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup("TOKENWATCH_KAFKA_BROKERS"); ok && v != "" {
		c.Kafka.Brokers = strings.Split(v, ",")
	}
	if v, ok := lookup("TOKENWATCH_CLICKHOUSE_ADDR"); ok && v != "" {
		c.ClickHouse.Addr = strings.Split(v, ",")
	}
	if v, ok := lookup("TOKENWATCH_LOG_LEVEL"); ok && v != "" {
		c.Log.Level = v
	}
	if v, ok := lookup("TOKENWATCH_GEOIP_CITY"); ok {
		c.GeoIP.City = v
	}
	if v, ok := lookup("TOKENWATCH_GEOIP_ASN"); ok {
		c.GeoIP.ASN = v
	}
}

// ClickHouseEnabled reports whether a ClickHouse server is configured.
func (c *Config) ClickHouseEnabled() bool { return len(c.ClickHouse.Addr) > 0 }

// Validate checks every section and names the field at fault.
func (c *Config) Validate() error {
	var errs []error
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ClickHouseEnabled() {
		if err := c.ClickHouse.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range []struct{ field, path string }{{"geoip.city", c.GeoIP.City}, {"geoip.asn", c.GeoIP.ASN}} {
		if p.path != "" {
			if _, err := os.Stat(p.path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.field, err))
			}
		}
	}
	if c.Inventory.Path != "" {
		if _, err := os.Stat(c.Inventory.Path); err != nil {
			errs = append(errs, fmt.Errorf("inventory.path: %w", err))
		}
	}
	if c.GeoIP.ReloadInterval <= 0 {
		errs = append(errs, errors.New("geoip.reload_interval: must be a positive duration like 1m"))
	}
	if c.Inventory.ReloadInterval <= 0 || c.Inventory.DiscoveryInterval <= 0 {
		errs = append(errs, errors.New("inventory.reload_interval and inventory.discovery_interval: must be positive durations"))
	}
	pollKeys := map[string]bool{}
	for i, pc := range c.Ingest.Pollers {
		if err := pc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("ingest.pollers[%d]: %w", i, err))
		}
		k := pc.Source + "/" + pc.Tenant
		if pollKeys[k] {
			errs = append(errs, fmt.Errorf("ingest.pollers[%d]: a second poller for source %q tenant %q (their cursors would collide)", i, pc.Source, pc.Tenant))
		}
		pollKeys[k] = true
	}
	for i, ks := range c.Ingest.KafkaSources {
		if err := ks.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("ingest.kafka_sources[%d]: %w", i, err))
		}
	}
	if err := c.Ingest.Push.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ingest.push: %w", err))
	}
	if len(c.Ingest.Push.Sources) > 0 && c.HTTP.Listen == "" {
		errs = append(errs, errors.New("ingest.push.sources: needs http.listen (pushes arrive on the HTTP listener)"))
	}
	for i, f := range c.Ingest.Files {
		if f.Source == "" || f.Path == "" {
			errs = append(errs, fmt.Errorf("ingest.files[%d]: source and path are required", i))
		}
	}
	if c.Detect.BatchSize < 1 || c.Deliver.BatchSize < 1 {
		errs = append(errs, errors.New("detect.batch_size and deliver.batch_size: must be at least 1"))
	}
	if c.Deliver.DedupWindow <= 0 {
		errs = append(errs, errors.New("deliver.dedup_window: must be a positive duration like 168h"))
	}
	if c.Detect.EvictIdle <= 0 {
		errs = append(errs, errors.New("detect.evict_idle: must be a positive duration like 6h"))
	}
	if c.Detect.CheckpointInterval <= 0 {
		errs = append(errs, errors.New("detect.checkpoint_interval: must be a positive duration like 5s"))
	}
	if c.Detect.FlushInterval <= 0 || c.Deliver.FlushInterval <= 0 {
		errs = append(errs, errors.New("detect.flush_interval and deliver.flush_interval: must be positive durations like 100ms"))
	}
	if err := c.Deliver.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("deliver.retry.%w", err))
	}
	seen := map[string]bool{}
	for i, s := range c.Deliver.Sinks {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("deliver.sinks[%d].name: required", i))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("deliver.sinks[%d].name %q: duplicate", i, s.Name))
		}
		seen[s.Name] = true
		if s.Kind == "" {
			errs = append(errs, fmt.Errorf("deliver.sinks[%d].kind: required (one of %v)", i, deliver.Kinds()))
		}
	}
	names := make([]string, 0, len(c.Deliver.Sinks))
	for i := range c.Deliver.Sinks {
		s := &c.Deliver.Sinks[i]
		if s.Breaker == (deliver.BreakerConfig{}) {
			s.Breaker = deliver.DefaultBreakerConfig()
		}
		names = append(names, s.Name)
		if err := s.Breaker.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("deliver.sinks[%d].breaker.%w", i, err))
		}
		if err := s.RateLimit.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("deliver.sinks[%d].rate_limit.%w", i, err))
		}
	}
	if err := c.Deliver.Routes.Validate(names); err != nil {
		errs = append(errs, fmt.Errorf("deliver.routes: %w", err))
	}
	if c.Deliver.EventsToClickHouse && !c.ClickHouseEnabled() {
		// Not an error: the embedded default runs without ClickHouse.
		c.Deliver.EventsToClickHouse = false
	}
	return errors.Join(errs...)
}
