package sigma

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Correlation is a correlation rule's `correlation:` section, as the Sigma
// correlation rules specification 2.0 defines it
// (SigmaHQ/sigma-specification,
// specification/sigma-correlation-rules-specification.md, "Correlation
// section" and "Correlation Types").
type Correlation struct {
	// Type is event_count, value_count, temporal or temporal_ordered.
	Type string
	// Refs are the referenced rules as written (an id or a name), in order:
	// temporal_ordered's sequence.
	Refs []string
	// GroupBy are fields or alias names; events group by their values
	// within one integration (the state is per integration).
	GroupBy []string
	// Timespan is the window, in event time.
	Timespan time.Duration
	// Field is value_count's field whose distinct values are counted.
	Field string
	// Min is the smallest count that satisfies the condition: counts of
	// events (event_count), distinct values (value_count) or distinct rules
	// (temporal; temporal_ordered needs them all).
	Min int
	// Cond is the condition as written ("gte 10"), for alerts.
	Cond string
	// Aliases map an alias name to a field per referenced rule (by name or
	// id), as the spec's "Field Name Aliases".
	Aliases map[string]map[string]string
	// Generate: the referenced rules also raise their own alerts.
	Generate bool
	// Closed: the condition bounds the count from above, so a window is
	// judged when it closes (tumbling windows per group), not as it grows.
	Closed bool

	holds    func(count int) bool
	rules    []*Rule // resolved Refs (Link)
	refNodes []*yaml.Node
	node     *yaml.Node
	file     string
}

// Correlation types (spec: "Correlation type").
const (
	EventCount      = "event_count"
	ValueCount      = "value_count"
	Temporal        = "temporal"
	TemporalOrdered = "temporal_ordered"
)

// State bounds per correlation rule and integration: a noisy integration
// cannot grow a rule's state without end. Past MaxGroups the group idle
// longest is dropped; past MaxHits the oldest hit. Conditions needing more
// hits than MaxHits cannot be met and are refused at load.
const (
	MaxGroups = 1000
	MaxHits   = 10000
	// MaxEvidence bounds a correlation alert's event ids.
	MaxEvidence = 20
)

var corrKeys = map[string]bool{"type": true, "rules": true, "group-by": true, "timespan": true, "condition": true, "aliases": true, "generate": true}

var timespanRE = regexp.MustCompile(`^([1-9][0-9]*)([smhd])$`)

func parseCorrelation(file string, n, generate *yaml.Node) (*Correlation, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(file, n, "correlation", "correlation is a mapping (type, rules, group-by, timespan, condition)")
	}
	c := &Correlation{node: n, file: file}
	var typ, cond, genInner *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !corrKeys[k.Value] {
			return nil, errAt(file, k, "correlation."+k.Value, "unknown correlation key (type, rules, group-by, timespan, condition, aliases, generate)")
		}
		var err error
		switch k.Value {
		case "type":
			typ = v
			err = v.Decode(&c.Type)
		case "rules":
			err = c.parseRefs(v)
		case "group-by":
			err = decodeStrings(v, &c.GroupBy)
		case "timespan":
			c.Timespan, err = parseTimespan(v)
		case "condition":
			cond = v
		case "aliases":
			err = c.parseAliases(v)
		case "generate":
			// pySigma reads generate here; the spec's schema at the top level.
			genInner = v
		}
		if err != nil {
			if le := (*LoadError)(nil); errors.As(err, &le) {
				return nil, le
			}
			return nil, errAt(file, v, "correlation."+k.Value, "%v", err)
		}
	}
	switch c.Type {
	case EventCount, ValueCount, Temporal, TemporalOrdered:
	case "":
		return nil, errAt(file, n, "correlation.type", "a correlation needs a type (event_count, value_count, temporal, temporal_ordered)")
	default:
		return nil, errAt(file, typ, "correlation.type", "correlation type %q is not supported (event_count, value_count, temporal, temporal_ordered)", c.Type)
	}
	if len(c.Refs) == 0 {
		return nil, errAt(file, n, "correlation.rules", "a correlation needs the rules it correlates")
	}
	if (c.Type == Temporal || c.Type == TemporalOrdered) && len(c.Refs) < 2 {
		return nil, errAt(file, n, "correlation.rules", "a %s correlation relates two rules or more", c.Type)
	}
	if c.Timespan == 0 {
		return nil, errAt(file, n, "correlation.timespan", "a correlation needs a timespan (e.g. 5m, 1h, 1d)")
	}
	for _, g := range []*yaml.Node{generate, genInner} {
		if g == nil {
			continue
		}
		var b bool
		if err := g.Decode(&b); err != nil {
			return nil, errAt(file, g, "generate", "generate is true or false")
		}
		if generate != nil && genInner != nil && b != c.Generate {
			return nil, errAt(file, g, "generate", "generate is set twice (top level and under correlation) with different values")
		}
		c.Generate = b
	}
	if err := c.parseCondition(cond); err != nil {
		return nil, err
	}
	for _, g := range c.GroupBy {
		if g == "" {
			return nil, errAt(file, n, "correlation.group-by", "an empty group-by field")
		}
	}
	return c, nil
}

