// Package intake is the ingest role's runtime: it runs the configured
// pollers (durable cursors in tokenwatch.cursors), the signed push receiver,
// the Kafka-topic sources and the one-off file inputs, and publishes what
// they normalize through one publisher: the catalog's identity mapping (so
// one catalog integration is one partition whatever SaaS app reported it),
// counters, then Kafka, acknowledged before a cursor moves or a push is
// answered.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/ingest/kafkasource"
	"github.com/tokenwatch/tokenwatch/ingest/poll"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/ingest/push"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is the `ingest:` section.
type Config struct {
	// Files are raw vendor records to ingest once (dev, backfill): each keeps
	// a cursor in tokenwatch.cursors, so a restart does not ingest it again.
	Files []FileInput `yaml:"files"`
	// Pollers poll vendor audit APIs, one per (source, tenant).
	Pollers []poll.Config `yaml:"pollers"`
	// Push receives signed webhook pushes on POST /ingest/{source} (on http.listen).
	Push push.Config `yaml:"push"`
	// KafkaSources consume records exported to Kafka-protocol topics
	// (Microsoft Graph activity logs on Azure Event Hubs).
	KafkaSources []kafkasource.Config `yaml:"kafka_sources"`
	// MaxFutureSkew: a record dated more than this ahead of the ingest clock
	// is dead-lettered (stage event_time), never published (eventtime.go).
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// BackfillAfter: a record dated more than this behind the ingest clock is
	// published marked backfill, and so are the alerts it raises.
	BackfillAfter time.Duration `yaml:"backfill_after"`
}

// FileInput is a raw file and the source whose shape it holds.
type FileInput struct {
	Source string `yaml:"source"`
	Tenant string `yaml:"tenant"`
	Path   string `yaml:"path"`
}

// DefaultConfig is the ingest role's default: nothing configured.
func DefaultConfig() Config {
	return Config{Push: push.DefaultConfig(), MaxFutureSkew: DefaultMaxFutureSkew, BackfillAfter: DefaultBackfillAfter}
}

// Validate names the field at fault.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFutureSkew <= 0 {
		errs = append(errs, fmt.Errorf("ingest.max_future_skew %s: must be a positive duration like 5m", c.MaxFutureSkew))
	}
	if c.BackfillAfter <= 0 {
		errs = append(errs, fmt.Errorf("ingest.backfill_after %s: must be a positive duration like 168h", c.BackfillAfter))
	}
	pollKeys := map[string]bool{}
	for i, pc := range c.Pollers {
		if err := pc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("ingest.pollers[%d]: %w", i, err))
		}
		k := pc.Source + "/" + pc.Tenant
		if pollKeys[k] {
			errs = append(errs, fmt.Errorf("ingest.pollers[%d]: a second poller for source %q tenant %q (their cursors would collide)", i, pc.Source, pc.Tenant))
		}
		pollKeys[k] = true
	}
	for i, ks := range c.KafkaSources {
		if err := ks.Validate(); err != nil {
			errs = append(errs, yamlstrict.At(fmt.Sprintf("ingest.kafka_sources[%d]", i), err))
		}
	}
	if err := c.Push.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ingest.push: %w", err))
	}
	for i, f := range c.Files {
		if f.Source == "" || f.Path == "" {
			errs = append(errs, fmt.Errorf("ingest.files[%d]: source and path are required", i))
		}
	}
	return errors.Join(errs...)
}

// Mapper maps each source's identities to catalog integrations before
// events are keyed (the detect program's catalog).
type Mapper interface{ Enrich(ev *schemas.Event) }

// Stats counts what went through, for the demo's progress and tests.
type Stats struct {
	EventsPublished atomic.Int64
	DeadLetters     atomic.Int64
	// FilesIngested is how many ingest.files inputs are published to their
	// end: a file goes out in steps, so a published count alone does not
	// say the file is done.
	FilesIngested atomic.Int64
}

// Role runs the ingest inputs.
type Role struct {
	cfg    Config
	kafka  broker.Config
	mapper Mapper // nil without a catalog
	log    *slog.Logger
	km     *broker.Metrics
	m      *Metrics
	Stats  Stats
	pub    *publisher
	push   *push.Handler    // nil without push sources
	pollOK sync.Map         // "source/tenant" → time.Time of the last completed poll
	now    func() time.Time // the ingest clock (event-time bounds)
}

// New returns the role with its publisher and push receiver (mounted by
// Register). mapper may be nil. Close releases the publisher.
func New(cfg Config, kafkaCfg broker.Config, mapper Mapper, m *Metrics, km *broker.Metrics, log *slog.Logger) (*Role, error) {
	r := &Role{cfg: cfg, kafka: kafkaCfg, mapper: mapper, log: log, km: km, m: m, now: time.Now}
	r.pub = &publisher{r: r, pub: publish.New(kafkaCfg)}
	if len(cfg.Push.Sources) > 0 {
		h, err := push.New(cfg.Push, r.pub, log.With("component", "push"))
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("ingest.push: %w", err)
		}
		r.push = h
	}
	return r, nil
}

// Close releases the publisher (after Run returned).
func (r *Role) Close() { r.pub.pub.Close() }

