// Package correlate turns detector alerts into incidents: one risk-scored,
// explained incident per compromised integration (or per linked group, such
// as one source IP acting as several integrations), updated as evidence
// grows. Signals are cheap, incidents are rare: the approach of risk-based
// alerting (Splunk RBA's risk events summed per object against a threshold,
// Elastic's building-block rules, Microsoft app governance's investigation
// priority).
//
// Each alert is a signal with a risk contribution: its detector's weight,
// times its severity (which already carries the catalog's criticality and
// the scopes' sensitivity), times factors for a proxy or anonymizing network,
// sensitive scopes on the event, and an integration nobody catalogued or
// owns. A repeat of a detector already in the window counts a quarter, and
// one detector adds at most a quarter more than its strongest signal.
// Contributions decay with a half-life in event time. An incident opens when
// the sum crosses the threshold within the window, when enough distinct
// detectors agree within the breadth window (whatever their sum), or at once
// on a high-confidence signal (use after revoke, use after expiry); later signals
// join it (same id, next version) until it has been quiet for the quiet
// period, when a last version resolves it. Everything runs on event time in
// the key's own state, checkpointed with the detectors': a replay gives the
// same incident ids and versions.
package correlate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is the `detect.correlate` section.
type Config struct {
	// Enabled turns incidents on (the default).
	Enabled bool `yaml:"enabled"`
	// Threshold is the risk at which an incident opens.
	Threshold float64 `yaml:"threshold"`
	// Window: signals older than this (event time) no longer count towards
	// opening an incident.
	Window time.Duration `yaml:"window"`
	// HalfLife of a signal's contribution, in event time.
	HalfLife time.Duration `yaml:"half_life"`
	// Quiet: an incident without a new signal for this long is resolved.
	Quiet time.Duration `yaml:"quiet"`
	// Weights are each detector's base risk (overrides merge over defaults).
	Weights map[string]float64 `yaml:"weights"`
	// Immediate detectors open an incident on their own.
	Immediate []string `yaml:"immediate"`
	// SensitiveScopes raise a signal whose event carries one (substrings).
	SensitiveScopes []string `yaml:"sensitive_scopes"`
	// Breadth opens an incident when this many distinct behavioural
	// detectors signal for one key within BreadthWindow, whatever their
	// risk sum (Splunk RBA's source count beside its score): independent
	// detectors agreeing at once is the attack's shape, and waiting for
	// the sum only delays the page. 0 turns it off. Catalog posture
	// findings (the inventory.* detectors) are not behaviour and do not
	// count.
	Breadth int `yaml:"breadth"`
	// BreadthWindow: the span (event time) the distinct detectors must
	// fall within.
	BreadthWindow time.Duration `yaml:"breadth_window"`
}

// DefaultWeights: a lone geo or user-agent novelty stays a signal; three
// independent detectors, or one with a sensitive context, make an incident.
var DefaultWeights = map[string]float64{
	"auth.failure_burst":        35,
	"chain.cross_app":           45,
	"chain.shared_ip":           35,
	"geo.hosting_or_anonymizer": 40,
	"geo.impossible_travel":     40,
	"geo.new_asn":               20,
	"geo.new_country":           25,
	"inventory.expired":         100,
	// An overdue review is hygiene, not compromise: it adds a little to
	// other signals and never opens an incident alone.
	"inventory.review_overdue":       10,
	"inventory.unowned":              15,
	"lifecycle.dormant_reactivation": 40,
	"lifecycle.new_impersonation":    45,
	"lifecycle.new_user_agent":       25,
	"lifecycle.scope_expansion":      40,
	"lifecycle.token_age":            45,
	"lifecycle.use_after_revoke":     100,
	"volume.distinct_spike":          35,
	"volume.spike":                   35,
}

// defaultWeight is the weight of a detector the table does not name (a new
// detector or a Sigma rule): a medium signal.
const defaultWeight = 30