func (c *Correlation) parseRefs(v *yaml.Node) error {
	refs := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		refs = v.Content
	}
	seen := map[string]bool{}
	for _, r := range refs {
		if r.Kind != yaml.ScalarNode || r.Value == "" {
			return errAt(c.file, r, "correlation.rules", "a rule reference is a rule's id or name")
		}
		if seen[r.Value] {
			return errAt(c.file, r, "correlation.rules", "rule %q is listed twice", r.Value)
		}
		seen[r.Value] = true
		c.Refs = append(c.Refs, r.Value)
		c.refNodes = append(c.refNodes, r)
	}
	return nil
}

// parseTimespan reads the spec's "number + letter (in lowercase)": s, m, h, d.
func parseTimespan(v *yaml.Node) (time.Duration, error) {
	m := timespanRE.FindStringSubmatch(v.Value)
	if v.Kind != yaml.ScalarNode || m == nil {
		return 0, fmt.Errorf("timespan %q: a number and s, m, h or d (90m, 1h, 1d)", v.Value)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 366*24*3600 {
		return 0, fmt.Errorf("timespan %q is too long", v.Value)
	}
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	if time.Duration(n)*unit > 366*24*time.Hour {
		return 0, fmt.Errorf("timespan %q is longer than a year", v.Value)
	}
	return time.Duration(n) * unit, nil
}

func (c *Correlation) parseAliases(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return errAt(c.file, v, "correlation.aliases", "aliases map an alias to {rule name: field}")
	}
	c.Aliases = map[string]map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, m := v.Content[i], v.Content[i+1]
		var per map[string]string
		if m.Kind != yaml.MappingNode || m.Decode(&per) != nil {
			return errAt(c.file, m, "correlation.aliases", "alias %s maps rule names to field names", k.Value)
		}
		c.Aliases[k.Value] = per
	}
	return nil
}

