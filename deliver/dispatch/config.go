package dispatch

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// Config is the `deliver:` section: retries, the sinks and their routes,
// and the ClickHouse events writer.
type Config struct {
	Retry deliver.RetryPolicy `yaml:"retry"`
	Sinks []SinkConfig        `yaml:"sinks"`
	// Routes send incidents, and alerts where a route or sink asks for them,
	// to sinks by severity, detector, tenant, criticality; none = every sink
	// gets every incident, and every alert unless it pages a person
	// (SinkConfig.Alerts). The ClickHouse tables always get all.
	Routes deliver.Routes `yaml:"routes"`
	// EventsToClickHouse writes every event to the events table (needs clickhouse.addr).
	EventsToClickHouse bool `yaml:"events_to_clickhouse"`
	// DedupWindow: an alert id delivered to a sink is not delivered to it
	// again within this window, across restarts (tokenwatch.delivered).
	DedupWindow   time.Duration `yaml:"dedup_window"`
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// DefaultConfig is the deliver role's default.
func DefaultConfig() Config {
	return Config{Retry: deliver.DefaultRetryPolicy(), EventsToClickHouse: true, BatchSize: 50000, DedupWindow: 7 * 24 * time.Hour,
		FlushInterval: 200 * time.Millisecond}
}

// SinkConfig is one configured alert sink.
type SinkConfig struct {
	Name      string                  `yaml:"name"`
	Kind      string                  `yaml:"kind"`
	Config    yaml.Node               `yaml:"config"`
	Breaker   deliver.BreakerConfig   `yaml:"breaker"`
	RateLimit deliver.RateLimitConfig `yaml:"rate_limit"`
	// Alerts: whether the sink gets alerts where routing leaves it to the
	// sink (no routes, or a route without its own alerts switch). Unset:
	// true, except for sinks that page a person (pagerduty; slack with a
	// bot_token), which get incidents instead.
	Alerts *bool `yaml:"alerts"`
	// Incidents: whether the sink gets incidents (tokenwatch.incidents);
	// unset means yes when the sink can deliver them.
	Incidents *bool `yaml:"incidents"`
}

// Decode fills a sink's own config struct from its `config:` node (nothing
// when the node is absent): the decode function deliver.New takes.
func (s SinkConfig) Decode(v any) error {
	return yamlstrict.Decode(&s.Config, v) // unknown keys are errors at any depth
}

// UnmarshalYAML applies the sink defaults before decoding.
func (s *SinkConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain SinkConfig
	p := plain{Breaker: deliver.DefaultBreakerConfig()}
	if err := yamlstrict.Decode(n, &p); err != nil {
		return err
	}
	*s = SinkConfig(p)
	return nil
}

// Validate checks the section (filling sink breaker defaults) and names the
// field at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 {
		errs = append(errs, errors.New("deliver.batch_size: must be at least 1"))
	}
	if c.DedupWindow <= 0 {
		errs = append(errs, errors.New("deliver.dedup_window: must be a positive duration like 168h"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, errors.New("deliver.flush_interval: must be a positive duration like 200ms"))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("deliver.retry.%w", err))
	}
	seen := map[string]bool{}
	names := make([]string, 0, len(c.Sinks))
	for i := range c.Sinks {
		s := &c.Sinks[i]
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
	if err := c.Routes.Validate(names); err != nil {
		errs = append(errs, fmt.Errorf("deliver.routes: %w", err))
	}
	return errors.Join(errs...)
}