// DefaultConfig is the correlator's default.
func DefaultConfig() Config {
	return Config{Enabled: true, Threshold: 100, Window: 72 * time.Hour, HalfLife: 24 * time.Hour, Quiet: 72 * time.Hour,
		Breadth: 3, BreadthWindow: time.Hour,
		Immediate:       []string{"lifecycle.use_after_revoke", "inventory.expired"},
		SensitiveScopes: baseline.DefaultSensitiveScopes}
}

// Validate names the field at fault.
func (c Config) Validate() error {
	var errs []error
	if c.Threshold <= 0 {
		errs = append(errs, errors.New("detect.correlate.threshold: must be positive"))
	}
	if c.Breadth < 0 || c.Breadth == 1 {
		errs = append(errs, fmt.Errorf("detect.correlate.breadth: %d: 0 (off) or at least 2 distinct detectors", c.Breadth))
	}
	if c.Breadth > 0 && c.BreadthWindow <= 0 {
		errs = append(errs, errors.New("detect.correlate.breadth_window: must be a positive duration"))
	}
	if c.Window <= 0 || c.HalfLife <= 0 || c.Quiet <= 0 {
		errs = append(errs, errors.New("detect.correlate.window, half_life and quiet: must be positive durations"))
	}
	for id, w := range c.Weights {
		if w < 0 || math.IsNaN(w) {
			errs = append(errs, fmt.Errorf("detect.correlate.weights.%s: %v must be a non-negative number", id, w))
		}
	}
	return errors.Join(errs...)
}

// Correlator is the built correlator; its state is per key (State).
type Correlator struct {
	cfg       Config
	weights   map[string]float64
	immediate map[string]bool
	sensitive baseline.SensitiveScopes
	decisions Decisions // nil: none (replay)
}

// Decisions are the analysts' words on incidents (tokenwatch incident
// ack|resolve|suppress), which the live detect role reads from
// tokenwatch.incident_decisions. Safe for concurrent use.
type Decisions interface {
	// Decision is the decision in force on incident id.
	Decision(id string) (schemas.Decision, bool)
	// Suppressed reports whether tenant's key is suppressed at event time t.
	Suppressed(tenant, key string, t time.Time) bool
}

// SetDecisions makes the correlator honour d: an acknowledged incident's
// next versions say so; a resolved one closes on its next signal or tick
// (later signals start a new story); a suppressed key opens no incident
// until the suppression ends. Call it before the first event.
func (c *Correlator) SetDecisions(d Decisions) { c.decisions = d }

// decided closes s's open incident when an analyst resolved or suppressed
// it, returning the closing version.
func (c *Correlator) decided(tenant, key string, s *State, now int64) []schemas.Incident {
	if c.decisions == nil || s.Open == nil {
		return nil
	}
	d, ok := c.decisions.Decision(s.Open.ID)
	if !ok || (d.Action != schemas.DecisionResolve && d.Action != schemas.DecisionSuppress) {
		return nil
	}
	status := schemas.IncidentResolved
	if d.Action == schemas.DecisionSuppress {
		status = schemas.IncidentSuppressed
	}
	s.Open.Version++
	inc := c.incident(tenant, key, s, status, now)
	s.Open = nil
	s.Watch = nil
	return []schemas.Incident{inc}
}

// status is an open incident's status: acknowledged once an analyst said so.
func (c *Correlator) status(s *State) string {
	if c.decisions != nil && s.Open != nil {
		if d, ok := c.decisions.Decision(s.Open.ID); ok && d.Action == schemas.DecisionAcknowledge {
			return schemas.IncidentAcknowledged
		}
	}
	return schemas.IncidentOpen
}

