// Package wiring puts tokenwatch's stages together from the config: the
// broker (embedded when none is configured), the detect program, ClickHouse,
// and the three roles — ingest (ingest/intake), detect (detect/stream) and
// deliver (deliver/dispatch) — plus the HTTP endpoints. It only reads config
// and wires; each stage owns its runtime.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/dispatch"
	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/ssf"
	"github.com/tokenwatch/tokenwatch/deliver/slack"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/stream"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/intake"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

// Roles a process can run.
const (
	RoleIngest  = "ingest"
	RoleDetect  = "detect"
	RoleDeliver = "deliver"
)

// ClickHouseAlertSink names the built-in sink writing every alert to ClickHouse.
const ClickHouseAlertSink = dispatch.ClickHouseAlertSink

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

// Metrics are every instrument a process exposes, registered together.
type Metrics struct {
	Kafka   *broker.Metrics
	Ingest  *intake.Metrics
	Detect  *stream.Metrics
	Deliver *dispatch.Metrics
	Respond *respond.Metrics
	SSF     *ssf.Metrics
	Slack   *slack.ApprovalMetrics
	// GeoIPDatabaseAge is set on every (re)load of the GeoIP databases.
	GeoIPDatabaseAge *prometheus.GaugeVec
}

// NewMetrics creates and registers every role's instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Kafka: broker.NewMetrics(reg), Ingest: intake.NewMetrics(reg), Detect: stream.NewMetrics(reg), Deliver: dispatch.NewMetrics(reg), Respond: respond.NewMetrics(reg), SSF: ssf.NewMetrics(reg),
		Slack: slack.NewApprovalMetrics(reg),
		GeoIPDatabaseAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_geoip_database_age_seconds",
			Help: "Age of the loaded GeoIP database (from its build epoch)."}, []string{"database"})}
	reg.MustRegister(m.GeoIPDatabaseAge)
	reg.MustRegister(ingest.Collectors()...)
	return m
}

// Stats reads the roles' counters, for the demo's progress and tests.
type Stats struct {
	EventsPublished, DeadLetters   *atomic.Int64 // ingest
	FilesIngested                  *atomic.Int64 // ingest: files published to their end
	EventsDetected, AlertsProduced *atomic.Int64 // detect
	IncidentsProduced              *atomic.Int64 // detect: incident versions
	EventsWritten                  *atomic.Int64 // deliver
	deliver                        *dispatch.Stats
	detect                         *stream.Stats
}

// Incidents returns each incident id the detect role produced with its
// highest version.
func (s Stats) Incidents() map[string]int { return s.detect.Incidents() }

// Delivered returns how many alerts sink has delivered.
func (s Stats) Delivered(sink string) int64 { return s.deliver.Delivered(sink) }

// DeadAlerts returns how many alerts sink dead-lettered.
func (s Stats) DeadAlerts(sink string) int64 { return s.deliver.DeadAlerts(sink) }

// Pipeline is one process's wired stages.
type Pipeline struct {
	Cfg     config.Config
	Log     *slog.Logger
	Program *program.Program
	Ingest  *intake.Role
	Detect  *stream.Role
	Deliver *dispatch.Role
	Respond *respond.Role    // nil without a respond: section
	SSF     *ssf.Transmitter // nil without respond.ssf
	// SlackApprovals is respond.slack: buttons on the Slack sink's incident
	// messages and the endpoint their clicks reach; nil without it.
	SlackApprovals *slack.Approvals
	// decides is whether this process runs the respond stage, which the
	// clicks are decided by (Run sets it before serving HTTP).
	decides  atomic.Bool
	CH       *clickhouse.Client // nil without ClickHouse
	Stats    Stats
	Registry *prometheus.Registry
	metrics  *Metrics
	disc     *inventory.Discovery // nil without a catalog
}

