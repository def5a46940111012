package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/slack"
	"github.com/tokenwatch/tokenwatch/detect/chain/sharedip"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/ingest/kafkasource"
	"github.com/tokenwatch/tokenwatch/ingest/poll"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/ingest/push"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
)

// Roles a process can run.
const (
	RoleIngest  = "ingest"
	RoleDetect  = "detect"
	RoleDeliver = "deliver"
)

// ParseRoles reads a comma-separated role list ("all" or empty = every role).
func ParseRoles(s string) ([]string, error) {
	if s == "" || s == "all" {
		return []string{RoleIngest, RoleDetect, RoleDeliver}, nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r != RoleIngest && r != RoleDetect && r != RoleDeliver {
			return nil, fmt.Errorf("role %q: want ingest, detect, deliver or all", r)
		}
		out = append(out, r)
	}
	return out, nil
}

// Build prepares a pipeline from cfg: the embedded broker when no brokers are
// configured (cfg.Kafka.Brokers is filled in), topics, GeoIP, detectors and,
// when configured, ClickHouse. close releases all of it.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger) (p *Pipeline, closeFn func(), err error) {
	var closers []func()
	closeFn = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeFn()
		}
	}()
	if len(cfg.Kafka.Brokers) == 0 {
		b, err := embedded.Start(cfg.Kafka.Partitions, cfg.Kafka.DataDir)
		if err != nil {
			return nil, closeFn, err
		}
		closers = append(closers, b.Close)
		cfg.Kafka.Brokers = b.Addrs()
		log.Info("started in-process Kafka broker", "addrs", cfg.Kafka.Brokers, "data_dir", cfg.Kafka.DataDir)
	}
	if err := broker.EnsureTopics(ctx, cfg.Kafka, broker.AllTopics...); err != nil {
		return nil, closeFn, err
	}
	p = &Pipeline{Cfg: cfg, Log: log, Registry: prometheus.NewRegistry()}
	p.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.Metrics = NewMetrics(p.Registry)
	if cfg.GeoIP.City != "" || cfg.GeoIP.ASN != "" {
		g, err := geoip.OpenReloading(cfg.GeoIP.City, cfg.GeoIP.ASN, cfg.GeoIP.CacheSize)
		if err != nil {
			return nil, closeFn, err
		}
		closers = append(closers, func() { g.Close() })
		p.Enricher = g
		p.geo = g
		m := p.Metrics
		setAge := func(e *geoip.Enricher, err error) {
			if err != nil {
				log.Warn("geoip reload failed, keeping the loaded databases", "err", err)
				return
			}
			for db, built := range e.BuildTimes() {
				m.GeoIPDatabaseAge.WithLabelValues(db).Set(time.Since(built).Seconds())
			}
			log.Info("geoip databases loaded")
		}
		g.OnReload = setAge
		setAge(g.Current(), nil)
	}
	if cfg.Inventory.Path != "" {
		inv, err := inventory.Open(cfg.Inventory.Path, inventory.Options{Logger: log.With("component", "inventory")})
		if err != nil {
			return nil, closeFn, err
		}
		p.Inventory = inv
		p.Discovery = inventory.NewDiscovery(0)
	}
	var chain enrich.Chain
	if p.Enricher != nil {
		chain = append(chain, p.Enricher)
	}
	if p.Inventory != nil {
		chain = append(chain, p.Inventory)
	}
	p.Enricher = chain
	sip, rest, err := sharedip.FromConfig(cfg.Detect.Detectors)
	if err != nil {
		return nil, closeFn, err
	}
	if sip.Enabled() {
		p.SharedIP = sip
	}
	if p.Detectors, err = engine.Build(rest); err != nil {
		return nil, closeFn, err
	}
	if cfg.ClickHouseEnabled() {
		c, err := clickhouse.Open(ctx, cfg.ClickHouse)
		if err != nil {
			return nil, closeFn, err
		}
		closers = append(closers, func() { c.Close() })
		if err := c.Ping(ctx); err != nil {
			return nil, closeFn, fmt.Errorf("clickhouse %v: %w", cfg.ClickHouse.Addr, err)
		}
		p.CH = c
		if p.Discovery != nil {
			if rows, err := c.ReadIntegrations(ctx); err == nil {
				seed := make([]inventory.Sighting, len(rows))
				for i, r := range rows {
					seed[i] = inventory.Sighting(r)
				}
				p.Discovery.Seed(seed)
			}
		}
	}
	return p, closeFn, nil
}