// New validates cfg and builds the correlator. known lists the enabled
// detectors: a weight or immediate entry naming another is an error.
func New(cfg Config, known []string) (*Correlator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Correlator{cfg: cfg, weights: map[string]float64{}, immediate: map[string]bool{}}
	for k, v := range DefaultWeights {
		c.weights[k] = v
	}
	for k, v := range cfg.Weights {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("detect.correlate.weights.%s: no such detector is enabled (known: %v)", k, known)
		}
		c.weights[k] = v
	}
	for _, k := range cfg.Immediate {
		if !slices.Contains(known, k) {
			// Immediate defaults may name a detector that is turned off.
			if !slices.Contains(DefaultConfig().Immediate, k) {
				return nil, fmt.Errorf("detect.correlate.immediate: %s: no such detector is enabled (known: %v)", k, known)
			}
		}
		c.immediate[k] = true
	}
	var err error
	if c.sensitive, err = baseline.NewSensitiveScopes(cfg.SensitiveScopes); err != nil {
		return nil, fmt.Errorf("detect.correlate.%w", err)
	}
	return c, nil
}

// signal is one alert as the state keeps it.
type signal struct {
	schemas.Signal
	T int64 `json:"t"` // Unix ms: when it was raised (event time)
}

// open is the incident in progress.
type open struct {
	ID      string              `json:"id"`
	Version int                 `json:"v"`
	Peak    float64             `json:"peak"`
	Signals []signal            `json:"signals"`
	Blast   schemas.BlastRadius `json:"blast"`
	Last    int64               `json:"last"` // Unix ms of the last signal
}