// parseCondition reads the condition map (gt, gte, lt, lte, eq, neq, and
// value_count's field). A condition a growing count meets and keeps (gt,
// gte, and for temporal types bounds the rule count cannot exceed) is
// judged as each event arrives (Min). One with an upper bound on the count
// (lt, lte, eq, neq: "fewer than 5 in an hour") can only be judged once a
// window has closed (Closed): see CorrDetector.Tick.
func (c *Correlation) parseCondition(n *yaml.Node) error {
	max := MaxHits
	if c.Type == Temporal || c.Type == TemporalOrdered {
		max = len(c.Refs)
	}
	if n == nil {
		switch c.Type {
		case EventCount, ValueCount:
			return errAt(c.file, c.node, "correlation.condition", "an %s correlation needs a condition (e.g. gte: 10)", c.Type)
		}
		c.Min, c.Cond = max, fmt.Sprintf("all %d rules", max)
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return errAt(c.file, n, "correlation.condition", "the condition is a map such as {gte: 10}")
	}
	type bound struct {
		op  string
		val int
	}
	var bounds []bound
	var conds []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "field":
			if c.Type != ValueCount {
				return errAt(c.file, k, "correlation.condition.field", "field belongs to value_count correlations")
			}
			var fs []string
			if err := decodeStrings(v, &fs); err != nil || len(fs) == 0 || fs[0] == "" {
				return errAt(c.file, v, "correlation.condition.field", "field is a field name")
			}
			if len(fs) > 1 {
				return errAt(c.file, v, "correlation.condition.field", "counting combinations of several fields is not supported: name one field")
			}
			c.Field = fs[0]
		case "gt", "gte", "lt", "lte", "eq", "neq":
			var x int
			if err := v.Decode(&x); err != nil || x < 0 {
				return errAt(c.file, v, "correlation.condition."+k.Value, "%s takes a whole number", k.Value)
			}
			bounds = append(bounds, bound{k.Value, x})
			conds = append(conds, k.Value+" "+v.Value)
		default:
			return errAt(c.file, k, "correlation.condition."+k.Value, "unknown condition key (gt, gte, lt, lte, eq, neq, field)")
		}
	}
	if c.Type == ValueCount && c.Field == "" {
		return errAt(c.file, n, "correlation.condition.field", "a value_count correlation names the field whose values it counts")
	}
	if len(bounds) == 0 {
		return errAt(c.file, n, "correlation.condition", "the condition has no criterion (gt, gte, …)")
	}
	holds := func(x int) bool {
		for _, b := range bounds {
			ok := map[string]bool{"gt": x > b.val, "gte": x >= b.val, "lt": x < b.val, "lte": x <= b.val, "eq": x == b.val, "neq": x != b.val}[b.op]
			if !ok {
				return false
			}
		}
		return true
	}
	c.Cond = strings.Join(conds, " and ")
	c.Min = 0
	for x := 1; x <= max; x++ {
		if holds(x) {
			c.Min = x
			break
		}
	}
	if c.Min == 0 {
		return errAt(c.file, n, "correlation.condition", "%s never holds for a count from 1 to %d (the most this correlation can count)", c.Cond, max)
	}
	for x := c.Min; x <= max && !c.Closed; x++ {
		c.Closed = !holds(x)
	}
	c.holds = holds
	if c.Type == TemporalOrdered && (c.Closed || c.Min != len(c.Refs)) {
		return errAt(c.file, n, "correlation.condition", "%s: a temporal_ordered correlation needs its whole sequence; a partial one is not supported", c.Cond)
	}
	return nil
}

// Link resolves every correlation's references among rules (by id, else by
// name; spec: "Related rules") and marks the rules they use (PartOf,
// Silent). A correlation may reference correlations (a chain, spec:
// "Allowing the user to chain multiple correlations together"). A
// reference to no rule, a cycle, rules of different sources, an alias
// without a field for one of the rules, or two rules of one name, are
// errors naming the file and line.
func Link(rules []*Rule) error {
	byID, byName := map[string]*Rule{}, map[string]*Rule{}
	for _, r := range rules {
		r.PartOf, r.Silent = nil, false
		if r.ID != "" {
			byID[r.ID] = r
		}
		if r.Name != "" {
			if prev, dup := byName[r.Name]; dup {
				return &LoadError{File: r.Path, Line: r.Line, Construct: "name", Msg: fmt.Sprintf("name %q is also the name of the rule at %s:%d", r.Name, prev.Path, prev.Line)}
			}
			byName[r.Name] = r
		}
	}
	l := &linker{byID: byID, byName: byName, state: map[*Rule]int{}, generated: map[*Rule]bool{}}
	for _, r := range rules {
		if err := l.resolve(r); err != nil {
			return err
		}
	}
	for _, r := range rules {
		if len(r.PartOf) > 0 {
			sort.Strings(r.PartOf)
			r.Silent = !l.generated[r]
		}
	}
	return nil
}

