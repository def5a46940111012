// Package config owns tokenwatch's one YAML config file: its shape, defaults,
// environment overrides and validation. Every role validates the same way at
// start, so a bad file fails fast with the field named.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/detect/stream"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/ingest/intake"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// Config is the whole file. Each section's type belongs to the package that
// runs it; this package only puts them together, fills defaults and reads the
// environment.
type Config struct {
	Log        Log               `yaml:"log"`
	HTTP       HTTP              `yaml:"http"`
	Kafka      broker.Config     `yaml:"kafka"`
	ClickHouse clickhouse.Config `yaml:"clickhouse"`
	GeoIP      geoip.Config      `yaml:"geoip"`
	Inventory  inventory.Config  `yaml:"inventory"`
	Ingest     intake.Config     `yaml:"ingest"`
	Detect     Detect            `yaml:"detect"`
	Deliver    dispatch.Config   `yaml:"deliver"`
	// Respond is the respond stage's policy and vendor credentials; nil
	// (the section absent) turns the stage off.
	Respond *respond.Config `yaml:"respond"`
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

// Detect configures detection: the detectors (the detect program) and the
// detect role's batches and checkpoints.
type Detect struct {
	// Detectors maps a detector id to its config; `enabled: false` turns it off.
	Detectors map[string]yaml.Node `yaml:"detectors"`
	// Rules are the Sigma rules run as detectors (detect/sigma); the
	// shipped ones are on by default.
	Rules sigma.Config `yaml:"rules"`
	// Correlate turns alerts into incidents (detect/correlate).
	Correlate     correlate.Config `yaml:"correlate"`
	stream.Config `yaml:",inline"`
}

// Program is what the detect program is built from: the same for run,
// replay, eval and the benchmarks.
func (c *Config) Program() program.Config {
	cc := c.Detect.Correlate
	return program.Config{Detectors: c.Detect.Detectors, Rules: c.Detect.Rules, Correlate: &cc, GeoIP: c.GeoIP, Catalog: c.Inventory}
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Log:        Log{Level: "info", Format: "text"},
		HTTP:       HTTP{Listen: ":9464"},
		Inventory:  inventory.DefaultConfig(),
		GeoIP:      geoip.DefaultConfig(),
		Ingest:     intake.DefaultConfig(),
		Kafka:      broker.DefaultConfig(),
		ClickHouse: clickhouse.DefaultConfig(),
		Detect:     Detect{Config: stream.DefaultConfig(), Correlate: correlate.DefaultConfig(), Rules: sigma.DefaultConfig()},
		Deliver:    dispatch.DefaultConfig(),
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

// Read is Load that also returns the bytes it parsed: what the detect
// role's config watcher compares later edits with.
func Read(path string) (Config, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(b, path)
	return cfg, b, err
}

// Parse decodes config bytes; name labels errors.
func Parse(b []byte, name string) (Config, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	// Strict at every depth, including the nodes the sections' own
	// UnmarshalYAML decode (pollers, sinks); errors name the key path.
	if err := yamlstrict.Decode(&doc, &cfg); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	cfg.ApplyEnv(os.LookupEnv)
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

// LoadClickHouse reads only the clickhouse section of the file (strictly,
// with the environment overrides): what `tokenwatch migrate` needs. The
// other sections, and the secrets their sinks and pollers reference, are not
// read, so migrating needs no credentials but ClickHouse's.
func LoadClickHouse(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	cfg := Default()
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if err := yamlstrict.Decode(yamlstrict.Get(root, "clickhouse"), &cfg.ClickHouse); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, yamlstrict.At("clickhouse", err))
	}
	cfg.ApplyEnv(os.LookupEnv)
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
	if c.HTTP.Listen != "" {
		if err := validate.HostPort("http.listen", c.HTTP.Listen, true); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ClickHouseEnabled() {
		if err := c.ClickHouse.Validate(); err != nil {
			errs = append(errs, err)
		}
		for i, a := range c.ClickHouse.Addr {
			if err := validate.HostPort(fmt.Sprintf("clickhouse.addr[%d]", i), a, false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, err := range []error{c.GeoIP.Validate(), c.Inventory.Validate(), c.Ingest.Validate(), c.Detect.Config.Validate(), c.Detect.Correlate.Validate(), c.Deliver.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Respond != nil {
		if err := c.Respond.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Respond != nil && c.Respond.Slack != nil {
		errs = append(errs, c.slackApprovals()...)
	}
	if len(c.Ingest.Push.Sources) > 0 && c.HTTP.Listen == "" {
		errs = append(errs, errors.New("ingest.push.sources: needs http.listen (pushes arrive on the HTTP listener)"))
	}
	if c.Deliver.EventsToClickHouse && !c.ClickHouseEnabled() {
		// Not an error: the embedded default runs without ClickHouse.
		c.Deliver.EventsToClickHouse = false
	}
	return errors.Join(errs...)
}

// slackApprovals checks what respond.slack needs from the other sections:
// the Slack sink it names, the HTTP listener the clicks arrive on, and
// ClickHouse, where the pending actions are read.
func (c *Config) slackApprovals() []error {
	sc := c.Respond.Slack
	var errs []error
	found := false
	for _, s := range c.Deliver.Sinks {
		if s.Name == sc.Sink {
			found = true
			if s.Kind != "slack" {
				errs = append(errs, fmt.Errorf("respond.slack.sink %q: a %s sink, want kind slack (in bot mode)", sc.Sink, s.Kind))
			}
		}
	}
	if !found && sc.Sink != "" {
		errs = append(errs, fmt.Errorf("respond.slack.sink %q: no deliver.sinks entry of that name", sc.Sink))
	}
	if c.HTTP.Listen == "" {
		errs = append(errs, errors.New("respond.slack: needs http.listen (Slack posts the clicks to the HTTP listener)"))
	}
	if !c.ClickHouseEnabled() {
		errs = append(errs, errors.New("respond.slack: needs clickhouse.addr (pending approvals are read from the responses table)"))
	}
	for _, taken := range []string{"/metrics", "/healthz", "/readyz"} {
		if sc.Path == taken || strings.HasPrefix(sc.Path, "/ingest/") {
			errs = append(errs, fmt.Errorf("respond.slack.path %q: taken by the HTTP server's own endpoints (/metrics, /healthz, /readyz, /ingest/…)", sc.Path))
		}
	}
	return errs
}
