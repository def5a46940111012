// Package program builds tokenwatch's one detect program from the registry
// and the config: enrichment (GeoIP, then the integration catalog), and one
// stage per keying the enabled detectors declare (the integration stage
// first; chain.shared_ip's source-IP stage, and whatever a future detector
// keys by). replay, eval, the benchmarks, the scenario harness and the live
// detect role (detect/role) all run this program and only this program, so
// an input gives the same alerts whichever of them runs it.
//
// Process is the step they share: one record through one stage. Replay
// drives it in memory; the live role drives it per Kafka partition, with the
// stage's repartition and state topics (Stage.Input, Stage.StateTopic).
package program

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is what the program is built from: the detectors' settings
// (detect.detectors), the GeoIP databases and the catalog.
type Config struct {
	Detectors map[string]yaml.Node
	// Rules are the Sigma rules (detect.rules); each runs as one detector of
	// the integration stage. The zero value loads none: the config file's
	// default (internal/app/config) turns the shipped rules on.
	Rules sigma.Config
	// Correlate turns alerts into incidents; the zero value means the
	// defaults (correlate.DefaultConfig).
	Correlate *correlate.Config
	GeoIP     geoip.Config
	Catalog   inventory.Config
}

// Options tune a build. The zero value is usable.
type Options struct {
	// Logger receives the catalog's reload messages; nil discards them.
	Logger *slog.Logger
	// Wrap, when set, wraps every detector (the scenario harness records the
	// finding key behind each alert id this way).
	Wrap func(detect.Detector) detect.Detector
}

// Stage is one keyed pass: the detectors of one keying over its records.
type Stage struct {
	Keying    detect.Keying
	Detectors []detect.Detector
}

// Name labels the stage in logs and names its consumer group: "detect" for
// the integration stage, "detect-<keying>" for the others.
func (s Stage) Name() string {
	if s.Keying.Name == "" {
		return "detect"
	}
	return "detect-" + s.Keying.Name
}

// Input is the topic the stage reads: the events, or its repartition topic.
func (s Stage) Input() string {
	if s.Keying.Name == "" {
		return schemas.TopicEvents
	}
	return schemas.RekeyTopic(s.Keying.Name)
}

// StateTopic is the compacted topic the stage checkpoints its state to.
func (s Stage) StateTopic() string { return schemas.StateTopic(s.Keying.Name) }

// ruleSet is one generation of the integration stage's detectors.
type ruleSet struct {
	gen       int
	detectors []detect.Detector
	shadow    map[string]bool
}

// Program is the built detect program. Close releases its databases.
type Program struct {
	// Stages: Stages[0] is the integration stage (possibly with no
	// detectors); the others are re-keyed from it.
	Stages []Stage
	corr   *correlate.Correlator // nil with incidents off
	shadow map[string]bool       // detector ids in shadow mode, as built
	// Rule reloads (ReloadRules) swap the integration stage's detectors:
	// its Go detectors (goStage0) stay, the rules are reloaded from
	// rulesCfg. Runners pick the current set up at a safe point (Refresh).
	goStage0 []detect.Detector
	goShadow map[string]bool
	rulesCfg sigma.Config
	// rulesPrint is the rule files' fingerprint taken before they were
	// loaded: WatchRules compares with it, so a change made while the
	// program starts is not taken for the baseline.
	rulesPrint string
	wrap       func(detect.Detector) detect.Detector
	rules      atomic.Pointer[ruleSet]
	geo        *geoip.Reloading
	catalog    *inventory.Enricher
	chain      enrich.Chain
}

