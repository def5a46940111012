package sigma

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// CorrDetector runs one correlation rule: it matches the rules the
// correlation uses on each event, keeps their recent hits per group in its
// state, and raises an alert when a window of the timespan meets the
// condition.
//
// Windows slide on event time (the spec: "should not be restricted to
// boundaries"): any span of Timespan whose hits meet the condition fires.
// (A condition with an upper bound is judged when a window closes instead:
// see Tick.) A window that fires consumes its hits and mutes the group for
// one timespan from its last hit, so a burst raises one alert, not one per
// event; a burst that goes on raises at most one alert per group and
// timespan. The alert's key is the group and the window's first event, so
// a replay of the same input gives the same alert ids.
type CorrDetector struct {
	rule  *Rule
	c     *Correlation
	inner []*CorrDetector // by rule index: the referenced correlations (a chain), nil for single-event rules
	id    string
	span  int64  // Timespan in ms
	def   string // digest of what the state's hits mean (corrState.Def)
}

var (
	_ detect.Detector = (*CorrDetector)(nil)
	_ detect.Ticker   = (*CorrDetector)(nil)
)

// NewCorrDetector wraps a linked correlation rule (see Link).
func NewCorrDetector(r *Rule) *CorrDetector {
	c := r.Correlation
	var refs []string
	inner := make([]*CorrDetector, len(c.rules))
	for i, t := range c.rules {
		refs = append(refs, t.DetectorID()+"="+t.ruleDigest)
		if t.Correlation != nil {
			inner[i] = NewCorrDetector(t)
		}
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%q\x00%q\x00%q\x00%d", c.Type, refs, c.GroupBy, c.Field, c.Timespan)))
	return &CorrDetector{rule: r, c: c, inner: inner, id: r.DetectorID(), span: c.Timespan.Milliseconds(), def: hex.EncodeToString(sum[:8])}
}

// ID is "sigma.<rule id>".
func (d *CorrDetector) ID() string { return d.id }

// Rule is the correlation rule.
func (d *CorrDetector) Rule() *Rule { return d.rule }

// Meta is the correlation rule's own metadata (spec: only the outermost
// rule carries it).
func (d *CorrDetector) Meta() detect.Meta { return d.rule.Meta() }

// NewState returns an integration's empty windows.
func (d *CorrDetector) NewState() detect.State { return &corrState{} }

// corrState is one integration's windows of one correlation. JSON, with
// maps (sorted keys) and slices only, so MarshalBinary after
// UnmarshalBinary gives the same bytes.
type corrState struct {
	// Def is the digest of the correlation the hits were gathered for: a
	// reload that keeps the rule id but changes its rules, their order, the
	// grouping or the window starts the state afresh rather than misread it.
	Def string `json:"def,omitempty"`
	// Groups by group key (the group-by values joined by \x1f).
	Groups map[string]*group `json:"groups,omitempty"`
	// Seq numbers matching events in arrival order (ties in event time).
	Seq int64 `json:"seq,omitempty"`
	// Latest is the newest event time (Unix ms) a rule matched; hits older
	// than Latest-Timespan can join no window and are dropped.
	Latest int64 `json:"latest,omitempty"`
	// Swept is when every group was last pruned (Unix ms).
	Swept int64 `json:"swept,omitempty"`
	// Dropped counts hits and groups dropped by the bounds (MaxHits,
	// MaxGroups) rather than by age.
	Dropped int64 `json:"dropped,omitempty"`
	// Inner are the states of the correlations this one references, by
	// detector id: a chained correlation's step is its firing.
	Inner map[string]*corrState `json:"inner,omitempty"`
}

type group struct {
	Vals []string `json:"vals,omitempty"`
	// Hits sorted by (T, Seq).
	Hits []hit `json:"hits,omitempty"`
	// Until is the end of the mute after an alert (Unix ms; 0: none): no
	// window ending before it fires.
	Until int64 `json:"until,omitempty"`
}

// hit is one event a referenced rule matched.
type hit struct {
	T   int64  `json:"t"`
	Seq int64  `json:"seq"`
	ID  string `json:"id,omitempty"`
	R   int    `json:"r,omitempty"` // index of the rule in Refs
	V   string `json:"v,omitempty"` // value_count's value
}

func (s *corrState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

func (s *corrState) UnmarshalBinary(b []byte) error {
	*s = corrState{}
	return json.Unmarshal(b, s)
}

// CorrObserved is a correlation alert's explanation: what was counted
// against the condition.
type CorrObserved struct {
	Rule     string   `json:"rule"`
	RuleFile string   `json:"rule_file"`
	Type     string   `json:"type"`
	GroupBy  []string `json:"group_by,omitempty"`
	Group    []string `json:"group,omitempty"`
	Timespan string   `json:"timespan"`
	// Condition as written, and Count what met it: events, distinct values
	// or distinct rules.
	Condition string `json:"condition"`
	Count     int    `json:"count"`
	Field     string `json:"field,omitempty"`
	// Values are value_count's distinct values (at most MaxEvidence).
	Values []string `json:"values,omitempty"`
	// Rules are the rules that matched in the window (temporal types: in
	// the order of their first hit; temporal_ordered: the sequence).
	Rules []string `json:"rules,omitempty"`
	// Sequence is temporal_ordered's chain of events.
	Sequence []Step   `json:"sequence,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// Step is one event of a temporal_ordered sequence.
type Step struct {
	Rule    string       `json:"rule"`
	EventID string       `json:"event_id"`
	Time    schemas.Time `json:"time"`
}

// Observe matches the correlation's rules on ev, folds the hits into their
// groups and returns the windows that now meet the condition.
func (d *CorrDetector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	if ev.Source != d.rule.Source {
		return nil
	}
	return d.observe(ev, newRecord(ev), st.(*corrState))
}

// matches reports whether the i-th referenced rule matches: a single-event
// rule on the event, a chained correlation by firing on it.
func (d *CorrDetector) matches(i int, ev *schemas.Event, rec *record, s *corrState) bool {
	in := d.inner[i]
	if in == nil {
		return d.c.rules[i].matchRecord(rec) != nil
	}
	if s.Inner == nil {
		s.Inner = map[string]*corrState{}
	}
	is := s.Inner[in.id]
	if is == nil {
		is = &corrState{}
		s.Inner[in.id] = is
	}
	return len(in.observe(ev, rec, is)) > 0
}

func (d *CorrDetector) observe(ev *schemas.Event, rec *record, s *corrState) []detect.Finding {
	if s.Def != "" && s.Def != d.def {
		*s = corrState{}
	}
	t := ev.Time.UnixMilli()
	var touched []string
	// Per touched group: a hit landed before its newest (an event arriving
	// late), or the event matched temporal_ordered's last step. Otherwise
	// only windows ending at this event are new, and only those are judged.
	late, last := map[string]bool{}, map[string]bool{}
	matched := false
	for i := range d.c.rules {
		if !d.matches(i, ev, rec, s) {
			continue
		}
		vals, ok := d.groupOf(rec, i)
		if !ok {
			continue // an event without the group-by fields groups with nothing
		}
		var values []string
		if d.c.Type == ValueCount {
			if values = lookupStrings(rec, d.c.fieldFor(d.c.Field, i)); len(values) == 0 {
				continue
			}
		}
		if !matched {
			matched = true
			s.Def = d.def
			s.Seq++
			s.Latest = max(s.Latest, t)
		}
		key := strings.Join(vals, "\x1f")
		g := s.Groups[key]
		if g == nil {
			if s.Groups == nil {
				s.Groups = map[string]*group{}
			}
			g = &group{Vals: vals}
			s.Groups[key] = g
		}
		h := hit{T: t, Seq: s.Seq, ID: ev.EventID, R: i}
		switch d.c.Type {
		case EventCount:
			// An event is counted once per group, whichever rules it matched.
			if contains(touched, key) {
				continue
			}
			late[key] = late[key] || g.insert(h)
		case ValueCount:
			// A sliding window counts a value once: its latest hit is all it
			// needs. (A closing window counts from its first hit: keep all.)
			for _, v := range values {
				h.V = v
				late[key] = g.latest(h, d.c.Closed, func(x hit) bool { return x.V == v }) || late[key]
			}
		case Temporal:
			late[key] = g.latest(h, d.c.Closed, func(x hit) bool { return x.R == i }) || late[key]
		default:
			late[key] = late[key] || g.insert(h)
			last[key] = last[key] || i == len(d.c.rules)-1
		}
		if !contains(touched, key) {
			touched = append(touched, key)
		}
	}
	if d.c.Closed {
		// Windows close as event time passes, whatever the event matched.
		out := d.close(s, max(s.Latest, t))
		if matched {
			s.prune(d.span, touched)
			s.bound()
		}
		return out
	}
	if !matched {
		return nil
	}
	s.prune(d.span, touched)
	s.bound()
	sort.Strings(touched)
	var out []detect.Finding
	for _, key := range touched {
		g := s.Groups[key]
		if g == nil {
			continue // dropped by the bounds
		}
		if d.c.Type == TemporalOrdered && !late[key] && !last[key] {
			continue // no chain can end at this event
		}
		if f, ok := d.fire(key, g, late[key]); ok {
			out = append(out, f)
		}
	}
	return out
}

// groupOf reads the group-by values of an event of the i-th rule; false
// when one is absent or null.
func (d *CorrDetector) groupOf(rec *record, i int) ([]string, bool) {
	vals := make([]string, 0, len(d.c.GroupBy))
	for _, f := range d.c.GroupBy {
		vs := lookupStrings(rec, d.c.fieldFor(f, i))
		if len(vs) == 0 {
			return nil, false
		}
		// A list groups as the whole list.
		vals = append(vals, strings.Join(vs, ","))
	}
	return vals, true
}

// lookupStrings returns a field's non-null values as strings.
func lookupStrings(rec *record, path []string) []string {
	vs, ok := rec.lookup(path)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range vs {
		switch x := v.(type) {
		case nil:
		case string:
			out = append(out, x)
		case map[string]any, []any:
			b, _ := json.Marshal(x)
			out = append(out, string(b))
		default:
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

// insert keeps Hits sorted by (T, Seq): an event arriving late lands in
// its event-time place, and insert reports it.
func (g *group) insert(h hit) (late bool) {
	i := sort.Search(len(g.Hits), func(i int) bool {
		x := g.Hits[i]
		return x.T > h.T || (x.T == h.T && x.Seq > h.Seq)
	})
	g.Hits = append(g.Hits, hit{})
	copy(g.Hits[i+1:], g.Hits[i:])
	g.Hits[i] = h
	return i < len(g.Hits)-1
}

// latest keeps one hit per same (a value, a rule), unless all: h replaces
// an older one; a late h older than the one kept adds nothing and is
// dropped.
func (g *group) latest(h hit, all bool, same func(hit) bool) (late bool) {
	if all {
		return g.insert(h)
	}
	for i, x := range g.Hits {
		if !same(x) {
			continue
		}
		if x.T > h.T {
			return false
		}
		g.Hits = append(g.Hits[:i], g.Hits[i+1:]...)
		break
	}
	return g.insert(h)
}

// prune drops hits too old for any window with the newest (Latest -
// Timespan): in the touched groups on each event, in every group once per
// timespan; a group with no hits and no mute left goes.
func (s *corrState) prune(span int64, touched []string) {
	cut := s.Latest - span
	keys := touched
	if s.Latest-s.Swept >= span {
		s.Swept = s.Latest
		keys = make([]string, 0, len(s.Groups))
		for k := range s.Groups {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		g := s.Groups[k]
		if g == nil {
			continue
		}
		n := 0
		for n < len(g.Hits) && g.Hits[n].T < cut {
			n++
		}
		g.Hits = g.Hits[n:]
		if len(g.Hits) == 0 {
			g.Hits = nil
			if g.Until <= s.Latest {
				delete(s.Groups, k)
			}
		}
	}
}

// bound enforces MaxGroups (dropping the group idle longest) and MaxHits
// (dropping the oldest hit), counting what it drops.
func (s *corrState) bound() {
	for len(s.Groups) > MaxGroups {
		k := s.oldest(func(g *group) int64 {
			if n := len(g.Hits); n > 0 {
				return max(g.Hits[n-1].T, g.Until)
			}
			return g.Until
		})
		delete(s.Groups, k)
		s.Dropped++
	}
	total := 0
	for _, g := range s.Groups {
		total += len(g.Hits)
	}
	for ; total > MaxHits; total-- {
		k := s.oldest(func(g *group) int64 {
			if len(g.Hits) == 0 {
				return 1<<63 - 1
			}
			return g.Hits[0].T
		})
		g := s.Groups[k]
		g.Hits = g.Hits[1:]
		s.Dropped++
	}
}

// oldest is the group key with the smallest at(g), ties to the smallest key.
func (s *corrState) oldest(at func(*group) int64) string {
	best, bestAt, found := "", int64(0), false
	for k, g := range s.Groups {
		a := at(g)
		if !found || a < bestAt || (a == bestAt && k < best) {
			best, bestAt, found = k, a, true
		}
	}
	return best
}

// fire looks for the earliest-ending window of g that meets the condition
// and is not muted; it consumes the window's hits (and older ones) and
// mutes the group for a timespan.
func (d *CorrDetector) fire(key string, g *group, late bool) (detect.Finding, bool) {
	var lo, hi int
	var chain []int
	switch {
	case (d.c.Type == EventCount || d.c.Type == ValueCount) && !late:
		// In order, the one new window ends at the newest hit, and every hit
		// counts one (an event per group; value_count keeps a value's
		// latest hit only).
		hi = len(g.Hits) - 1
		h := g.Hits[hi]
		lo = sort.Search(hi, func(i int) bool { return h.T-g.Hits[i].T <= d.span })
		if h.T < g.Until || hi-lo+1 < d.c.Min {
			return detect.Finding{}, false
		}
		lo = hi - d.c.Min + 1
	case d.c.Type == TemporalOrdered:
		chain = d.sequence(g)
		if chain == nil {
			return detect.Finding{}, false
		}
		lo, hi = chain[0], chain[len(chain)-1]
	default:
		var ok bool
		if lo, hi, ok = d.window(g); !ok {
			return detect.Finding{}, false
		}
	}
	win := g.Hits[lo : hi+1]
	if chain != nil {
		win = make([]hit, len(chain))
		for i, j := range chain {
			win[i] = g.Hits[j]
		}
	}
	f := d.finding(key, g, win)
	g.Until = g.Hits[hi].T + d.span
	g.Hits = append([]hit(nil), g.Hits[hi+1:]...)
	if len(g.Hits) == 0 {
		g.Hits = nil
	}
	return f, true
}

// counter counts what a condition measures in a run of hits: events
// (event_count keeps one hit per event and group), distinct values
// (value_count) or distinct rules (temporal).
type counter struct {
	typ    string
	events int
	values map[string]int
	rules  map[int]int
}

func newCounter(typ string) *counter {
	return &counter{typ: typ, values: map[string]int{}, rules: map[int]int{}}
}

// add counts h in (n 1) or out (n -1).
func (c *counter) add(h hit, n int) {
	switch c.typ {
	case ValueCount:
		if c.values[h.V] += n; c.values[h.V] == 0 {
			delete(c.values, h.V)
		}
	case Temporal:
		if c.rules[h.R] += n; c.rules[h.R] == 0 {
			delete(c.rules, h.R)
		}
	default:
		c.events += n
	}
}

func (c *counter) count() int {
	switch c.typ {
	case ValueCount:
		return len(c.values)
	case Temporal:
		return len(c.rules)
	}
	return c.events
}

// needed: removing h keeps the count from dropping.
func (c *counter) needed(h hit) bool {
	switch c.typ {
	case ValueCount:
		return c.values[h.V] == 1
	case Temporal:
		return c.rules[h.R] == 1
	}
	return true
}

// window finds the first window (by its last hit) of at most Timespan
// whose count meets Min, ending at or after the mute, and narrows its
// start as far as the count still holds.
func (d *CorrDetector) window(g *group) (lo, hi int, ok bool) {
	c := newCounter(d.c.Type)
	for j, h := range g.Hits {
		c.add(h, 1)
		for h.T-g.Hits[lo].T > d.span {
			c.add(g.Hits[lo], -1)
			lo++
		}
		if h.T < g.Until || c.count() < d.c.Min {
			continue
		}
		for lo < j && !(c.needed(g.Hits[lo]) && c.count() == d.c.Min) {
			c.add(g.Hits[lo], -1)
			lo++
		}
		return lo, j, true
	}
	return 0, 0, false
}

// sequence finds temporal_ordered's chain: one hit of each rule in Refs'
// order, each from a later event than the one before (event time; ties in
// arrival order), first to last within Timespan, ending at or after the
// mute. One pass in event-time order keeps, per step, the chain through
// it that starts latest (the best to finish within Timespan); the first
// chain to complete ends soonest. O(hits × steps), two allocations.
func (d *CorrDetector) sequence(g *group) []int {
	n := len(d.c.rules)
	hits := g.Hits
	// prev[x]: the hit before x in the best chain through x; start[x]: its
	// first hit. best[k]: the hit ending the best chain over steps 0..k.
	prev, start := make([]int, len(hits)), make([]int, len(hits))
	var bestBuf [8]int
	best := bestBuf[:0]
	for k := 0; k < n; k++ {
		best = append(best, -1)
	}
	for i := 0; i < len(hits); {
		// One event's hits (adjacent: same T and Seq) extend the chains that
		// ended before it, never one another: judge them all, then update.
		j := i
		for j < len(hits) && hits[j].Seq == hits[i].Seq {
			j++
		}
		for x := i; x < j; x++ {
			h := hits[x]
			prev[x], start[x] = -1, x
			if h.R > 0 {
				p := best[h.R-1]
				if p < 0 || h.T-hits[start[p]].T > d.span {
					start[x] = -1
					continue
				}
				prev[x], start[x] = p, start[p]
			}
			if h.R == n-1 && h.T >= g.Until {
				chain := make([]int, n)
				for k, y := n-1, x; k >= 0; k, y = k-1, prev[y] {
					chain[k] = y
				}
				return chain
			}
		}
		for x := i; x < j; x++ {
			k := hits[x].R
			if start[x] >= 0 && k < n-1 && (best[k] < 0 || hits[start[x]].T >= hits[start[best[k]]].T) {
				best[k] = x
			}
		}
		i = j
	}
	return nil
}

func (d *CorrDetector) finding(key string, g *group, win []hit) detect.Finding {
	c := d.c
	o := CorrObserved{Rule: d.rule.ID, RuleFile: d.rule.Path, Type: c.Type, GroupBy: c.GroupBy, Group: g.Vals,
		Timespan: c.Timespan.String(), Condition: c.Cond, Field: c.Field, Tags: d.rule.Tags}
	var ids []string
	seenID, seenV, seenR := map[string]bool{}, map[string]bool{}, map[int]bool{}
	for _, h := range win {
		if !seenR[h.R] {
			seenR[h.R] = true
			o.Rules = append(o.Rules, d.refName(h.R))
		}
		if c.Type == ValueCount && !seenV[h.V] {
			seenV[h.V] = true
			if len(o.Values) < MaxEvidence {
				o.Values = append(o.Values, h.V)
			}
		}
		if c.Type == TemporalOrdered {
			o.Sequence = append(o.Sequence, Step{Rule: d.refName(h.R), EventID: h.ID, Time: schemas.NewTime(time.UnixMilli(h.T).UTC())})
		}
		if !seenID[h.ID] && len(ids) < MaxEvidence {
			seenID[h.ID] = true
			ids = append(ids, h.ID)
		}
	}
	switch c.Type {
	case EventCount:
		o.Count = len(win)
	case ValueCount:
		o.Count = len(seenV)
	default:
		o.Count = len(seenR)
	}
	sum := sha256.Sum256([]byte(key))
	first, last := win[0], win[len(win)-1]
	return detect.Finding{
		// The group and the window's first event: the same window of the
		// same group is the same alert on every replay.
		Key:       "corr:" + hex.EncodeToString(sum[:8]) + ":" + first.ID + "@" + fmt.Sprint(first.T),
		Title:     d.rule.Title,
		Summary:   d.rule.Description,
		Severity:  d.rule.Severity(),
		Observed:  o,
		Baseline:  fmt.Sprintf("Sigma %s correlation of %s within %s per integration%s: %s", c.Type, strings.Join(c.Refs, ", "), c.Timespan, groupNote(c.GroupBy), c.Cond),
		EventIDs:  ids,
		FirstSeen: time.UnixMilli(first.T).UTC(),
		LastSeen:  time.UnixMilli(last.T).UTC(),
	}
}

func groupNote(by []string) string {
	if len(by) == 0 {
		return ""
	}
	return " by " + strings.Join(by, ", ")
}

// refName names the i-th referenced rule: its name, else its id as written.
func (d *CorrDetector) refName(i int) string {
	if n := d.c.rules[i].Name; n != "" {
		return n
	}
	return d.c.Refs[i]
}

// Tick closes the windows that ended before watermark: a correlation whose
// condition bounds the count from above (lt, lte, eq, neq) is judged then.
// The engine ticks as the event-time watermark crosses each hour and when
// a replay ends, so such an alert comes up to an hour after its window
// closed (or with the integration's next event, whichever is first).
func (d *CorrDetector) Tick(watermark time.Time, st detect.State) []detect.Finding {
	if !d.c.Closed {
		return nil
	}
	return d.close(st.(*corrState), watermark.UnixMilli())
}

// close judges every group's windows that ended before now, oldest first.
// With an upper-bound condition the windows tumble per group: one opens at
// the group's first hit and spans Timespan; when it has closed its count
// is judged (one alert at most) and its hits go, and the next hit opens
// the next window.
func (d *CorrDetector) close(s *corrState, now int64) []detect.Finding {
	var keys []string
	for k, g := range s.Groups {
		if len(g.Hits) == 0 || now > g.Hits[0].T+d.span {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []detect.Finding
	for _, k := range keys {
		g := s.Groups[k]
		for len(g.Hits) > 0 && now > g.Hits[0].T+d.span {
			end := g.Hits[0].T + d.span
			j := sort.Search(len(g.Hits), func(i int) bool { return g.Hits[i].T > end })
			win := g.Hits[:j]
			if d.c.holds(d.measure(win)) {
				out = append(out, d.finding(k, g, win))
			}
			g.Hits = append([]hit(nil), g.Hits[j:]...)
		}
		if len(g.Hits) == 0 {
			delete(s.Groups, k)
		}
	}
	return out
}

// measure is what the condition counts in win: events, distinct values or
// distinct rules.
func (d *CorrDetector) measure(win []hit) int {
	c := newCounter(d.c.Type)
	for _, h := range win {
		c.add(h, 1)
	}
	return c.count()
}