type linker struct {
	byID, byName map[string]*Rule
	state        map[*Rule]int // 1 resolving, 2 resolved
	generated    map[*Rule]bool
}

// resolve links one correlation after the correlations it references.
func (l *linker) resolve(r *Rule) error {
	c := r.Correlation
	if c == nil || l.state[r] == 2 {
		return nil
	}
	l.state[r] = 1
	c.rules = c.rules[:0]
	for i, ref := range c.Refs {
		t := l.byID[ref]
		if t == nil {
			t = l.byName[ref]
		}
		if t == nil {
			return errAt(c.file, c.refNodes[i], "correlation.rules", "no loaded rule has the id or name %q", ref)
		}
		if l.state[t] == 1 {
			return errAt(c.file, c.refNodes[i], "correlation.rules", "%q leads back to this correlation: a cycle", ref)
		}
		if err := l.resolve(t); err != nil {
			return err
		}
		if t.Correlation != nil && t.Correlation.Closed {
			return errAt(c.file, c.refNodes[i], "correlation.rules", "%q has an upper-bound condition (%s): it fires when its window closes, not on an event, so it cannot be a step of another correlation", ref, t.Correlation.Cond)
		}
		if t.Source != c.rules0Source(t) {
			return errAt(c.file, c.refNodes[i], "correlation.rules", "%q reads %s events, %q %s: a correlation's rules read one source (its state is per integration)", ref, t.Source, c.Refs[0], c.rules[0].Source)
		}
		c.rules = append(c.rules, t)
		if !contains(t.PartOf, r.DetectorID()) {
			t.PartOf = append(t.PartOf, r.DetectorID())
		}
		l.generated[t] = l.generated[t] || c.Generate
	}
	r.Source = c.rules[0].Source
	l.state[r] = 2
	return c.checkAliases()
}

// rules0Source is the source the correlation's first resolved rule reads
// (t's own while none is resolved yet).
func (c *Correlation) rules0Source(t *Rule) string {
	if len(c.rules) == 0 {
		return t.Source
	}
	return c.rules[0].Source
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkAliases: every alias names a field for each referenced rule, by the
// rule's name or id.
func (c *Correlation) checkAliases() error {
	for alias, per := range c.Aliases {
		for k := range per {
			if !contains(c.Refs, k) && c.ruleNamed(k) < 0 {
				return errAt(c.file, c.node, "correlation.aliases", "alias %s names rule %q, which the correlation does not use", alias, k)
			}
		}
		for i, r := range c.rules {
			if c.aliasField(alias, i) == "" {
				return errAt(c.file, c.node, "correlation.aliases", "alias %s has no field for rule %q (%s)", alias, c.Refs[i], r.Title)
			}
		}
	}
	return nil
}

func (c *Correlation) ruleNamed(k string) int {
	for i, r := range c.rules {
		if r.Name == k || r.ID == k {
			return i
		}
	}
	return -1
}

// aliasField is alias's field for the i-th rule ("" when none).
func (c *Correlation) aliasField(alias string, i int) string {
	per := c.Aliases[alias]
	r := c.rules[i]
	for _, k := range []string{c.Refs[i], r.Name, r.ID} {
		if f, ok := per[k]; ok && k != "" {
			return f
		}
	}
	return ""
}

// fieldFor is the field to read for name (a group-by entry or value_count's
// field) in events of the i-th rule: the alias's field, or name itself.
func (c *Correlation) fieldFor(name string, i int) []string {
	if _, ok := c.Aliases[name]; ok {
		name = c.aliasField(name, i)
	}
	return strings.Split(strings.ToLower(name), ".")
}