// context is what the key's latest event said about the integration.
type context struct {
	Name        string `json:"name,omitempty"`
	Source      string `json:"source,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Purpose     string `json:"purpose,omitempty"`
	Criticality string `json:"criticality,omitempty"`
	Catalogued  bool   `json:"catalogued,omitempty"`
}

// State is one key's correlation: recent signals not (yet) in an incident,
// the incident in progress, and the integration's context. A quiet
// integration holds an empty State.
type State struct {
	Pending []signal `json:"pending,omitempty"`
	Open    *open    `json:"open,omitempty"`
	Ctx     *context `json:"ctx,omitempty"`
	// Watch counts what the key touches from its first pending signal on,
	// so an incident's blast radius includes what happened before it opened.
	Watch *schemas.BlastRadius `json:"watch,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState returns an empty state.
func (c *Correlator) NewState() detect.State { return &State{} }

// Active reports whether the key has anything in progress: the engine then
// shows it every event (blast radius) and never evicts it.
func (c *Correlator) Active(st detect.State) bool {
	s := st.(*State)
	return s.Open != nil || len(s.Pending) > 0
}

// Observe folds the alerts ev raised for (tenant, key) into the state and
// returns the incident versions they produce. ev is nil for alerts raised by
// a tick (at watermark).
func (c *Correlator) Observe(tenant, key string, ev *schemas.Event, raised []schemas.Alert, watermark time.Time, st detect.State) []schemas.Incident {
	s := st.(*State)
	now := watermark.UnixMilli()
	if ev != nil {
		now = ev.Time.UnixMilli()
		c.remember(s, ev)
		if s.Watch != nil {
			touch(s.Watch, ev)
		}
	}
	if slices.ContainsFunc(raised, func(a schemas.Alert) bool { return a.Shadow }) {
		// A shadow detector's alert is measured, never acted on (the engine
		// already leaves them out; this keeps any other caller honest).
		raised = slices.DeleteFunc(slices.Clone(raised), func(a schemas.Alert) bool { return a.Shadow })
	}
	if len(raised) == 0 {
		return nil
	}
	out := c.decided(tenant, key, s, now)
	suppressed := c.decisions != nil && c.decisions.Suppressed(tenant, key, time.UnixMilli(now))
	for _, a := range raised {
		sig := c.signal(s, ev, a, now)
		if s.Open != nil {
			s.Open.Signals = append(s.Open.Signals, sig)
			s.Open.Last = max(s.Open.Last, sig.T)
			s.Open.Version++
			s.Open.Peak = max(s.Open.Peak, c.risk(s.Open.Signals, now))
			out = append(out, c.incident(tenant, key, s, c.status(s), now))
			continue
		}
		if suppressed {
			continue // an analyst said this key's signals are known: no incident until it ends
		}
		if s.Watch == nil {
			s.Watch = &schemas.BlastRadius{}
			if ev != nil {
				touch(s.Watch, ev)
			}
		}
		s.Pending = append(s.Pending, sig)
		c.prune(s, now)
		risk := c.risk(s.Pending, now)
		if risk < c.cfg.Threshold && !c.immediate[a.Detector] && !c.broad(s.Pending, now) {
			continue
		}
		first := s.Pending[0]
		s.Open = &open{ID: schemas.IncidentID(tenant, key, first.AlertID), Version: 1, Peak: risk, Signals: s.Pending, Last: sig.T}
		for _, p := range s.Pending {
			s.Open.Last = max(s.Open.Last, p.T)
		}
		s.Pending = nil
		out = append(out, c.incident(tenant, key, s, schemas.IncidentOpen, now))
	}
	return out
}

// Tick resolves an incident quiet for the quiet period and forgets pending
// signals that left the window.
func (c *Correlator) Tick(tenant, key string, watermark time.Time, st detect.State) []schemas.Incident {
	s := st.(*State)
	now := watermark.UnixMilli()
	c.prune(s, now)
	if out := c.decided(tenant, key, s, now); out != nil {
		return out
	}
	if s.Open == nil || now-s.Open.Last < c.cfg.Quiet.Milliseconds() {
		return nil
	}
	s.Open.Version++
	inc := c.incident(tenant, key, s, schemas.IncidentResolved, now)
	s.Open = nil
	if len(s.Pending) == 0 {
		s.Watch = nil
	}
	return []schemas.Incident{inc}
}

func (c *Correlator) prune(s *State, now int64) {
	w := c.cfg.Window.Milliseconds()
	kept := s.Pending[:0]
	for _, p := range s.Pending {
		if now-p.T <= w {
			kept = append(kept, p)
		}
	}
	s.Pending = kept
	if len(s.Pending) == 0 {
		s.Pending = nil
		if s.Open == nil {
			s.Watch = nil
		}
	}
}

func (c *Correlator) remember(s *State, ev *schemas.Event) {
	x := context{Name: ev.Integration.Name, Source: ev.Source}
	if inv := ev.Inventory; inv != nil {
		x.Owner, x.Purpose, x.Criticality, x.Catalogued = inv.Owner, inv.Purpose, inv.Criticality, inv.Catalogued
		if inv.Name != "" {
			x.Name = inv.Name
		}
	}
	if s.Ctx == nil || *s.Ctx != x {
		if s.Ctx == nil && x == (context{}) {
			return
		}
		s.Ctx = &x
	}
}

// severityFactor weighs a signal by its severity.
var severityFactor = map[schemas.Severity]float64{
	schemas.SeverityInfo: 0.25, schemas.SeverityLow: 0.5, schemas.SeverityMedium: 1,
	schemas.SeverityHigh: 1.5, schemas.SeverityCritical: 2,
}

// signal scores alert a as it arrives.
func (c *Correlator) signal(s *State, ev *schemas.Event, a schemas.Alert, now int64) signal {
	w, ok := c.weights[a.Detector]
	if !ok {
		w = defaultWeight
	}
	f := severityFactor[a.Severity]
	if f == 0 {
		f = 1
	}
	r := w * f
	if ev != nil {
		if ev.Network.Proxy {
			r *= 1.25 // the source flagged an anonymizing proxy
		}
		if sc, _ := c.sensitive.First(ev.Scopes); sc != "" {
			r *= 1.25
		}
		switch {
		case ev.Inventory == nil || !ev.Inventory.Catalogued:
			r *= 1.2 // nobody catalogued it: no owner to ask, no approved scope
		case ev.Inventory.Owner == "":
			r *= 1.1
		}
	}
	// A detector already counting in the window adds a quarter: four
	// impossible-travel alerts for one trip are one story.
	for _, p := range s.Pending {
		if p.Detector == a.Detector {
			r *= 0.25
			break
		}
	}
	if s.Open != nil {
		for _, p := range s.Open.Signals {
			if p.Detector == a.Detector {
				r *= 0.25
				break
			}
		}
	}
	t := a.FirstSeen.UnixMilli()
	if t == 0 || t > now {
		t = now
	}
	return signal{T: now, Signal: schemas.Signal{AlertID: a.ID, Detector: a.Detector, Severity: a.Severity, Time: schemas.NewTime(time.UnixMilli(t)),
		Title: a.Title, Risk: math.Round(r*10) / 10, Techniques: a.Techniques, Runbook: a.Runbook, Observed: a.Observed, Baseline: a.Baseline, Query: a.Query}}
}

// broad reports whether Breadth distinct behavioural detectors signalled
// within BreadthWindow of now.
func (c *Correlator) broad(sigs []signal, now int64) bool {
	if c.cfg.Breadth == 0 {
		return false
	}
	w := c.cfg.BreadthWindow.Milliseconds()
	var seen []string
	for _, p := range sigs {
		if now-p.T > w || strings.HasPrefix(p.Detector, "inventory.") || slices.Contains(seen, p.Detector) {
			continue
		}
		if seen = append(seen, p.Detector); len(seen) >= c.cfg.Breadth {
			return true
		}
	}
	return false
}

// risk sums the signals' contributions decayed to now. One detector
// counts for at most a quarter more than its strongest signal, however
// often it fires: repeats corroborate, they do not make a second story.
func (c *Correlator) risk(sigs []signal, now int64) float64 {
	h := c.cfg.HalfLife.Milliseconds()
	type part struct{ sum, top float64 }
	by := map[string]*part{}
	var order []string // summed in first-seen order: floating point is not associative
	for _, p := range sigs {
		age := max(now-p.T, 0)
		r := p.Risk * math.Pow(0.5, float64(age)/float64(h))
		x := by[p.Detector]
		if x == nil {
			x = &part{}
			by[p.Detector] = x
			order = append(order, p.Detector)
		}
		x.sum += r
		x.top = max(x.top, r)
	}
	var sum float64
	for _, d := range order {
		sum += min(by[d].sum, 1.25*by[d].top)
	}
	return math.Round(sum*10) / 10
}

// maxSample bounds each blast-radius list.
const maxSample = 20

func touch(b *schemas.BlastRadius, ev *schemas.Event) {
	b.Events++
	b.Bytes += max(ev.Bytes, 0)
	b.Records += max(ev.Records, 0)
	add := func(list *[]string, v string) {
		if v == "" || len(*list) >= maxSample || slices.Contains(*list, v) {
			return
		}
		*list = append(*list, v)
	}
	add(&b.Apps, ev.TargetApp)
	for _, sc := range ev.Scopes {
		add(&b.Scopes, sc)
	}
	if ev.Resource.ID != "" {
		add(&b.Resources, ev.Resource.Type+":"+ev.Resource.ID)
	}
	add(&b.Principals, ev.Principal.ID)
	add(&b.IPs, ev.Network.IP)
}

// incident renders the state's incident as a version.
func (c *Correlator) incident(tenant, key string, s *State, status string, now int64) schemas.Incident {
	o := s.Open
	sigs := slices.Clone(o.Signals)
	sort.SliceStable(sigs, func(i, j int) bool { return sigs[i].Time.Before(sigs[j].Time.Time) })
	inc := schemas.Incident{ID: o.ID, Version: o.Version, Status: status, Tenant: tenant, Key: key,
		RiskScore: o.Peak, UpdatedAt: schemas.NewTime(time.UnixMilli(now)), Severity: schemas.SeverityLow}
	var ctx context
	if s.Ctx != nil {
		ctx = *s.Ctx
	}
	inc.Owner, inc.Purpose, inc.Criticality, inc.Source = ctx.Owner, ctx.Purpose, ctx.Criticality, ctx.Source
	ids := map[string]bool{}
	for _, p := range sigs {
		inc.Timeline = append(inc.Timeline, p.Signal)
		inc.AlertIDs = append(inc.AlertIDs, p.AlertID)
		if !slices.Contains(inc.Detectors, p.Detector) {
			inc.Detectors = append(inc.Detectors, p.Detector)
		}
		for _, t := range p.Techniques {
			if !slices.Contains(inc.Techniques, t) {
				inc.Techniques = append(inc.Techniques, t)
			}
		}
		if p.Severity.Rank() > inc.Severity.Rank() {
			inc.Severity = p.Severity
		}
		if inc.FirstSeen.IsZero() || p.Time.Before(inc.FirstSeen.Time) {
			inc.FirstSeen = p.Time
		}
		if p.Time.After(inc.LastSeen.Time) {
			inc.LastSeen = p.Time
		}
		for _, id := range linked(key, p) {
			ids[id] = true
		}
	}
	if len(inc.Detectors) >= 3 && inc.Severity.Rank() < schemas.SeverityHigh.Rank() {
		inc.Severity = schemas.SeverityHigh // three independent detectors agree
	}
	sort.Strings(inc.Detectors)
	sort.Strings(inc.Techniques)
	for id := range ids {
		inc.IntegrationIDs = append(inc.IntegrationIDs, id)
	}
	sort.Strings(inc.IntegrationIDs)
	inc.IntegrationID = key
	if strings.HasPrefix(key, detect.IPKeyPrefix) && len(inc.IntegrationIDs) > 0 {
		inc.IntegrationID = inc.IntegrationIDs[0]
	}
	if len(inc.IntegrationIDs) == 0 {
		inc.IntegrationIDs = []string{inc.IntegrationID}
	}
	if s.Watch != nil {
		inc.Blast = *s.Watch
		inc.Blast.Apps, inc.Blast.Scopes, inc.Blast.Resources = slices.Clone(s.Watch.Apps), slices.Clone(s.Watch.Scopes), slices.Clone(s.Watch.Resources)
		inc.Blast.Principals, inc.Blast.IPs = slices.Clone(s.Watch.Principals), slices.Clone(s.Watch.IPs)
	}
	name := ctx.Name
	if name == "" {
		name = key
	}
	inc.Title = title(name, sigs)
	inc.Summary = summary(name, ctx, inc)
	inc.Next = next(tenant, inc)
	return inc
}

// linked lists the integrations a signal names: the key itself, or for a
// source-IP group the integrations seen at the IP.
func linked(key string, p signal) []string {
	if !strings.HasPrefix(key, detect.IPKeyPrefix) {
		return []string{key}
	}
	var obs struct {
		Integrations []string `json:"integrations"`
	}
	_ = json.Unmarshal(p.Observed, &obs)
	return obs.Integrations
}

func title(name string, sigs []signal) string {
	var parts []string
	seen := map[string]bool{}
	for _, p := range sigs {
		if seen[p.Detector] {
			continue
		}
		seen[p.Detector] = true
		parts = append(parts, shortName(p.Detector))
	}
	extra := ""
	if len(parts) > 3 {
		extra = fmt.Sprintf(" (+%d more)", len(parts)-3)
		parts = parts[:3]
	}
	return fmt.Sprintf("%s: %s%s", name, strings.Join(parts, ", "), extra)
}

// shortName is a detector's words for a title: "geo.new_country" → "new country".
func shortName(id string) string {
	_, after, _ := strings.Cut(id, ".")
	return strings.ReplaceAll(after, "_", " ")
}

func summary(name string, ctx context, inc schemas.Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", name)
	if ctx.Source != "" {
		fmt.Fprintf(&b, " (%s)", ctx.Source)
	}
	switch {
	case ctx.Catalogued && ctx.Owner != "":
		fmt.Fprintf(&b, ", owned by %s", ctx.Owner)
	case ctx.Catalogued:
		b.WriteString(", catalogued without an owner")
	default:
		b.WriteString(", not in the catalog")
	}
	if ctx.Criticality != "" {
		fmt.Fprintf(&b, ", criticality %s", ctx.Criticality)
	}
	fmt.Fprintf(&b, ", raised %d signals from %d detectors between %s and %s (risk %.0f).",
		len(inc.Timeline), len(inc.Detectors), inc.FirstSeen.Format(time.RFC3339), inc.LastSeen.Format(time.RFC3339), inc.RiskScore)
	for _, p := range inc.Timeline {
		fmt.Fprintf(&b, " %s: %s.", p.Time.Format("01-02 15:04Z"), p.Title)
	}
	bl := inc.Blast
	if bl.Events > 0 {
		fmt.Fprintf(&b, " Since the first signal it made %d calls", bl.Events)
		if bl.Records > 0 {
			fmt.Fprintf(&b, ", read %d records", bl.Records)
		}
		if bl.Bytes > 0 {
			fmt.Fprintf(&b, ", %d bytes", bl.Bytes)
		}
		if len(bl.Resources) > 0 {
			fmt.Fprintf(&b, ", touched %d+ resources", len(bl.Resources))
		}
		b.WriteString(".")
	}
	return b.String()
}

// revocation is each source's strongest documented lever, for Next.
var revocation = map[string]string{
	"google_workspace": "Revoke the app's grants: Admin console › Security › API controls › App access control, or Directory API DELETE /admin/directory/v1/users/{user}/tokens/{clientId} for each user holding one",
	"microsoft":        "Disable the service principal (PATCH /servicePrincipals/{id} accountEnabled=false) and remove its credentials; revoke sign-in sessions of the users it acted for",
	"github":           "Revoke the token or suspend the app installation (Organization settings › GitHub Apps / Personal access tokens; DELETE /app/installations/{id}/suspended for an app)",
	"okta":             "Revoke the app's tokens (Admin › Applications › the app › Okta API Scopes / Tokens) or deactivate the app",
	"slack":            "Restrict or remove the app (admin.apps.restrict / admin.apps.uninstall) and rotate its tokens",
	"salesforce":       "Revoke the connected app's OAuth tokens (Setup › Connected Apps OAuth Usage › Revoke) and block the app",
	"snowflake":        "Disable the user (ALTER USER … SET DISABLED = TRUE) and unset its RSA public keys",
}

func next(tenant string, inc schemas.Incident) []string {
	var out []string
	if r, ok := revocation[inc.Source]; ok {
		out = append(out, r)
	}
	if inc.Owner != "" {
		out = append(out, "Ask the owner, "+inc.Owner+", whether this activity was theirs")
	} else {
		out = append(out, "Find an owner: the integration is not catalogued with one")
	}
	// Each detector's runbook once, in the order its first signal came.
	seen := map[string]bool{}
	for _, p := range inc.Timeline {
		if p.Runbook != "" && !seen[p.Detector] {
			seen[p.Detector] = true
			out = append(out, p.Detector+": "+p.Runbook)
		}
	}
	from := inc.FirstSeen.Add(-24 * time.Hour).UTC().Format("2006-01-02 15:04:05")
	out = append(out, fmt.Sprintf("SELECT * FROM events WHERE tenant = '%s' AND integration_id IN ('%s') AND time >= '%s' ORDER BY time_ms",
		sqlQuote(tenant), strings.Join(quoteAll(inc.IntegrationIDs), "', '"), from))
	return out
}

func quoteAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = sqlQuote(id)
	}
	return out
}

func sqlQuote(s string) string { return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) }
