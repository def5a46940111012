package geoip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Reloading is an Enricher that swaps in new database files when they change
// on disk (MaxMind ships weekly updates; geoipupdate replaces the files), with
// no restart and no pause: lookups keep using the old databases until the new
// ones opened cleanly.
type Reloading struct {
	city, asn string
	cacheSize int
	cur       atomic.Pointer[Enricher]
	stamp     atomic.Value // string: the files' size+mtime at the last load
	// OnReload is called after each reload attempt (nil error: swapped).
	OnReload func(*Enricher, error)
}

// OpenReloading opens the databases and remembers their paths for Watch.
func OpenReloading(cityPath, asnPath string, cacheSize int) (*Reloading, error) {
	r := &Reloading{city: cityPath, asn: asnPath, cacheSize: cacheSize}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Current is the Enricher in use.
func (r *Reloading) Current() *Enricher { return r.cur.Load() }

// Enrich implements enrich.Enricher.
func (r *Reloading) Enrich(ev *schemas.Event) { r.cur.Load().Enrich(ev) }

// Reload opens the files again if they changed since the last load. A file
// that fails to open keeps the old databases in use.
func (r *Reloading) Reload() (bool, error) {
	st, err := stamp(r.city, r.asn)
	if err != nil {
		return false, err
	}
	if old, _ := r.stamp.Load().(string); old == st && r.cur.Load() != nil {
		return false, nil
	}
	e, err := Open(r.city, r.asn, r.cacheSize)
	if err != nil {
		return false, err
	}
	prev := r.cur.Swap(e)
	r.stamp.Store(st)
	if prev != nil {
		// In-flight lookups on prev finish within microseconds; closing later
		// avoids racing them.
		time.AfterFunc(time.Minute, func() { prev.Close() })
	}
	return true, nil
}

// Watch checks the files every interval until ctx ends.
func (r *Reloading) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := r.Reload()
			if (changed || err != nil) && r.OnReload != nil {
				r.OnReload(r.cur.Load(), err)
			}
		}
	}
}

// Close releases the current databases.
func (r *Reloading) Close() error { return r.cur.Load().Close() }

func stamp(paths ...string) (string, error) {
	s := ""
	for _, p := range paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("geoip: %w", err)
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// Config names the MaxMind databases (the `geoip:` section of the config).
type Config struct {
	City      string `yaml:"city"`
	ASN       string `yaml:"asn"`
	CacheSize int    `yaml:"cache_size"`
	// ReloadInterval is how often the files are checked for an update.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultConfig: no databases, checked every minute once configured.
func DefaultConfig() Config { return Config{ReloadInterval: time.Minute} }

// Enabled reports whether any database is configured.
func (c Config) Enabled() bool { return c.City != "" || c.ASN != "" }

// Validate names the field at fault.
func (c Config) Validate() error {
	var errs []error
	for _, p := range []struct{ field, path string }{{"geoip.city", c.City}, {"geoip.asn", c.ASN}} {
		if p.path != "" {
			if _, err := os.Stat(p.path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.field, err))
			}
		}
	}
	if c.ReloadInterval <= 0 {
		errs = append(errs, errors.New("geoip.reload_interval: must be a positive duration like 1m"))
	}
	return errors.Join(errs...)
}