// Build prepares a pipeline from cfg: the embedded broker when no brokers are
// configured (cfg.Kafka.Brokers is filled in), the detect program, topics,
// ClickHouse when configured, and the roles. closeFn releases all of it.
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
	prog, err := program.Build(cfg.Program(), program.Options{Logger: log})
	if err != nil {
		return nil, closeFn, err
	}
	closers = append(closers, prog.Close)
	if len(cfg.Kafka.Brokers) == 0 {
		b, err := embedded.Start(cfg.Kafka.Partitions, cfg.Kafka.DataDir)
		if err != nil {
			return nil, closeFn, err
		}
		closers = append(closers, b.Close)
		cfg.Kafka.Brokers = b.Addrs()
		log.Info("started in-process Kafka broker", "addrs", cfg.Kafka.Brokers, "data_dir", cfg.Kafka.DataDir)
	}
	if err := broker.EnsureTopics(ctx, cfg.Kafka, append(slices.Clone(broker.AllTopics), prog.Topics()...)...); err != nil {
		return nil, closeFn, err
	}
	p = &Pipeline{Cfg: cfg, Log: log, Program: prog, Registry: prometheus.NewRegistry()}
	p.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.metrics = NewMetrics(p.Registry)
	if g := prog.GeoIP(); g != nil {
		age := p.metrics.GeoIPDatabaseAge
		setAge := func(e *geoip.Enricher, err error) {
			if err != nil {
				log.Warn("geoip reload failed, keeping the loaded databases", "err", err)
				return
			}
			for db, built := range e.BuildTimes() {
				age.WithLabelValues(db).Set(time.Since(built).Seconds())
			}
			log.Info("geoip databases loaded")
		}
		g.OnReload = setAge
		setAge(g.Current(), nil)
	}
	if cfg.ClickHouseEnabled() {
		c, err := clickhouse.Open(ctx, cfg.ClickHouse)
		if err != nil {
			return nil, closeFn, err
		}
		closers = append(closers, func() { c.Close() })
		if err := clickHouseReady(ctx, c, cfg.ClickHouse); errors.Is(err, errClickHouseUnreachable) {
			log.Warn("starting without ClickHouse: its writers retry until it answers", "err", err)
		} else if err != nil {
			return nil, closeFn, err
		}
		p.CH = c
	}
	var mapper intake.Mapper
	if cat := prog.Catalog(); cat != nil {
		mapper = cat
		p.disc = inventory.NewDiscovery(0)
		if p.CH != nil {
			if rows, err := p.CH.ReadIntegrations(ctx); err == nil {
				seed := make([]inventory.Sighting, len(rows))
				for i, r := range rows {
					seed[i] = inventory.Sighting(r)
				}
				p.disc.Seed(seed)
			}
		}
	}
	m := p.metrics
	if p.Ingest, err = intake.New(cfg.Ingest, cfg.Kafka, mapper, m.Ingest, m.Kafka, log); err != nil {
		return nil, closeFn, err
	}
	closers = append(closers, p.Ingest.Close)
	p.Detect = stream.New(prog, cfg.Detect.Config, cfg.Kafka, m.Detect, m.Kafka, log)
	if p.disc != nil {
		p.Detect.OnEvent = p.disc.Observe
	}
	p.Deliver = dispatch.New(cfg.Deliver, cfg.Kafka, p.CH, prog, m.Deliver, m.Kafka, log)
	if cfg.Respond != nil {
		revokers, err := cfg.Respond.Revokers()
		if err != nil {
			return nil, closeFn, err
		}
		var catalog func() *inventory.Catalog
		if e := prog.Catalog(); e != nil {
			catalog = e.Catalog
		}
		var store respond.Store
		var recorders []respond.Recorder
		if p.CH != nil {
			store, recorders = p.CH, []respond.Recorder{p.CH}
		}
		p.Respond = respond.NewRole(*cfg.Respond, revokers, catalog, store, recorders, cfg.Kafka, p.metrics.Respond, log)
		if cfg.Respond.SSF != nil {
			if p.SSF, err = ssf.New(*cfg.Respond.SSF, p.metrics.SSF, log); err != nil {
				return nil, closeFn, err
			}
			p.Respond.Signal(p.SSF)
		}
		if sc := cfg.Respond.Slack; sc != nil {
			if err := p.wireSlackApprovals(*sc, log); err != nil {
				return nil, closeFn, err
			}
		}
	}
	p.Stats = Stats{EventsPublished: &p.Ingest.Stats.EventsPublished, DeadLetters: &p.Ingest.Stats.DeadLetters, FilesIngested: &p.Ingest.Stats.FilesIngested,
		EventsDetected: &p.Detect.Stats.EventsDetected, AlertsProduced: &p.Detect.Stats.AlertsProduced,
		IncidentsProduced: &p.Detect.Stats.IncidentsProduced,
		EventsWritten:     &p.Deliver.Stats.EventsWritten, deliver: &p.Deliver.Stats, detect: &p.Detect.Stats}
	return p, closeFn, nil
}

