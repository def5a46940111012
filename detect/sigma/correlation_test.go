package sigma

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// bases are three single-event Okta rules, a, b and c, on eventType
// app.oauth2.a, .b and .c.
const bases = `title: A
name: a
logsource: {product: okta}
detection: {sel: {eventtype: app.oauth2.a}, condition: sel}
---
title: B
name: b
logsource: {product: okta}
detection: {sel: {eventtype: app.oauth2.b}, condition: sel}
---
title: C
id: rule-c
name: c
logsource: {product: okta}
detection: {sel: {eventtype: app.oauth2.c}, condition: sel}
`

// collection is bases and a correlation over them.
func collection(t *testing.T, corr string) []*Rule {
	t.Helper()
	rs, err := ParseCollection("c.yml", []byte(corr+"\n---\n"+bases))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func corrDetector(t *testing.T, corr string) *CorrDetector {
	t.Helper()
	dets, err := Compile(collection(t, corr))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dets {
		if c, ok := d.(*CorrDetector); ok {
			return c
		}
	}
	t.Fatal("no correlation detector")
	return nil
}

// step is one event: at minute min, integration in (default i1), user u
// (default u1), eventType app.oauth2.<typ>, client IP ip.
type step struct {
	min     float64
	typ     string
	u, ip   string
	in      string
	eventID string
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func (s step) event(n int) *schemas.Event {
	u, in, id := s.u, s.in, s.eventID
	if u == "" {
		u = "u1"
	}
	if in == "" {
		in = "i1"
	}
	if id == "" {
		id = fmt.Sprintf("e%d", n)
	}
	rec := map[string]any{"eventType": "app.oauth2." + s.typ, "actor": map[string]any{"id": u}}
	if s.ip != "" {
		rec["client"] = map[string]any{"ipAddress": s.ip}
	}
	raw, _ := json.Marshal(rec)
	return &schemas.Event{EventID: id, Source: "okta", Time: schemas.NewTime(t0.Add(time.Duration(s.min * float64(time.Minute)))),
		Integration: schemas.Integration{ID: in}, Raw: raw}
}

// run feeds steps through d with one state per integration; with
// roundTrip every state goes through MarshalBinary/UnmarshalBinary into a
// fresh one after each event, as a checkpoint and restore would.
func run(t *testing.T, d *CorrDetector, steps []step, roundTrip bool) []detect.Finding {
	t.Helper()
	states := map[string]detect.State{}
	var out []detect.Finding
	for n, s := range steps {
		ev := s.event(n)
		st := states[ev.Integration.ID]
		if st == nil {
			st = d.NewState()
		}
		out = append(out, d.Observe(ev, st)...)
		if roundTrip {
			b, err := st.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			fresh := d.NewState()
			if err := fresh.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if b2, _ := fresh.MarshalBinary(); !bytes.Equal(b, b2) {
				t.Fatalf("state does not round-trip:\n%s\n%s", b, b2)
			}
			st = fresh
		}
		states[ev.Integration.ID] = st
	}
	return out
}

func corrRule(typ, rules, extra string) string {
	return fmt.Sprintf("title: corr\nid: corr\nlevel: high\ntags: [attack.t1110]\ncorrelation:\n  type: %s\n  rules: %s\n  group-by: [actor.id]\n  timespan: 10m\n%s", typ, rules, extra)
}

func TestCorrelationTypes(t *testing.T) {
	count3 := corrRule(EventCount, "[a]", "  condition: {gte: 3}\n")
	values3 := corrRule(ValueCount, "[a]", "  condition: {field: client.ipAddress, gte: 3}\n")
	temporal := corrRule(Temporal, "[a, b, rule-c]", "")
	temporal2 := corrRule(Temporal, "[a, b, c]", "  condition: {gte: 2}\n")
	ordered := corrRule(TemporalOrdered, "[a, b, c]", "")
	noGroup := strings.Replace(count3, "  group-by: [actor.id]\n", "", 1)
	twoFields := strings.Replace(count3, "[actor.id]", "[actor.id, client.ipAddress]", 1)
	a := func(min float64) step { return step{min: min, typ: "a"} }
	cases := []struct {
		name  string
		rule  string
		steps []step
		want  [][]string // each finding's event ids
	}{
		{"event_count fires on the third", count3, []step{a(0), a(1), a(2)}, [][]string{{"e0", "e1", "e2"}}},
		{"event_count one too few", count3, []step{a(0), a(1)}, nil},
		{"event_count outside the timespan", count3, []step{a(0), a(6), a(10.5)}, nil},
		{"event_count narrows to the last timespan", count3, []step{a(0), a(6), a(10.5), a(12)}, [][]string{{"e1", "e2", "e3"}}},
		{"event_count other groups", count3, []step{a(0), {min: 1, typ: "a", u: "u2"}, a(2)}, nil},
		{"event_count other integrations", count3, []step{a(0), {min: 1, typ: "a", in: "i2"}, a(2)}, nil},
		{"event_count other rule's events", count3, []step{a(0), {min: 1, typ: "b"}, a(2)}, nil},
		{"event_count one alert per burst", count3, []step{a(0), a(1), a(2), a(3), a(4), a(5), a(6)}, [][]string{{"e0", "e1", "e2"}}},
		{"event_count again after the mute", count3, []step{a(0), a(1), a(2), a(3), a(12), a(13)}, [][]string{{"e0", "e1", "e2"}, {"e3", "e4", "e5"}}},
		{"event_count without group-by: the integration", noGroup, []step{a(0), {min: 1, typ: "a", u: "u2"}, a(2)}, [][]string{{"e0", "e1", "e2"}}},
		{"event_count by two fields", twoFields, []step{{min: 0, typ: "a", ip: "x"}, {min: 1, typ: "a", ip: "y"}, {min: 2, typ: "a", ip: "x"}, {min: 3, typ: "a", ip: "x"}}, [][]string{{"e0", "e2", "e3"}}},
		{"event_count: no group-by value, no group", count3, []step{a(0), a(1), {min: 2, typ: "a", u: "-"}}, nil},
		{"value_count three addresses", values3, []step{{min: 0, typ: "a", ip: "1"}, {min: 1, typ: "a", ip: "2"}, {min: 2, typ: "a", ip: "3"}}, [][]string{{"e0", "e1", "e2"}}},
		{"value_count repeats do not count", values3, []step{{min: 0, typ: "a", ip: "1"}, {min: 1, typ: "a", ip: "2"}, {min: 2, typ: "a", ip: "1"}, {min: 3, typ: "a", ip: "2"}}, nil},
		{"value_count outside the timespan", values3, []step{{min: 0, typ: "a", ip: "1"}, {min: 5, typ: "a", ip: "2"}, {min: 11, typ: "a", ip: "3"}}, nil},
		{"value_count no value, not counted", values3, []step{{min: 0, typ: "a", ip: "1"}, {min: 1, typ: "a", ip: "2"}, a(2)}, nil},
		{"temporal any order", temporal, []step{{min: 0, typ: "c"}, a(1), {min: 2, typ: "b"}}, [][]string{{"e0", "e1", "e2"}}},
		{"temporal one rule missing", temporal, []step{a(0), {min: 1, typ: "b"}, a(2)}, nil},
		{"temporal outside the timespan", temporal, []step{a(0), {min: 1, typ: "b"}, {min: 10.5, typ: "c"}}, nil},
		{"temporal other groups", temporal, []step{a(0), {min: 1, typ: "b", u: "u2"}, {min: 2, typ: "c"}}, nil},
		{"temporal gte 2 of 3", temporal2, []step{a(0), a(1), {min: 2, typ: "b"}}, [][]string{{"e1", "e2"}}},
		{"temporal_ordered in order", ordered, []step{a(0), {min: 1, typ: "b"}, {min: 2, typ: "c"}}, [][]string{{"e0", "e1", "e2"}}},
		{"temporal_ordered wrong order", ordered, []step{{min: 0, typ: "c"}, {min: 1, typ: "b"}, a(2)}, nil},
		{"temporal_ordered half order", ordered, []step{{min: 0, typ: "b"}, a(1), {min: 2, typ: "c"}}, nil},
		{"temporal_ordered with noise between", ordered, []step{{min: 0, typ: "b"}, a(1), {min: 2, typ: "c"}, {min: 3, typ: "b"}, {min: 4, typ: "c"}}, [][]string{{"e1", "e3", "e4"}}},
		{"temporal_ordered outside the timespan", ordered, []step{a(0), {min: 5, typ: "b"}, {min: 10.5, typ: "c"}}, nil},
		{"temporal_ordered other groups", ordered, []step{a(0), {min: 1, typ: "b", u: "u2"}, {min: 2, typ: "c"}}, nil},
		// Event-time order, not arrival: b at minute 1 arrives after c at 2.
		{"temporal_ordered late event in its place", ordered, []step{a(0), {min: 2, typ: "c"}, {min: 1, typ: "b"}}, [][]string{{"e0", "e2", "e1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := corrDetector(t, c.rule)
			for _, rt := range []bool{false, true} {
				fs := run(t, d, c.steps, rt)
				var got [][]string
				for _, f := range fs {
					got = append(got, f.EventIDs)
					if f.Severity != schemas.SeverityHigh || f.Title != "corr" || f.FirstSeen.After(f.LastSeen) {
						t.Errorf("finding %+v", f)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Fatalf("round trip %v: findings %v, want %v", rt, got, c.want)
				}
				// Replaying the same input gives the same keys.
				again := run(t, d, c.steps, !rt)
				for i := range fs {
					if fs[i].Key != again[i].Key {
						t.Fatalf("keys differ across replays: %s, %s", fs[i].Key, again[i].Key)
					}
				}
			}
		})
	}
}

func TestCorrelationObservedAndMeta(t *testing.T) {
	d := corrDetector(t, corrRule(TemporalOrdered, "[a, b, c]", ""))
	fs := run(t, d, []step{{min: 0, typ: "a"}, {min: 1, typ: "b"}, {min: 2, typ: "c"}}, false)
	if len(fs) != 1 {
		t.Fatalf("findings %v", fs)
	}
	o := fs[0].Observed.(CorrObserved)
	if o.Count != 3 || strings.Join(o.Rules, ",") != "a,b,c" || len(o.Sequence) != 3 || o.Sequence[2].EventID != "e2" ||
		strings.Join(o.Group, ",") != "u1" || o.Condition != "all 3 rules" || o.Timespan != "10m0s" {
		t.Fatalf("observed %+v", o)
	}
	if m := d.Meta(); strings.Join(m.Techniques, ",") != "T1110" || m.Status != detect.StatusExperimental {
		t.Fatalf("meta %+v", m)
	}
}

func TestCorrelationGenerate(t *testing.T) {
	ids := func(rs []*Rule) []string {
		dets, err := Compile(rs)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range dets {
			out = append(out, d.ID())
		}
		return out
	}
	rule := corrRule(Temporal, "[a, b]", "")
	if got := ids(collection(t, rule)); !slices.Equal(got, []string{"sigma.corr", "sigma.rule-c"}) {
		t.Fatalf("generate false: %v (a and b run inside the correlation only; c is used by nothing)", got)
	}
	for _, gen := range []string{"generate: true\n", "  generate: true\n"} {
		if got := ids(collection(t, rule+gen)); !slices.Equal(got, []string{"sigma.corr", "sigma.c.a", "sigma.c.b", "sigma.rule-c"}) {
			t.Fatalf("%q: %v", gen, got)
		}
	}
	rs := collection(t, rule)
	if err := Link(rs); err != nil {
		t.Fatal(err)
	}
	if !rs[1].Silent || strings.Join(rs[1].PartOf, ",") != "sigma.corr" || rs[3].Silent {
		t.Fatalf("a: silent %v part of %v; c: silent %v", rs[1].Silent, rs[1].PartOf, rs[3].Silent)
	}
}

func TestCorrelationBounds(t *testing.T) {
	d := corrDetector(t, corrRule(EventCount, "[a]", "  condition: {gte: 3}\n"))
	st := d.NewState().(*corrState)
	for i := 0; i < MaxGroups+50; i++ {
		d.Observe(step{min: float64(i) / 1000, typ: "a", u: fmt.Sprint("u", i)}.event(i), st)
	}
	if len(st.Groups) != MaxGroups || st.Dropped != 50 {
		t.Fatalf("groups %d, dropped %d", len(st.Groups), st.Dropped)
	}
	if st.Groups["u0"] != nil || st.Groups[fmt.Sprint("u", MaxGroups+49)] == nil {
		t.Fatal("the group idle longest should go first")
	}
	// Past the timespan everything old expires.
	d.Observe(step{min: 30, typ: "a"}.event(0), st)
	if len(st.Groups) != 1 {
		t.Fatalf("groups after expiry: %d", len(st.Groups))
	}
}

func TestCorrelationLoadErrors(t *testing.T) {
	cases := []struct {
		name, corr string
		line       int
		construct  string
	}{
		{"unknown type", corrRule("value_sum", "[a]", "  condition: {gte: 3}\n"), 6, "correlation.type"},
		{"unknown key", corrRule(EventCount, "[a]", "  condition: {gte: 3}\n  window: 5m\n"), 11, "correlation.window"},
		{"missing rule", corrRule(EventCount, "[a, nosuch]", "  condition: {gte: 3}\n"), 7, "correlation.rules"},
		{"upper bound on a sequence", corrRule(TemporalOrdered, "[a, b, c]", "  condition: {lt: 3}\n"), 10, "correlation.condition"},
		{"never holds", corrRule(EventCount, "[a]", "  condition: {gt: 3, lt: 4}\n"), 10, "correlation.condition"},
		{"upper-bound correlation as a step", corrRule(Temporal, "[a, few]", "") + "---\ntitle: few\nname: few\ncorrelation: {type: event_count, rules: [b], timespan: 1m, condition: {lt: 2}}\n", 7, "correlation.rules"},
		{"no condition", corrRule(EventCount, "[a]", ""), 6, "correlation.condition"},
		{"value_count without field", corrRule(ValueCount, "[a]", "  condition: {gte: 3}\n"), 10, "correlation.condition.field"},
		{"bad timespan", strings.Replace(corrRule(EventCount, "[a]", "  condition: {gte: 3}\n"), "10m", "1w", 1), 9, "correlation.timespan"},
		{"too many hits", corrRule(EventCount, "[a]", fmt.Sprintf("  condition: {gte: %d}\n", MaxHits+1)), 10, "correlation.condition"},
		{"partial sequence", corrRule(TemporalOrdered, "[a, b, c]", "  condition: {gte: 2}\n"), 10, "correlation.condition"},
		{"temporal of one rule", corrRule(Temporal, "[a]", ""), 6, "correlation.rules"},
		{"alias without a rule's field", corrRule(Temporal, "[a, b]", "  aliases:\n    who: {a: actor.id}\n"), 6, "correlation.aliases"},
		{"logsource in a correlation", corrRule(EventCount, "[a]", "  condition: {gte: 3}\nlogsource: {product: okta}\n"), 11, "logsource"},
		{"a cycle", corrRule(Temporal, "[a, inner]", "") + "---\ntitle: inner\nname: inner\ncorrelation: {type: temporal, rules: [b, corr], timespan: 1m}\n", 13, "correlation.rules"},
		{"generate on a single rule", "title: x\ngenerate: true\nlogsource: {product: okta}\ndetection: {sel: {eventtype: app.oauth2.x}, condition: sel}\n", 2, "generate"},
		{"generate twice, differently", corrRule(Temporal, "[a, b]", "  generate: true\ngenerate: false\n"), 10, "generate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := ParseCollection("c.yml", []byte(c.corr+"\n---\n"+bases))
			if err == nil {
				_, err = Compile(rs)
			}
			want := fmt.Sprintf("c.yml:%d: %s:", c.line, c.construct)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
}

func TestCorrelationAliases(t *testing.T) {
	// a's events group by actor.id, b's by client.ipAddress: the same value
	// in both is one group.
	d := corrDetector(t, strings.Replace(corrRule(Temporal, "[a, b]", "  aliases:\n    who: {a: actor.id, b: client.ipAddress}\n"), "[actor.id]", "[who]", 1))
	fs := run(t, d, []step{{min: 0, typ: "a", u: "x"}, {min: 1, typ: "b", u: "y", ip: "x"}}, false)
	if len(fs) != 1 || strings.Join(fs[0].Observed.(CorrObserved).Group, ",") != "x" {
		t.Fatalf("findings %+v", fs)
	}
}

func TestCollections(t *testing.T) {
	rs, err := ParseCollection("c.yml", []byte("---\n"+bases+"---\n"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, fmt.Sprintf("%s@%d", r.DetectorID(), r.Line))
	}
	if strings.Join(ids, " ") != "sigma.c.a@2 sigma.c.b@7 sigma.rule-c@12" {
		t.Fatalf("rules %v", ids)
	}
	if _, err := Parse("c.yml", []byte(bases)); err == nil || !strings.Contains(err.Error(), "c.yml:6: rule collection") {
		t.Fatalf("Parse of a collection: %v", err)
	}
	if _, err := ParseCollection("c.yml", []byte(bases+"---\ntitle: A again\nname: a\nlogsource: {product: okta}\ndetection: {sel: {eventtype: app.oauth2.a}, condition: sel}\n")); err != nil {
		t.Fatal(err)
	} else if _, err := Compile(collection(t, "title: A again\nid: other\nname: a\nlogsource: {product: okta}\ndetection: {sel: {eventtype: app.oauth2.a}, condition: sel}\n")); err == nil || !strings.Contains(err.Error(), "c.yml:8: name") {
		t.Fatalf("two rules named a: %v", err)
	}
}

// A chain, as the specification's example: many a's by one user (an
// event_count), then a b by that user, in that order within the timespan.
// The inner correlation is a step of the outer one and, generate being
// false, raises no alert of its own.
func TestCorrelationChain(t *testing.T) {
	outer := corrRule(TemporalOrdered, "[many_a, b]", "")
	inner := "title: many a\nname: many_a\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [actor.id]\n  timespan: 5m\n  condition: {gte: 3}\n"
	rs := collection(t, outer+"---\n"+inner)
	dets, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 || dets[0].ID() != "sigma.corr" || dets[1].ID() != "sigma.rule-c" {
		t.Fatalf("detectors %v", dets)
	}
	d := dets[0].(*CorrDetector)
	a := func(min float64) step { return step{min: min, typ: "a"} }
	b := func(min float64) step { return step{min: min, typ: "b"} }
	for _, c := range []struct {
		name  string
		steps []step
		want  string
	}{
		{"three a then b", []step{a(0), a(1), a(2), b(3)}, "[[e2 e3]]"},
		{"b before the third a", []step{a(0), a(1), b(1.5), a(2)}, "[]"},
		{"two a then b", []step{a(0), a(1), b(3)}, "[]"},
		{"b outside the outer timespan", []step{a(0), a(1), a(2), b(12.5)}, "[]"},
		{"another user's b", []step{a(0), a(1), a(2), {min: 3, typ: "b", u: "u2"}}, "[]"},
	} {
		for _, rt := range []bool{false, true} {
			var got [][]string
			for _, f := range run(t, d, c.steps, rt) {
				got = append(got, f.EventIDs)
			}
			if fmt.Sprint(got) != c.want {
				t.Errorf("%s (round trip %v): %v, want %s", c.name, rt, got, c.want)
			}
		}
	}
}

// A condition with an upper bound (lt, lte, eq, neq, a range) is judged
// when a window closes: windows tumble per group from its first hit, and
// close with a later event or the engine's tick past their end.
func TestCorrelationUpperBound(t *testing.T) {
	few := corrRule(EventCount, "[a]", "  condition: {lt: 3}\n")
	two := corrRule(ValueCount, "[a]", "  condition: {field: client.ipAddress, eq: 2}\n")
	rng := corrRule(EventCount, "[a]", "  condition: {gt: 1, lte: 2}\n")
	lonely := corrRule(Temporal, "[a, b]", "  condition: {lt: 2}\n")
	a := func(min float64) step { return step{min: min, typ: "a"} }
	ip := func(min float64, ip string) step { return step{min: min, typ: "a", ip: ip} }
	cases := []struct {
		name  string
		rule  string
		steps []step
		tick  float64 // minute of a tick after the steps (0: none)
		want  string
	}{
		{"two is fewer than three, judged by the next event", few, []step{a(0), a(1), a(15)}, 0, "[[e0 e1]]"},
		{"three is not fewer than three", few, []step{a(0), a(1), a(2), a(15)}, 0, "[]"},
		{"the window still open", few, []step{a(0), a(1), a(9)}, 0, "[]"},
		{"judged by another group's event", few, []step{a(0), {min: 12, typ: "a", u: "u2"}}, 0, "[[e0]]"},
		{"judged by a tick", few, []step{a(0), a(1)}, 11, "[[e0 e1]]"},
		{"a tick before the end", few, []step{a(0), a(1)}, 9, "[]"},
		{"each window once", few, []step{a(0), a(11), a(25)}, 40, "[[e0] [e1] [e2]]"},
		{"eq 2 addresses", two, []step{ip(0, "1"), ip(1, "2"), ip(2, "1")}, 20, "[[e0 e1 e2]]"},
		{"eq 2, three addresses", two, []step{ip(0, "1"), ip(1, "2"), ip(2, "3")}, 20, "[]"},
		{"range", rng, []step{a(0), a(1), a(20), a(40), a(41), a(42)}, 60, "[[e0 e1]]"},
		{"temporal: only a", lonely, []step{a(0), a(1)}, 20, "[[e0 e1]]"},
		{"temporal: a and b", lonely, []step{a(0), {min: 1, typ: "b"}}, 20, "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := corrDetector(t, c.rule)
			if !d.c.Closed {
				t.Fatal("not judged at window close")
			}
			for _, rt := range []bool{false, true} {
				states := map[string]detect.State{}
				var got [][]string
				for n, st := range c.steps {
					ev := st.event(n)
					s := states[ev.Integration.ID]
					if s == nil {
						s = d.NewState()
						states[ev.Integration.ID] = s
					}
					for _, f := range d.Observe(ev, s) {
						got = append(got, f.EventIDs)
					}
					if rt {
						b, _ := s.MarshalBinary()
						fresh := d.NewState()
						if err := fresh.UnmarshalBinary(b); err != nil {
							t.Fatal(err)
						}
						states[ev.Integration.ID] = fresh
					}
				}
				if c.tick > 0 {
					for _, f := range d.Tick(t0.Add(time.Duration(c.tick*float64(time.Minute))), states["i1"]) {
						got = append(got, f.EventIDs)
					}
				}
				if fmt.Sprint(got) != c.want {
					t.Fatalf("round trip %v: %v, want %s", rt, got, c.want)
				}
			}
		})
	}
}

// An event two of an event_count's rules match is one event.
func TestEventCountCountsAnEventOnce(t *testing.T) {
	ab := "---\ntitle: A or B\nname: ab\nlogsource: {product: okta}\ndetection: {sel: {eventtype: [app.oauth2.a, app.oauth2.b]}, condition: sel}\n"
	d := corrDetector(t, corrRule(EventCount, "[a, ab]", "  condition: {gte: 3}\n")+ab)
	a := func(min float64) step { return step{min: min, typ: "a"} }
	if fs := run(t, d, []step{a(0), a(1)}, false); len(fs) != 0 {
		t.Fatalf("two events counted as three or more: %v", fs)
	}
	if fs := run(t, d, []step{a(0), a(1), {min: 2, typ: "b"}}, false); len(fs) != 1 || fs[0].Observed.(CorrObserved).Count != 3 {
		t.Fatalf("findings %+v", fs)
	}
}

// BenchmarkNoisyIntegration is one integration whose every event matches
// a correlation's first rule and never completes it, its state at the hit
// bound: what a chatty integration costs per event.
func BenchmarkNoisyIntegration(b *testing.B) {
	for _, c := range []struct{ name, rule string }{
		{"temporal_ordered", corrRule(TemporalOrdered, "[a, b, c]", "")},
		{"temporal", corrRule(Temporal, "[a, b, c]", "")},
		{"event_count", corrRule(EventCount, "[a]", fmt.Sprintf("  condition: {gte: %d}\n", MaxHits))},
		{"value_count", corrRule(ValueCount, "[a]", fmt.Sprintf("  condition: {field: client.ipAddress, gte: %d}\n", MaxHits))},
	} {
		b.Run(c.name, func(b *testing.B) {
			rs, err := ParseCollection("c.yml", []byte(c.rule+"\n---\n"+bases))
			if err != nil {
				b.Fatal(err)
			}
			dets, err := Compile(rs)
			if err != nil {
				b.Fatal(err)
			}
			d := dets[0].(*CorrDetector)
			st := d.NewState()
			evs := make([]*schemas.Event, 4096)
			for i := range evs {
				evs[i] = step{min: float64(i) / 1000, typ: "a", ip: fmt.Sprint(i)}.event(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ev := *evs[i%len(evs)]
				ev.Time = schemas.NewTime(t0.Add(time.Duration(i) * time.Millisecond))
				d.Observe(&ev, st)
			}
		})
	}
}
