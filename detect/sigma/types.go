package sigma

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// The event-type analysis: which values of a source's type field
// (typesRead) a rule's condition requires, so that a rule no record the
// connector turns into an event can match is a load error, not a rule that
// loads and never fires. It is sound, not complete: a rule it lets through
// may still never fire, a rule it refuses cannot.

// typePattern is one set of type values: the value itself, or (prefix)
// every value starting with it. Values are lower case: Sigma compares
// case-insensitively, and so do the connectors' type checks.
type typePattern struct {
	s      string
	prefix bool
}

func (p typePattern) String() string {
	if p.prefix {
		return p.s + "*"
	}
	return p.s
}

// and is the values both patterns hold (ok false: none).
func (p typePattern) and(q typePattern) (typePattern, bool) {
	switch {
	case !p.prefix && !q.prefix:
		return p, p.s == q.s
	case !p.prefix:
		return p, strings.HasPrefix(p.s, q.s)
	case !q.prefix:
		return q, strings.HasPrefix(q.s, p.s)
	case strings.HasPrefix(p.s, q.s):
		return p, true
	case strings.HasPrefix(q.s, p.s):
		return q, true
	}
	return typePattern{}, false
}

// readable: some value of p starts with one of the prefixes read.
func (p typePattern) readable(read []string) bool {
	for _, r := range read {
		if strings.HasPrefix(p.s, r) || (p.prefix && strings.HasPrefix(r, p.s)) {
			return true
		}
	}
	return false
}

// typeValue is one value a rule writes for the type field, where it is.
type typeValue struct {
	pat  typePattern
	node *yaml.Node
}

// typeConstraint is what a condition requires of the type field: any value
// (free), or one of pats. from are the rule's values that constrain it.
type typeConstraint struct {
	free bool
	pats []typePattern
	from []typeValue
}

var unconstrained = typeConstraint{free: true}

// and: the values both allow; a free side takes the other's.
func (c typeConstraint) and(d typeConstraint) typeConstraint {
	if c.free {
		return d
	}
	if d.free {
		return c
	}
	out := typeConstraint{from: append(append([]typeValue(nil), c.from...), d.from...)}
	for _, p := range c.pats {
		for _, q := range d.pats {
			if r, ok := p.and(q); ok {
				out.pats = addPattern(out.pats, r)
			}
		}
	}
	return out
}

// or: the values either allows; free if either is.
func (c typeConstraint) or(d typeConstraint) typeConstraint {
	if c.free || d.free {
		return unconstrained
	}
	out := typeConstraint{from: append(append([]typeValue(nil), c.from...), d.from...)}
	out.pats = append(out.pats, c.pats...)
	for _, p := range d.pats {
		out.pats = addPattern(out.pats, p)
	}
	return out
}

func addPattern(ps []typePattern, p typePattern) []typePattern {
	for _, q := range ps {
		if q == p {
			return ps
		}
	}
	return append(ps, p)
}

// exprTypes is what e requires of the type field named by fields (lower
// case, dotted). not is free: a negation requires nothing of the value.
func (r *Rule) exprTypes(e expr, fields []string) typeConstraint {
	switch x := e.(type) {
	case ref:
		return r.selections[string(x)].types(fields)
	case andExpr:
		c := unconstrained
		for _, y := range x {
			c = c.and(r.exprTypes(y, fields))
		}
		return c
	case orExpr:
		var c typeConstraint
		for i, y := range x {
			if i == 0 {
				c = r.exprTypes(y, fields)
			} else {
				c = c.or(r.exprTypes(y, fields))
			}
		}
		return c
	}
	return unconstrained // notExpr, and anything new
}

// types: any of the selection's maps, each all of its fields.
func (s *selection) types(fields []string) typeConstraint {
	var c typeConstraint
	for i, alt := range s.alts {
		m := unconstrained
		for _, f := range alt {
			m = m.and(f.types(fields))
		}
		if i == 0 {
			c = m
		} else {
			c = c.or(m)
		}
	}
	return c
}

// types: a field on the type field, compared by equality or |startswith,
// allows its values (any of them); anything else requires nothing.
func (f *fieldMatch) types(fields []string) typeConstraint {
	name := strings.Join(f.path, ".")
	on := false
	for _, t := range fields {
		on = on || name == t
	}
	if !on || f.typeOp == "" || f.all || f.null || f.exists != nil || len(f.nodes) == 0 {
		return unconstrained
	}
	var c typeConstraint
	for _, n := range f.nodes {
		p := typePattern{s: strings.ToLower(n.Value), prefix: f.typeOp == "startswith"}
		// A wildcard or escape: the literal text before it is a prefix.
		if i := strings.IndexAny(p.s, `*?\`); i >= 0 {
			p = typePattern{s: p.s[:i], prefix: true}
		}
		c.pats = addPattern(c.pats, p)
		c.from = append(c.from, typeValue{pat: p, node: n})
	}
	return c
}

// checkTypes refuses a rule whose condition requires a type value the
// source's connector never turns into an event (typesRead).
func (r *Rule) checkTypes() error {
	t, ok := typesRead[r.Source]
	if !ok || r.cond == nil {
		return nil
	}
	c := r.exprTypes(r.cond, t.fields)
	if c.free {
		// Nothing proves it never fires (it may match a field every read
		// event carries), so it loads; but say so, so that a rule written
		// for records the connector never reads is not silently idle.
		r.TypeNote = fmt.Sprintf("names no %s: it runs on every %s event tokenwatch reads (%s: %s) and fires only when one of those matches; a rule written for other %s records never fires here",
			t.field, r.Source, t.reads(), t.what, t.connector)
		return nil
	}
	for _, p := range c.pats {
		if p.readable(t.prefixes) {
			return nil
		}
	}
	var from, bad []typeValue
	seen := map[*yaml.Node]bool{}
	for _, v := range c.from {
		if seen[v.node] {
			continue // a selection the condition names twice
		}
		seen[v.node] = true
		from = append(from, v)
		if !v.pat.readable(t.prefixes) {
			bad = append(bad, v)
		}
	}
	reads := t.reads()
	if len(bad) == 0 {
		// Each value is read, but no one value is all the condition asks.
		return &LoadError{File: r.Path, Line: from[0].node.Line, Construct: t.field,
			Msg: fmt.Sprintf("%s rule requires %s to be %s at once, which no event is, so the rule could never fire", r.Source, t.field, listValues(from, " and "))}
	}
	return &LoadError{File: r.Path, Line: bad[0].node.Line, Construct: t.field,
		Msg: fmt.Sprintf("%s rule watches %s %s, which tokenwatch's %s connector does not read, so the rule could never fire: it reads %s (%s)",
			r.Source, t.field, listValues(bad, ", "), t.connector, reads, t.what)}
}

// reads names the types read: "app.oauth2.* and system.api_token.*".
func (t typeFields) reads() string {
	read := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		read[i] = p + "*"
	}
	return strings.Join(read, " and ")
}

// listValues names values, with their lines when they are on several.
func listValues(vs []typeValue, sep string) string {
	lines := map[int]bool{}
	for _, v := range vs {
		lines[v.node.Line] = true
	}
	var out []string
	for _, v := range vs {
		if len(lines) > 1 {
			out = append(out, fmt.Sprintf("%s (line %d)", v.pat, v.node.Line))
		} else {
			out = append(out, v.pat.String())
		}
	}
	return strings.Join(out, sep)
}