// Build builds the program from cfg: unknown detector ids are an error, a
// detector whose node says `enabled: false` is left out.
func Build(cfg Config, opt Options) (_ *Program, err error) {
	p := &Program{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if cfg.GeoIP.Enabled() {
		if p.geo, err = geoip.OpenReloading(cfg.GeoIP.City, cfg.GeoIP.ASN, cfg.GeoIP.CacheSize); err != nil {
			return nil, err
		}
		p.chain = append(p.chain, p.geo)
	}
	if cfg.Catalog.Path != "" {
		log := opt.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		if p.catalog, err = inventory.Open(cfg.Catalog.Path, inventory.Options{Logger: log.With("component", "inventory")}); err != nil {
			return nil, err
		}
		p.chain = append(p.chain, p.catalog)
	}
	specs, dets, shadow, err := buildDetectors(cfg.Detectors)
	if err != nil {
		return nil, err
	}
	if len(cfg.Rules.Paths) > 0 {
		p.rulesPrint, _ = sigma.Fingerprint(cfg.Rules.Paths)
	}
	rules, err := sigma.Detectors(cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	p.goShadow = maps.Clone(shadow)
	for _, id := range cfg.Rules.Shadow {
		shadow[id] = true
	}
	p.shadow, p.rulesCfg, p.wrap = shadow, cfg.Rules, opt.Wrap
	if err := checkRuleIDs(rules); err != nil {
		return nil, err
	}
	nGo := len(dets)
	for _, d := range rules {
		// A rule judges each event alone: it runs keyed by integration.
		specs = append(specs, detect.Spec{ID: d.ID()})
		dets = append(dets, d)
	}
	p.Stages = []Stage{{Keying: detect.ByIntegration}}
	index := map[string]int{"": 0}
	for i, d := range dets {
		if opt.Wrap != nil {
			d = opt.Wrap(d)
		}
		k := specs[i].KeyedBy
		j, ok := index[k.Name]
		if !ok {
			if k.Rekey == nil {
				return nil, fmt.Errorf("detectors.%s: keyed by %q without a Rekey function", specs[i].ID, k.Name)
			}
			j = len(p.Stages)
			index[k.Name] = j
			p.Stages = append(p.Stages, Stage{Keying: k})
		}
		p.Stages[j].Detectors = append(p.Stages[j].Detectors, d)
		if j == 0 && i < nGo {
			p.goStage0 = append(p.goStage0, d)
		}
	}
	p.rules.Store(&ruleSet{detectors: p.Stages[0].Detectors, shadow: p.shadow})
	cc := correlate.DefaultConfig()
	if cfg.Correlate != nil {
		cc = *cfg.Correlate
	}
	if cc.Enabled {
		if p.corr, err = correlate.New(cc, p.DetectorIDs()); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func checkRuleIDs(rules []detect.Detector) error {
	for _, d := range rules {
		if _, err := detect.Lookup(d.ID()); err == nil {
			return fmt.Errorf("rules: %s is also a registered detector's id", d.ID())
		}
	}
	return nil
}

// ReloadRules loads the configured rules (detect.rules) again and makes
// them the integration stage's next set, beside its Go detectors; runners
// switch to it at their next Refresh. On any error (a rule that cannot
// run, a duplicate id, a shadow id no rule has) the current set stays and
// the error says why.
func (p *Program) ReloadRules() error {
	rules, err := sigma.Detectors(p.rulesCfg)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	if err := checkRuleIDs(rules); err != nil {
		return err
	}
	dets := slices.Clone(p.goStage0)
	for _, d := range rules {
		if p.wrap != nil {
			d = p.wrap(d)
		}
		dets = append(dets, d)
	}
	shadow := maps.Clone(p.goShadow)
	for _, id := range p.rulesCfg.Shadow {
		shadow[id] = true
	}
	// One reloader at a time (WatchRules): no lost generation.
	p.rules.Store(&ruleSet{gen: p.rules.Load().gen + 1, detectors: dets, shadow: shadow})
	return nil
}

// RuleIDs lists the rules' detector ids of the current set, sorted.
func (p *Program) RuleIDs() []string {
	var ids []string
	for _, d := range p.rules.Load().detectors[len(p.goStage0):] {
		ids = append(ids, d.ID())
	}
	sort.Strings(ids)
	return ids
}

// WatchRules polls the configured rule paths every detect.rules.reload_interval
// and reloads the rules when their files change (ReloadRules), until ctx
// ends. report sees every reload's outcome (nil on success); a failed
// reload keeps the current set and is retried on the next change. Without
// paths or with a zero interval it returns at once.
func (p *Program) WatchRules(ctx context.Context, log *slog.Logger, report func(error)) {
	cfg := p.rulesCfg
	if len(cfg.Paths) == 0 || cfg.ReloadInterval <= 0 {
		return
	}
	last := p.rulesPrint
	t := time.NewTicker(cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp, err := sigma.Fingerprint(cfg.Paths)
		if err == nil && fp == last {
			continue
		}
		last = fp
		if err == nil {
			err = p.ReloadRules()
		}
		if err != nil {
			log.Error("rules reload failed: keeping the current rules", "err", err)
		} else {
			log.Info("rules reloaded", "rules", len(p.RuleIDs()))
		}
		report(err)
	}
}

// buildDetectors constructs every registered detector from its config node,
// and returns the ids of those marked `shadow: true`.
func buildDetectors(cfg map[string]yaml.Node) ([]detect.Spec, []detect.Detector, map[string]bool, error) {
	for id := range cfg {
		if _, err := detect.Lookup(id); err != nil {
			return nil, nil, nil, fmt.Errorf("detectors: %w", err)
		}
	}
	var specs []detect.Spec
	var out []detect.Detector
	shadow := map[string]bool{}
	for _, spec := range detect.Specs() {
		node, has := cfg[spec.ID]
		if has {
			// `enabled` and `shadow` are keys every detector accepts.
			var enabled *bool
			if err := yamlstrict.Decode(yamlstrict.Get(&node, "enabled"), &enabled); err != nil {
				return nil, nil, nil, yamlstrict.At("detectors."+spec.ID+".enabled", err)
			}
			if enabled != nil && !*enabled {
				continue
			}
			var sh bool
			if err := yamlstrict.Decode(yamlstrict.Get(&node, "shadow"), &sh); err != nil {
				return nil, nil, nil, yamlstrict.At("detectors."+spec.ID+".shadow", err)
			}
			if sh {
				shadow[spec.ID] = true
			}
		}
		var rest *yaml.Node // nil: the defaults
		if has {
			rest = yamlstrict.Without(&node, "enabled", "shadow")
		}
		// Strict: an unknown key (volume.spike: {sigmaz: 6}) is an error, not the default.
		d, err := spec.New(yamlstrict.Func(rest))
		if err != nil {
			return nil, nil, nil, yamlstrict.At("detectors."+spec.ID, err)
		}
		specs = append(specs, spec)
		out = append(out, d)
	}
	return specs, out, shadow, nil
}

// Close releases the GeoIP databases.
func (p *Program) Close() {
	if p.geo != nil {
		p.geo.Close()
	}
}

// Enrich adds GeoIP and catalog context to ev in place.
func (p *Program) Enrich(ev *schemas.Event) { p.chain.Enrich(ev) }

// Catalog is the integration catalog, nil without one. Ingest maps each
// source's identities to catalog integrations with it before keying.
func (p *Program) Catalog() *inventory.Enricher { return p.catalog }

// SetDecisions makes the correlator honour analysts' decisions (the live
// role's; replay has none). Call it before running.
func (p *Program) SetDecisions(d correlate.Decisions) {
	if p.corr != nil {
		p.corr.SetDecisions(d)
	}
}

// GeoIP is the reloading GeoIP enricher, nil without databases.
func (p *Program) GeoIP() *geoip.Reloading { return p.geo }

// DetectorIDs lists the enabled detectors, sorted.
func (p *Program) DetectorIDs() []string {
	var ids []string
	for _, s := range p.Stages {
		for _, d := range s.Detectors {
			ids = append(ids, d.ID())
		}
	}
	sort.Strings(ids)
	return ids
}

// Shadow reports whether detector id runs in shadow mode (detect.detectors.<id>.shadow,
// detect.rules.shadow): its alerts carry Shadow and never reach an incident.
func (p *Program) Shadow(id string) bool { return p.shadow[id] || p.rules.Load().shadow[id] }

// Topics are the topics the program reads and writes besides the events and
// alerts: each re-keyed stage's repartition topic and every stage's state.
func (p *Program) Topics() []string {
	var out []string
	for i, s := range p.Stages {
		if i > 0 {
			out = append(out, s.Input())
		}
		out = append(out, s.StateTopic())
	}
	return out
}

// Runner holds what one stage needs to process one partition (or a whole
// replay): the engine with its states, and a Rekeyer per downstream stage.
// Not safe for concurrent use.
type Runner struct {
	p       *Program
	stage   int
	Engine  *engine.Engine
	rekeyer []*detect.Rekeyer // by stage index; nil for the stage itself
	gen     int               // the rule set generation the engine runs
}

// Refresh switches the runner to the program's current rule set if a
// reload made a newer one, keeping every remaining detector's state
// (engine.SetDetectors); it reports whether it switched. Call it where the
// state is checkpointed and nothing is in flight: right after a checkpoint.
func (r *Runner) Refresh() bool {
	if r.stage != 0 {
		return false
	}
	cur := r.p.rules.Load()
	if cur.gen == r.gen {
		return false
	}
	r.Engine.SetDetectors(cur.detectors)
	r.Engine.SetShadow(cur.shadow)
	r.gen = cur.gen
	return true
}

// NewRunner returns a runner of stage i with empty state.
func (p *Program) NewRunner(i int) *Runner {
	r := &Runner{p: p, stage: i}
	dets, shadow := p.Stages[i].Detectors, p.shadow
	if i == 0 {
		cur := p.rules.Load() // the integration stage runs the latest rule set
		dets, shadow, r.gen = cur.detectors, cur.shadow, cur.gen
	}
	r.Engine = engine.New(dets)
	r.Engine.SetShadow(shadow)
	if p.corr != nil {
		r.Engine.SetCorrelator(p.corr)
	}
	if i == 0 {
		r.rekeyer = make([]*detect.Rekeyer, len(p.Stages))
		for j := 1; j < len(p.Stages); j++ {
			r.rekeyer[j] = detect.NewRekeyer(p.Stages[j].Keying)
		}
	}
	return r
}

// Process runs one record through the runner's stage: an event of the
// integration stage is enriched, observed, and handed to emit re-keyed for
// each other stage; a re-keyed record (carrying its event's enrichment)
// is observed as it is. It returns the alerts raised; the incident versions
// they produced wait in Engine.TakeIncidents.
func (r *Runner) Process(ev *schemas.Event, emit func(stage int, rec *schemas.Event)) []schemas.Alert {
	if r.stage != 0 {
		return r.Engine.Observe(ev)
	}
	r.p.Enrich(ev)
	dups := r.Engine.Duplicates()
	alerts := r.Engine.Observe(ev)
	if r.Engine.Duplicates() != dups {
		return alerts // a repeat: the other stages saw it the first time
	}
	for j := 1; j < len(r.rekeyer); j++ {
		if rec, ok := r.rekeyer[j].Rekey(ev); ok {
			out := rec // only a record sent escapes to the heap
			emit(j, &out)
		}
	}
	return alerts
}

// Replay runs the whole program in memory over events in the order given
// (callers sort by event time), re-keyed records straight into their
// stages, then flushes every stage at its watermark as a file replay ends.
type Replay struct {
	runners []*Runner
	emit    func(stage int, rec *schemas.Event)
	// OnAlert, when set, sees each alert as it is raised with the event-time
	// watermark of the integration stage at that moment (eval's time to
	// detect).
	OnAlert func(a schemas.Alert, watermark schemas.Time)
	// OnIncident, likewise, sees each incident version as it is produced.
	OnIncident func(inc schemas.Incident, watermark schemas.Time)
	alerts     []schemas.Alert
	incidents  []schemas.Incident
}

// NewReplay returns an in-memory run of the program with empty state.
func (p *Program) NewReplay() *Replay {
	r := &Replay{}
	for i := range p.Stages {
		r.runners = append(r.runners, p.NewRunner(i))
	}
	r.emit = func(j int, rec *schemas.Event) { r.add(r.runners[j].Process(rec, nil)) }
	return r
}

// Observe processes one event (it is enriched in place).
func (r *Replay) Observe(ev *schemas.Event) {
	r.add(r.runners[0].Process(ev, r.emit))
}

func (r *Replay) add(as []schemas.Alert) {
	wm := schemas.NewTime(r.runners[0].Engine.Watermark())
	for _, a := range as {
		if r.OnAlert != nil {
			r.OnAlert(a, wm)
		}
	}
	r.alerts = append(r.alerts, as...)
	for _, rn := range r.runners {
		for _, inc := range rn.Engine.TakeIncidents() {
			if r.OnIncident != nil {
				r.OnIncident(inc, wm)
			}
			r.incidents = append(r.incidents, inc)
		}
	}
}

// Finish flushes every stage at its watermark and returns all alerts raised.
func (r *Replay) Finish() []schemas.Alert {
	for _, rn := range r.runners {
		r.add(rn.Engine.Flush(rn.Engine.Watermark()))
	}
	return r.alerts
}

// Incidents returns every incident version produced so far, in order.
func (r *Replay) Incidents() []schemas.Incident { return r.incidents }

// Latest keeps the highest version of each incident, in the order the
// incidents first appeared.
func Latest(versions []schemas.Incident) []schemas.Incident {
	at := map[string]int{}
	var out []schemas.Incident
	for _, inc := range versions {
		i, ok := at[inc.ID]
		if !ok {
			at[inc.ID] = len(out)
			out = append(out, inc)
			continue
		}
		if inc.Version > out[i].Version {
			out[i] = inc
		}
	}
	return out
}

// Run replays events (enriched in place) and returns the alerts.
func (p *Program) Run(events []schemas.Event) []schemas.Alert {
	r := p.NewReplay()
	for i := range events {
		r.Observe(&events[i])
	}
	return r.Finish()
}