// publisher is what pollers, the push receiver, Kafka sources and file
// inputs publish through: the event-time bounds, the catalog mapping,
// counters, then Kafka.
type publisher struct {
	r   *Role
	pub eventPublisher
}

type eventPublisher interface {
	Events(ctx context.Context, evs []schemas.Event) error
	DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error
	Close() error
}

// Events publishes evs, except those dated beyond ingest.max_future_skew,
// which it dead-letters (both acknowledged before it returns).
func (p *publisher) Events(ctx context.Context, evs []schemas.Event) error {
	evs, future := boundEventTimes(evs, p.r.now(), p.r.cfg.MaxFutureSkew, p.r.cfg.BackfillAfter)
	if err := p.events(ctx, evs); err != nil {
		return err
	}
	if len(future) == 0 {
		return nil
	}
	for _, d := range future {
		p.r.log.Warn("dead-lettered record dated in the future", "source", d.Source, "input", d.Input, "reason", d.Reason)
	}
	return p.DeadLetters(ctx, future)
}

func (p *publisher) events(ctx context.Context, evs []schemas.Event) error {
	if p.r.mapper != nil {
		for i := range evs {
			p.r.mapper.Enrich(&evs[i])
		}
	}
	if err := p.pub.Events(ctx, evs); err != nil {
		return err
	}
	p.r.Stats.EventsPublished.Add(int64(len(evs)))
	for i := range evs {
		p.r.m.events.WithLabelValues(evs[i].Source, evs[i].Tenant).Inc()
	}
	return nil
}

func (p *publisher) DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error {
	if err := p.pub.DeadLetters(ctx, dls); err != nil {
		return err
	}
	p.r.Stats.DeadLetters.Add(int64(len(dls)))
	for _, d := range dls {
		p.r.km.DeadLetters.WithLabelValues(d.Stage, d.Source).Inc()
	}
	return nil
}

// Register mounts the push receiver on mux (nothing without push sources).
func (r *Role) Register(mux *http.ServeMux) {
	if r.push != nil {
		r.push.Register(mux)
	}
}

// Run runs every configured input until ctx ends; file inputs are ingested
// once.
func (r *Role) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	ip := r.pub
	for _, ks := range r.cfg.KafkaSources {
		start("kafka source "+ks.Topic, func(ctx context.Context) error {
			return kafkasource.Run(ctx, ks, ip, r.log.With("component", "kafkasource", "source", ks.Source, "topic", ks.Topic))
		})
	}
	var store cursor.Store
	if len(r.cfg.Pollers) > 0 || len(r.cfg.Files) > 0 {
		ks, err := cursor.OpenKafka(ctx, r.kafka)
		if err != nil {
			return err
		}
		defer ks.Close()
		store = ks
	}
	if len(r.cfg.Pollers) > 0 {
		for _, pc := range r.cfg.Pollers {
			pl, err := poll.NewFromConfig(pc, store, ip, r.log.With("component", "poll", "source", pc.Source, "tenant", pc.Tenant))
			if err != nil {
				return fmt.Errorf("ingest.pollers %s/%s: %w", pc.Source, pc.Tenant, err)
			}
			errs := r.m.pollErrors.WithLabelValues(pc.Source, pc.Tenant)
			pl.OnError = func(error) { errs.Inc() }
			key := pc.Source + "/" + pc.Tenant
			r.pollOK.Store(key, time.Now()) // the grace before the first poll completes
			pl.OnSuccess = func() { r.pollOK.Store(key, time.Now()) }
			start("poller "+key, pl.Run)
		}
		start("poll cursor age", func(ctx context.Context) error { r.watchCursors(ctx, store); return nil })
	}
	if len(r.cfg.Files) > 0 {
		start("ingest files", func(ctx context.Context) error {
			for _, f := range r.cfg.Files {
				if err := r.ingestFileOnce(ctx, ip, store, f); err != nil {
					return err
				}
				r.Stats.FilesIngested.Add(1)
			}
			return nil
		})
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Stalled reports pollers that have not completed a cycle in three intervals
// plus their retry budget (vendor down, credentials revoked, rate limited for
// good), for /readyz.
func (r *Role) Stalled() []error {
	var errs []error
	for _, pc := range r.cfg.Pollers {
		if v, ok := r.pollOK.Load(pc.Source + "/" + pc.Tenant); ok {
			if since := time.Since(v.(time.Time)); since > 3*pc.PollInterval+pc.RetryMaxElapsed {
				errs = append(errs, fmt.Errorf("poller %s/%s stalled: no completed poll for %s", pc.Source, pc.Tenant, since.Round(time.Second)))
			}
		}
	}
	return errs
}

// watchCursors publishes each poller's cursor age every 15 s: a stalled
// poller shows as a growing age.
func (r *Role) watchCursors(ctx context.Context, store cursor.Store) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		for _, pc := range r.cfg.Pollers {
			if c, ok, err := store.Load(ctx, pc.Source, pc.Tenant); err == nil && ok && !c.Time.IsZero() {
				r.m.pollLag.WithLabelValues(pc.Source, pc.Tenant).Set(time.Since(c.Time).Seconds())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
