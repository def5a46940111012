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
	"sync"
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
	// Rule reloads (ReloadRules, ApplyRules) swap the integration stage's
	// detectors: its Go detectors (goStage0) stay, the rules are reloaded
	// from rulesCfg; and every stage's shadow flags. Runners pick the
	// current set up at a safe point (Refresh). reload guards the fields
	// below it: one reloader at a time.
	goStage0 []detect.Detector
	reload   sync.Mutex
	goShadow map[string]bool // the Go detectors' shadow: flags
	rulesCfg sigma.Config
	// rulesPrint is the rule files' fingerprint taken before they were
	// loaded: WatchRules compares with it, so a change made while the
	// program starts is not taken for the baseline.
	rulesPrint string
	// configCheck, when set (WatchConfig), is asked on every WatchRules
	// tick whether the config file changed.
	configCheck func() (changed bool, err error)
	wrap        func(detect.Detector) detect.Detector
	rules       atomic.Pointer[ruleSet]
	geo         *geoip.Reloading
	catalog     *inventory.Enricher
	chain       enrich.Chain
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
	p.rulesCfg, p.wrap = cfg.Rules, opt.Wrap
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
	p.rules.Store(&ruleSet{detectors: p.Stages[0].Detectors, shadow: shadow})
	if opt.Logger != nil {
		for _, n := range p.RuleNotes() {
			opt.Logger.Info("sigma rule may never fire", "note", n)
		}
	}
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
	p.reload.Lock()
	defer p.reload.Unlock()
	return p.swap(p.rulesCfg, p.goShadow)
}

// ApplyRules makes rules (a changed detect.rules section) and the shadow:
// flags of detectors (a changed detect.detectors, whose other keys must be
// the ones the program was built with: they are not read again) the
// program's: the rules are loaded from the new section and become the
// integration stage's next set as on a rule-file reload (ReloadRules), and
// every stage's runners take the new shadow flags at their next Refresh,
// so state, checkpoints and alert ids stay. On any error the current set
// and config stay and the error says why.
func (p *Program) ApplyRules(rules sigma.Config, detectors map[string]yaml.Node) error {
	goShadow, err := detectorShadow(detectors)
	if err != nil {
		return err
	}
	p.reload.Lock()
	defer p.reload.Unlock()
	var fp string
	if len(rules.Paths) > 0 {
		fp, _ = sigma.Fingerprint(rules.Paths)
	}
	if err := p.swap(rules, goShadow); err != nil {
		return err
	}
	p.rulesCfg, p.goShadow, p.rulesPrint = rules, goShadow, fp
	return nil
}

// swap loads cfg's rules and stores them, beside the Go detectors, with
// goShadow and cfg's shadow list as the next set. Call with reload held.
func (p *Program) swap(cfg sigma.Config, goShadow map[string]bool) error {
	rules, err := sigma.Detectors(cfg)
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
	shadow := maps.Clone(goShadow)
	for _, id := range cfg.Shadow {
		shadow[id] = true
	}
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

// WatchConfig makes WatchRules ask check, on each of its ticks before it
// looks at the rule files, whether the config file changed: check applies
// what it can (ApplyRules) and logs what it cannot itself, and reports
// changed with the outcome (err nil: the file on disk loads). Call it
// before WatchRules starts.
func (p *Program) WatchConfig(check func() (changed bool, err error)) { p.configCheck = check }

// WatchRules polls the configured rule paths every detect.rules.reload_interval
// and reloads the rules when their files change (ReloadRules), until ctx
// ends; with WatchConfig, it also has the config file checked on each tick
// (the paths, the interval and the shadow flags may then change). report
// sees every reload's outcome (nil on success); a failed reload keeps the
// current set and is retried on the next change. With a zero interval, or
// without paths and without WatchConfig, it returns at once.
func (p *Program) WatchRules(ctx context.Context, log *slog.Logger, report func(error)) {
	p.reload.Lock()
	cfg := p.rulesCfg
	p.reload.Unlock()
	if cfg.ReloadInterval <= 0 || (len(cfg.Paths) == 0 && p.configCheck == nil) {
		return
	}
	every := cfg.ReloadInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.configCheck != nil {
			if changed, err := p.configCheck(); changed {
				report(err)
			}
		}
		p.reload.Lock()
		cfg, last := p.rulesCfg, p.rulesPrint
		p.reload.Unlock()
		if cfg.ReloadInterval > 0 && cfg.ReloadInterval != every {
			every = cfg.ReloadInterval // a config change: the next look
			t.Reset(every)
		}
		if len(cfg.Paths) == 0 || cfg.ReloadInterval <= 0 {
			continue
		}
		fp, err := sigma.Fingerprint(cfg.Paths)
		if err == nil && fp == last {
			continue
		}
		p.reload.Lock()
		if p.rulesPrint != last { // ApplyRules loaded the rules meanwhile
			p.reload.Unlock()
			continue
		}
		p.rulesPrint = fp
		if err == nil {
			err = p.swap(p.rulesCfg, p.goShadow)
		}
		p.reload.Unlock()
		if err != nil {
			log.Error("rules reload failed: keeping the current rules", "err", err)
		} else {
			log.Info("rules reloaded", "rules", len(p.RuleIDs()))
		}
		report(err)
	}
}

