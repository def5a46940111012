package inventory

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Config names the integration catalog (the `inventory:` section of the
// config), reloaded when it changes.
type Config struct {
	Path           string        `yaml:"path"`
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// DiscoveryInterval is how often discovered integrations are written to
	// the ClickHouse integrations table.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
}

// DefaultConfig: no catalog; checked every 30 s once configured.
func DefaultConfig() Config {
	return Config{ReloadInterval: 30 * time.Second, DiscoveryInterval: time.Minute}
}

// Validate names the field at fault.
func (c Config) Validate() error {
	var errs []error
	if c.Path != "" {
		if _, err := os.Stat(c.Path); err != nil {
			errs = append(errs, fmt.Errorf("inventory.path: %w", err))
		}
	}
	if c.ReloadInterval <= 0 || c.DiscoveryInterval <= 0 {
		errs = append(errs, errors.New("inventory.reload_interval and inventory.discovery_interval: must be positive durations"))
	}
	return errors.Join(errs...)
}
