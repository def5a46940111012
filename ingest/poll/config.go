package poll

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// Config is one poller: one source for one tenant. In YAML it is one entry of
// the `pollers:` list; `config:` is handed untouched to the connector.
//
//   - source: google_workspace
//     tenant: acme
//     poll_interval: 1m
//     overlap: 4h
//     config:
//     customer_id: my_customer
//     service_account_file: /etc/tokenwatch/sa.json
//     admin_email: admin@acme.example
type Config struct {
	// Source is the registered connector id (ingest.Names()).
	Source string `yaml:"source"`
	// Tenant labels the events (when a record carries none) and keys the cursor.
	Tenant string `yaml:"tenant"`
	// PollInterval is the wait between two passes that reached the end of the
	// log. A pass cut short by MaxPagesPerPoll continues without waiting.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Overlap is how far behind the newest event already read every pass
	// starts again. Audit APIs publish some events late: Google documents that
	// Reports API token activity can take hours to appear, so a pass that
	// resumed exactly at the last event time would never see an event that is
	// older than that but became visible after it (Grove's known gap, grove
	// issues #17 and #20). Re-reading a trailing window sized to the source's
	// lag, with dedup by event id, closes it. Events later than Overlap are
	// still missed: set it to the source's documented worst lag (4h or more
	// for google_workspace).
	Overlap time.Duration `yaml:"overlap"`
	// InitialLookback is how far back a poller with no stored cursor starts.
	InitialLookback time.Duration `yaml:"initial_lookback"`
	// MaxPagesPerPoll bounds one cycle; a longer pass resumes from its saved
	// cursor in the next cycle.
	MaxPagesPerPoll int `yaml:"max_pages_per_poll"`
	// MaxSeen caps the dedup set (see README for the memory it implies).
	MaxSeen int `yaml:"max_seen"`
	// RetryMaxElapsed bounds the retries of one page fetch before the cycle
	// fails (Run then backs off and tries again from the same cursor).
	RetryMaxElapsed time.Duration `yaml:"retry_max_elapsed"`
	// BaseURL overrides the vendor endpoint (tests, sovereign clouds).
	BaseURL string `yaml:"base_url"`
	// Connector is the connector's own config, decoded by its factory.
	Connector yaml.Node `yaml:"config"`
}

// Defaults.
const (
	DefaultPollInterval    = time.Minute
	DefaultOverlap         = time.Hour
	DefaultInitialLookback = 24 * time.Hour
	DefaultMaxPagesPerPoll = 100
	DefaultMaxSeen         = 100_000
	DefaultRetryMaxElapsed = 5 * time.Minute
)

// DefaultConfig is a Config with every default set; decode YAML over it.
func DefaultConfig() Config {
	return Config{PollInterval: DefaultPollInterval, Overlap: DefaultOverlap, InitialLookback: DefaultInitialLookback,
		MaxPagesPerPoll: DefaultMaxPagesPerPoll, MaxSeen: DefaultMaxSeen, RetryMaxElapsed: DefaultRetryMaxElapsed}
}

// UnmarshalYAML applies the defaults under what the YAML sets, then validates.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	d := plain(DefaultConfig())
	if err := yamlstrict.Decode(n, &d); err != nil {
		return err
	}
	*c = Config(d)
	return c.Validate()
}

// Validate checks the config without touching the network. It does not check
// that Source is registered (NewSource does, with the list of known names).
func (c Config) Validate() error {
	var errs []error
	if c.Source == "" {
		errs = append(errs, errors.New("source: required"))
	}
	if c.Tenant == "" {
		errs = append(errs, errors.New("tenant: required (it keys the cursor)"))
	}
	if c.PollInterval < time.Second {
		errs = append(errs, fmt.Errorf("poll_interval %s: must be at least 1s", c.PollInterval))
	}
	if c.Overlap < 0 {
		errs = append(errs, fmt.Errorf("overlap %s: must not be negative", c.Overlap))
	}
	if c.InitialLookback <= 0 {
		errs = append(errs, fmt.Errorf("initial_lookback %s: must be positive", c.InitialLookback))
	}
	if c.MaxPagesPerPoll < 1 {
		errs = append(errs, fmt.Errorf("max_pages_per_poll %d: must be at least 1", c.MaxPagesPerPoll))
	}
	if c.MaxSeen < 1 {
		errs = append(errs, fmt.Errorf("max_seen %d: must be at least 1", c.MaxSeen))
	}
	if c.RetryMaxElapsed <= 0 {
		errs = append(errs, fmt.Errorf("retry_max_elapsed %s: must be positive", c.RetryMaxElapsed))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("base_url %q: want an http(s) URL", c.BaseURL))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("poller %s/%s: %w", c.Source, c.Tenant, err)
	}
	return nil
}

// NewSource builds the connector named by Source from the `config:` node.
// client may be nil (http.DefaultClient).
func (c Config) NewSource(client *http.Client) (ingest.Source, error) {
	src, err := ingest.New(c.Source, yamlstrict.Func(&c.Connector), ingest.Options{Tenant: c.Tenant, BaseURL: c.BaseURL, Client: client})
	if err != nil {
		if slices.Contains(ingest.Names(), c.Source) {
			err = yamlstrict.At("config", err) // the connector refused its `config:`
		}
		return nil, fmt.Errorf("poller %s/%s: %w", c.Source, c.Tenant, err)
	}
	return src, nil
}