// Sinks builds the configured alert sinks, plus the ClickHouse alerts table
// when ClickHouse is configured.
func (p *Pipeline) Sinks() ([]deliver.Sink, error) {
	var out []deliver.Sink
	if p.CH != nil {
		out = append(out, clickhouse.NewAlertSink(ClickHouseAlertSink, p.CH))
	}
	for i, s := range p.Cfg.Deliver.Sinks {
		sink, err := deliver.New(s.Kind, s.Name, s.Decode)
		if err != nil {
			return nil, fmt.Errorf("deliver.sinks[%d] (%s): %w", i, s.Name, err)
		}
		if sl, ok := sink.(*slack.Sink); ok && p.Inventory != nil {
			inv := p.Inventory
			sl.Owners = func(id string) string {
				if e, ok := inv.Catalog().Entry(id); ok {
					return e.Owner
				}
				return ""
			}
		}
		// Rate limit inside the breaker: waiting for a token is not a failure.
		if s.RateLimit.PerSecond > 0 {
			if sink, err = deliver.NewRateLimited(sink, s.RateLimit); err != nil {
				return nil, fmt.Errorf("deliver.sinks[%d].rate_limit: %w", i, err)
			}
		}
		m := p.Metrics
		if sink, err = deliver.NewBreaker(sink, s.Breaker, func(name, _, to string) {
			v := 0.0
			if to == "open" {
				v = 1
			}
			m.BreakerOpen.WithLabelValues(name).Set(v)
		}); err != nil {
			return nil, fmt.Errorf("deliver.sinks[%d].breaker: %w", i, err)
		}
		out = append(out, sink)
	}
	return out, nil
}

// Run starts roles and blocks until ctx ends or a role fails. Files from
// ingest.files are ingested once by the ingest role. extra sinks (the demo's
// console) run beside the configured ones.
func (p *Pipeline) Run(ctx context.Context, roles []string, extra ...deliver.Sink) error {
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
	if p.geo != nil {
		start("geoip reload", func(ctx context.Context) error { p.geo.Watch(ctx, p.Cfg.GeoIP.ReloadInterval); return nil })
	}
	if p.Inventory != nil {
		start("inventory reload", func(ctx context.Context) error { p.Inventory.Watch(ctx, p.Cfg.Inventory.ReloadInterval); return nil })
	}
	if slices.Contains(roles, RoleDetect) {
		start("detect", p.RunDetect)
		if p.SharedIP != nil {
			start("detect-ip", p.RunDetectIP)
		}
		if p.CH != nil && p.Discovery != nil {
			start("discovery", p.RunDiscovery)
		}
	}
	if slices.Contains(roles, RoleDeliver) {
		sinks, err := p.Sinks()
		if err != nil {
			return err
		}
		for _, s := range append(sinks, extra...) {
			s := s
			start("sink "+s.Name(), func(ctx context.Context) error { return p.RunSink(ctx, s) })
			if c, ok := s.(deliver.Closer); ok {
				defer c.Close()
			}
		}
		if p.CH != nil && p.Cfg.Deliver.EventsToClickHouse {
			start("clickhouse events", p.RunEventWriter)
		}
	}
	if slices.Contains(roles, RoleIngest) && (len(p.Cfg.Ingest.Pollers) > 0 || len(p.Cfg.Ingest.Push.Sources) > 0 || len(p.Cfg.Ingest.KafkaSources) > 0) {
		pub := publish.New(p.Cfg.Kafka)
		defer pub.Close()
		ip := &ingestPublisher{p: p, pub: pub}
		for _, ks := range p.Cfg.Ingest.KafkaSources {
			ks := ks
			start("kafka source "+ks.Topic, func(ctx context.Context) error {
				return kafkasource.Run(ctx, ks, ip, p.Log.With("component", "kafkasource", "source", ks.Source, "topic", ks.Topic))
			})
		}
		if len(p.Cfg.Ingest.Push.Sources) > 0 {
			h, err := push.New(p.Cfg.Ingest.Push, ip, p.Log.With("component", "push"))
			if err != nil {
				return fmt.Errorf("ingest.push: %w", err)
			}
			p.push = h
		}
		if len(p.Cfg.Ingest.Pollers) > 0 {
			store, err := cursor.OpenKafka(ctx, p.Cfg.Kafka)
			if err != nil {
				return err
			}
			defer store.Close()
			for _, pc := range p.Cfg.Ingest.Pollers {
				pl, err := poll.NewFromConfig(pc, store, ip, p.Log.With("component", "poll", "source", pc.Source, "tenant", pc.Tenant))
				if err != nil {
					return fmt.Errorf("ingest.pollers %s/%s: %w", pc.Source, pc.Tenant, err)
				}
				errs := p.Metrics.PollErrors.WithLabelValues(pc.Source, pc.Tenant)
				pl.OnError = func(error) { errs.Inc() }
				key := pc.Source + "/" + pc.Tenant
				p.pollOK.Store(key, time.Now()) // the grace before the first poll completes
				pl.OnSuccess = func() { p.pollOK.Store(key, time.Now()) }
				start("poller "+pc.Source+"/"+pc.Tenant, pl.Run)
			}
			start("poll cursor age", func(ctx context.Context) error { p.watchCursors(ctx, store); return nil })
		}
	}
	if slices.Contains(roles, RoleIngest) && len(p.Cfg.Ingest.Files) > 0 {
		start("ingest files", func(ctx context.Context) error {
			pub := publish.New(p.Cfg.Kafka)
			defer pub.Close()
			for _, f := range p.Cfg.Ingest.Files {
				n, err := ingest.NewNormalizer(f.Source, f.Tenant)
				if err != nil {
					return err
				}
				if err := p.IngestFile(ctx, pub, n, f.Path); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if p.Cfg.HTTP.Listen != "" {
		start("http", func(ctx context.Context) error { return p.Serve(ctx, p.Cfg.HTTP.Listen) })
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