// detectorShadow is the ids of the enabled detectors cfg marks `shadow: true`.
func detectorShadow(cfg map[string]yaml.Node) (map[string]bool, error) {
	for id := range cfg {
		if _, err := detect.Lookup(id); err != nil {
			return nil, fmt.Errorf("detectors: %w", err)
		}
	}
	shadow := map[string]bool{}
	for _, spec := range detect.Specs() {
		node, has := cfg[spec.ID]
		if !has {
			continue
		}
		enabled, sh, err := detectorFlags(spec.ID, &node)
		if err != nil {
			return nil, err
		}
		if enabled && sh {
			shadow[spec.ID] = true
		}
	}
	return shadow, nil
}

// detectorFlags reads `enabled` and `shadow`, the keys every detector accepts.
func detectorFlags(id string, node *yaml.Node) (enabled, shadow bool, err error) {
	var en *bool
	if err := yamlstrict.Decode(yamlstrict.Get(node, "enabled"), &en); err != nil {
		return false, false, yamlstrict.At("detectors."+id+".enabled", err)
	}
	if err := yamlstrict.Decode(yamlstrict.Get(node, "shadow"), &shadow); err != nil {
		return false, false, yamlstrict.At("detectors."+id+".shadow", err)
	}
	return en == nil || *en, shadow, nil
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
			enabled, sh, err := detectorFlags(spec.ID, &node)
			if err != nil {
				return nil, nil, nil, err
			}
			if !enabled {
				continue
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

// RuleNotes are the running rules' load notes ("sigma.<id>: …"), sorted:
// rules that load but may never fire (sigma.Rule.TypeNote).
func (p *Program) RuleNotes() []string {
	var out []string
	for _, d := range p.rules.Load().detectors {
		if r, ok := d.(interface{ Rule() *sigma.Rule }); ok && r.Rule().TypeNote != "" {
			out = append(out, d.ID()+": "+r.Rule().TypeNote)
		}
	}
	sort.Strings(out)
	return out
}

// Shadow reports whether detector id runs in shadow mode (detect.detectors.<id>.shadow,
// detect.rules.shadow): its alerts carry Shadow and never reach an incident.
func (p *Program) Shadow(id string) bool { return p.rules.Load().shadow[id] }

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
	// rec holds the re-keyed record handed to emit: one per runner rather
	// than a heap copy per record (a record is about 500 bytes, and half the
	// events make one).
	rec schemas.Event
}

// Refresh switches the runner to the program's current rule set if a
// reload made a newer one, keeping every remaining detector's state
// (engine.SetDetectors), and to its shadow flags (a re-keyed stage takes
// only those: its detectors are Go detectors, never reloaded); it reports
// whether it switched. Call it where the state is checkpointed and nothing
// is in flight: right after a checkpoint.
func (r *Runner) Refresh() bool {
	cur := r.p.rules.Load()
	if cur.gen == r.gen {
		return false
	}
	if r.stage == 0 {
		r.Engine.SetDetectors(cur.detectors)
	}
	r.Engine.SetShadow(cur.shadow)
	r.gen = cur.gen
	return true
}

// NewRunner returns a runner of stage i with empty state.
func (p *Program) NewRunner(i int) *Runner {
	r := &Runner{p: p, stage: i}
	cur := p.rules.Load() // the latest shadow flags
	dets, shadow := p.Stages[i].Detectors, cur.shadow
	r.gen = cur.gen
	if i == 0 {
		dets = cur.detectors // the integration stage runs the latest rule set
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
// they produced wait in Engine.TakeIncidents. The record emit gets is the
// runner's own and is reused: emit must not keep the pointer past its call
// (the strings and pointers in it stay valid).
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
		if r.rekeyer[j].Rekey(ev, &r.rec) {
			emit(j, &r.rec)
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
	if len(as) == 0 && !r.incidentsWaiting() {
		return // most events: nothing raised, no watermark to stamp
	}
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

func (r *Replay) incidentsWaiting() bool {
	for _, rn := range r.runners {
		if rn.Engine.IncidentsWaiting() {
			return true
		}
	}
	return false
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
