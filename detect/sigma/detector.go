package sigma

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is the `detect.rules` section.
type Config struct {
	// Paths are rule files or folders of rules (*.yml, *.yaml).
	Paths []string `yaml:"paths"`
	// Shipped also loads tokenwatch's own rules (detect/sigma/rules/,
	// embedded in the binary).
	Shipped bool `yaml:"shipped"`
	// Shadow lists rules, by detector id (sigma.<rule id>, as `tokenwatch
	// detectors` prints it), that run in shadow mode: their alerts are
	// recorded but never page and never count towards an incident. Config
	// rather than a key in the rule, so a SigmaHQ rule runs unchanged and
	// promoting it is a one-line config change.
	Shadow []string `yaml:"shadow"`
	// ReloadInterval is how often the detect role looks for changed rule
	// files under Paths and reloads them, and (tokenwatch run) for a
	// changed config file, whose detect.rules and shadow flags it applies
	// (0: only at start).
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultConfig turns the shipped rules on: each is written for a
// non-human identity's abuse (an OAuth app's admin token from a proxy, a
// PAT adding a deploy key), which a human's routine does not produce, so
// they are quiet on a normal install. A folder of one's own is opt-in.
func DefaultConfig() Config { return Config{Shipped: true, ReloadInterval: 30 * time.Second} }

// Fingerprint is a digest of every rule file under paths (names and
// contents, as Load finds them): it changes when a rule is added, removed
// or edited.
func Fingerprint(paths []string) (string, error) {
	files, err := ruleFiles(paths)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("sigma rules: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

//go:embed rules/*.yml
var shipped embed.FS

// ShippedRules parses the rules tokenwatch ships (detect/sigma/rules/),
// linked among themselves.
func ShippedRules() ([]*Rule, error) {
	names, err := fs.Glob(shipped, "rules/*.yml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*Rule
	for _, n := range names {
		b, err := shipped.ReadFile(n)
		if err != nil {
			return nil, err
		}
		rs, err := ParseCollection("detect/sigma/"+n, b)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if err := checkIDs(out); err != nil {
		return nil, err
	}
	return out, Link(out)
}

// Detectors loads what cfg names, one detector per rule that raises alerts
// (see Compile); a rule that cannot run is an error, as are two rules with
// one id.
func Detectors(cfg Config) ([]detect.Detector, error) {
	if cfg.ReloadInterval < 0 {
		return nil, fmt.Errorf("reload_interval %s: must not be negative", cfg.ReloadInterval)
	}
	var rules []*Rule
	if cfg.Shipped {
		rs, err := ShippedRules()
		if err != nil {
			return nil, err
		}
		rules = append(rules, rs...)
	}
	if len(cfg.Paths) > 0 {
		rs, err := Load(cfg.Paths)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rs...)
	}
	out, err := Compile(rules)
	if err != nil {
		return nil, err
	}
	for _, id := range cfg.Shadow {
		// A misspelt id would leave the rule live, paging: refuse it.
		if !slices.ContainsFunc(out, func(d detect.Detector) bool { return d.ID() == id }) {
			for _, r := range rules {
				if r.DetectorID() == id {
					return nil, fmt.Errorf("shadow: %s raises no alerts of its own (it is part of %s, whose generate is false)", id, strings.Join(r.PartOf, ", "))
				}
			}
			return nil, fmt.Errorf("shadow: no loaded rule has detector id %q (ids are sigma.<rule id>; see tokenwatch detectors)", id)
		}
	}
	return out, nil
}

// Compile links rules (one collection: references resolve among all of
// them) and returns their detectors: one per correlation, and one per
// single-event rule that raises alerts of its own, which is every rule no
// correlation uses and those a correlation with generate: true uses (spec:
// "Generate"); the same for a correlation another one uses (a chain). The
// others run inside their correlations only.
func Compile(rules []*Rule) ([]detect.Detector, error) {
	if err := checkIDs(rules); err != nil {
		return nil, err
	}
	if err := Link(rules); err != nil {
		return nil, err
	}
	out := make([]detect.Detector, 0, len(rules))
	for _, r := range rules {
		switch {
		case r.Silent:
		case r.Correlation != nil:
			out = append(out, NewCorrDetector(r))
		default:
			out = append(out, NewDetector(r))
		}
	}
	return out, nil
}

// Match is one event a rule matched.
type Match struct {
	// Selections are the selections that matched the event, sorted.
	Selections []string
}

// Match runs the rule on one event: nil when the rule's source is another
// or the condition does not hold.
func (r *Rule) Match(ev *schemas.Event) *Match {
	if ev.Source != r.Source || r.Correlation != nil {
		return nil
	}
	return r.matchRecord(newRecord(ev))
}

// matchRecord is Match on an event's record (its source already checked).
func (r *Rule) matchRecord(rec *record) *Match {
	hit := make(map[string]bool, len(r.names))
	for _, n := range r.names {
		hit[n] = r.selections[n].match(rec)
	}
	if !r.cond.eval(hit) {
		return nil
	}
	m := &Match{}
	for _, n := range r.names {
		if hit[n] {
			m.Selections = append(m.Selections, n)
		}
	}
	return m
}

// Detector runs one rule in the detect program. It keeps no state: a rule
// judges each event alone.
type Detector struct {
	rule *Rule
	id   string
}

var _ detect.Detector = (*Detector)(nil)

// NewDetector wraps a loaded rule.
func NewDetector(r *Rule) *Detector { return &Detector{rule: r, id: r.DetectorID()} }

// Rule is the detector's rule.
func (d *Detector) Rule() *Rule { return d.rule }

// ID is "sigma.<rule id>".
func (d *Detector) ID() string { return d.id }

type noState struct{}

func (noState) MarshalBinary() ([]byte, error) { return []byte("{}"), nil }
func (noState) UnmarshalBinary([]byte) error   { return nil }

// NewState returns the empty state every rule shares.
func (d *Detector) NewState() detect.State { return noState{} }

// Observed is a sigma finding's explanation.
type Observed struct {
	Rule       string   `json:"rule"`
	RuleFile   string   `json:"rule_file"`
	Selections []string `json:"selections"`
	Action     string   `json:"action"`
	Tags       []string `json:"tags,omitempty"`
}

// Observe raises one finding per matching event, keyed by the event id (so
// a replay gives the same alert ids).
func (d *Detector) Observe(ev *schemas.Event, _ detect.State) []detect.Finding {
	m := d.rule.Match(ev)
	if m == nil {
		return nil
	}
	return []detect.Finding{{
		Key:      ev.EventID,
		Title:    d.rule.Title,
		Summary:  d.rule.Description,
		Severity: d.rule.Severity(),
		Observed: Observed{Rule: d.rule.ID, RuleFile: d.rule.Path, Selections: m.Selections, Action: ev.Action.Name, Tags: d.rule.Tags},
		Baseline: "single-event Sigma rule: no baseline",
		EventIDs: []string{ev.EventID}, FirstSeen: ev.Time.Time, LastSeen: ev.Time.Time,
	}}
}

// Meta maps the rule's own metadata: attack.tNNNN[.NNN] tags to technique
// ids, falsepositives, references, runbook and status (experimental when unset, as
// a rule nobody has vouched for).
func (d *Detector) Meta() detect.Meta { return d.rule.Meta() }

// Meta is the rule's detection metadata (see Detector.Meta).
func (r *Rule) Meta() detect.Meta {
	m := detect.Meta{Status: r.Status, FalsePositives: r.FalsePositives, References: r.References, Runbook: r.Runbook}
	if m.Status == "" {
		m.Status = detect.StatusExperimental
	}
	for _, t := range r.Tags {
		t = strings.ToLower(t)
		if id, ok := strings.CutPrefix(t, "attack.t"); ok && id != "" && id[0] >= '0' && id[0] <= '9' {
			m.Techniques = append(m.Techniques, "T"+strings.ToUpper(id))
		}
	}
	return m
}