// Sinks builds the configured alert sinks, plus the ClickHouse alerts table
// when ClickHouse is configured.
func (p *Pipeline) Sinks() ([]deliver.Sink, error) { return p.Deliver.Sinks() }

// Redrive sends the alerts sink dead-lettered to it again.
func (p *Pipeline) Redrive(ctx context.Context, s deliver.Sink, idle time.Duration) (dispatch.RedriveResult, error) {
	return p.Deliver.Redrive(ctx, s, idle)
}

// Run starts roles and blocks until ctx ends or a role fails. extra sinks
// (the demo's console) run beside the configured ones.
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
	if g := p.Program.GeoIP(); g != nil {
		start("geoip reload", func(ctx context.Context) error { g.Watch(ctx, p.Cfg.GeoIP.ReloadInterval); return nil })
	}
	if cat := p.Program.Catalog(); cat != nil {
		start("inventory reload", func(ctx context.Context) error { cat.Watch(ctx, p.Cfg.Inventory.ReloadInterval); return nil })
	}
	if slices.Contains(roles, RoleDetect) {
		start("detect", p.Detect.Run)
		if p.CH != nil && p.disc != nil {
			start("discovery", func(ctx context.Context) error {
				return p.Deliver.RunIntegrations(ctx, p.Cfg.Inventory.DiscoveryInterval, p.drainDiscovered)
			})
		}
	}
	if slices.Contains(roles, RoleDeliver) {
		start("deliver", func(ctx context.Context) error { return p.Deliver.Run(ctx, extra...) })
		if p.Respond != nil {
			start("respond", p.Respond.Run)
		}
		if p.SSF != nil {
			start("ssf", p.SSF.Run)
		}
		if p.SlackApprovals != nil {
			p.decides.Store(true)
			start("slack approvals", p.SlackApprovals.Run)
		}
	}
	if slices.Contains(roles, RoleIngest) {
		start("ingest", p.Ingest.Run)
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

// wireSlackApprovals builds respond.slack: the clicks are decided by the
// respond stage (the CLI's path) against ClickHouse's pending actions, and
// the named Slack sink's incident messages carry the buttons.
func (p *Pipeline) wireSlackApprovals(sc respond.SlackApprovals, log *slog.Logger) error {
	if p.CH == nil { // config.Validate asks for clickhouse.addr
		return errors.New("respond.slack: pending approvals are kept in ClickHouse: set clickhouse.addr")
	}
	p.SlackApprovals = slack.NewApprovals(sc, p.Respond, p.metrics.Slack, log)
	p.SlackApprovals.UseHistory(p.CH)
	p.Respond.Signal(p.SlackApprovals)
	p.Deliver.OnSink = func(name string, s deliver.Sink) {
		if sk, ok := s.(*slack.Sink); ok && name == sc.Sink {
			if !sk.TakesIncidents() {
				log.Warn("respond.slack: the sink has no bot_token, so no incident message carries buttons", "sink", name)
			}
			p.SlackApprovals.Attach(sk)
		}
	}
	return nil
}

func (p *Pipeline) drainDiscovered() []clickhouse.IntegrationRow {
	rows := p.disc.Drain()
	out := make([]clickhouse.IntegrationRow, len(rows))
	for i, r := range rows {
		out[i] = clickhouse.IntegrationRow(r)
	}
	return out
}

// WaitFor polls cond every 50 ms until it holds or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
