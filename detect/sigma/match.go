package sigma

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// selection is a named search: any of its maps, each all of its fields.
type selection struct {
	alts [][]*fieldMatch
}

// fieldMatch is one `field|modifiers: values` entry.
type fieldMatch struct {
	field  string
	path   []string // lower-cased field, split on dots
	all    bool     // |all: every value must match (default: any)
	exists *bool    // |exists: true|false
	null   bool     // value null: the field is absent or null
	values []valueMatch
	// typeOp is how the field compares when that is plain equality ("=")
	// or |startswith alone ("startswith"), else ""; nodes are its values.
	// The event-type analysis (types.go) reads them.
	typeOp string
	nodes  []*yaml.Node
}

type valueMatch func(v any) bool

var supported = map[string]bool{
	"contains": true, "startswith": true, "endswith": true, "re": true, "cidr": true, "all": true, "exists": true,
	"windash": true, "lt": true, "lte": true, "gt": true, "gte": true, "cased": true,
	"i": true, "m": true, "s": true, // regular-expression flags after re
}

func parseSelection(file, name string, n *yaml.Node) (*selection, error) {
	s := &selection{}
	switch n.Kind {
	case yaml.MappingNode:
		fm, err := parseFields(file, n)
		if err != nil {
			return nil, err
		}
		s.alts = [][]*fieldMatch{fm}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.MappingNode {
				return nil, errAt(file, c, "keyword search", "selection %q lists plain values (a keyword search over the whole record), which is not supported yet: name the field", name)
			}
			fm, err := parseFields(file, c)
			if err != nil {
				return nil, err
			}
			s.alts = append(s.alts, fm)
		}
	default:
		return nil, errAt(file, n, "keyword search", "selection %q is a plain value (a keyword search), which is not supported yet: name the field", name)
	}
	return s, nil
}

func parseFields(file string, n *yaml.Node) ([]*fieldMatch, error) {
	var out []*fieldMatch
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		parts := strings.Split(k.Value, "|")
		f := &fieldMatch{field: parts[0]}
		if f.field == "" {
			return nil, errAt(file, k, "keyword search", "a field-less selection (|modifier on no field) is not supported yet")
		}
		f.path = strings.Split(strings.ToLower(f.field), ".")
		mods := map[string]bool{}
		var kind string // contains, startswith, endswith, re, cidr, lt, …
		for _, m := range parts[1:] {
			if !supported[m] {
				return nil, errAt(file, k, "modifier |"+m, "unknown or unsupported modifier on field %s", f.field)
			}
			mods[m] = true
			switch m {
			case "contains", "startswith", "endswith", "re", "cidr", "lt", "lte", "gt", "gte", "exists":
				if kind != "" {
					return nil, errAt(file, k, "modifier |"+m, "cannot combine |%s with |%s", kind, m)
				}
				kind = m
			case "i", "m", "s":
				if kind != "re" {
					return nil, errAt(file, k, "modifier |"+m, "|%s is a flag of |re", m)
				}
			}
		}
		f.all = mods["all"]
		switch {
		case len(parts) == 1:
			f.typeOp = "="
		case len(parts) == 2 && kind == "startswith":
			f.typeOp = "startswith"
		}
		vals := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			vals = v.Content
		} else if v.Kind != yaml.ScalarNode {
			return nil, errAt(file, v, "value", "field %s: a value is a scalar or a list of scalars", f.field)
		}
		if kind == "exists" {
			var b bool
			if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
				return nil, errAt(file, v, "modifier |exists", "field %s: |exists takes true or false", f.field)
			}
			f.exists = &b
			out = append(out, f)
			continue
		}
		for _, vn := range vals {
			if vn.Kind != yaml.ScalarNode {
				return nil, errAt(file, vn, "value", "field %s: nested values are not supported", f.field)
			}
			if vn.Tag == "!!null" {
				if len(vals) == 1 {
					f.null = true
					break
				}
				return nil, errAt(file, vn, "value", "field %s: null in a list of values is not supported yet", f.field)
			}
			vm, err := compileValue(file, f.field, kind, mods, vn)
			if err != nil {
				return nil, err
			}
			f.values = append(f.values, vm...)
			f.nodes = append(f.nodes, vn)
		}
		out = append(out, f)
	}
	return out, nil
}

// compileValue turns one rule value into matchers (several with windash).
func compileValue(file, field, kind string, mods map[string]bool, vn *yaml.Node) ([]valueMatch, error) {
	raw := vn.Value
	switch kind {
	case "re":
		flags := ""
		if mods["i"] {
			flags += "i"
		}
		if mods["m"] {
			flags += "m"
		}
		if mods["s"] {
			flags += "s"
		}
		expr := raw
		if flags != "" {
			expr = "(?" + flags + ")" + raw
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, errAt(file, vn, "modifier |re", "field %s: %v (Go RE2 syntax: no lookaround or backreferences)", field, err)
		}
		return []valueMatch{func(v any) bool { s, ok := str(v); return ok && re.MatchString(s) }}, nil
	case "cidr":
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			return nil, errAt(file, vn, "modifier |cidr", "field %s: %v", field, err)
		}
		return []valueMatch{func(v any) bool {
			s, ok := str(v)
			if !ok {
				return false
			}
			a, err := netip.ParseAddr(s)
			return err == nil && p.Contains(a.Unmap())
		}}, nil
	case "lt", "lte", "gt", "gte":
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, errAt(file, vn, "modifier |"+kind, "field %s: %q is not a number", field, raw)
		}
		return []valueMatch{func(v any) bool {
			y, ok := num(v)
			if !ok {
				return false
			}
			switch kind {
			case "lt":
				return y < x
			case "lte":
				return y <= x
			case "gt":
				return y > x
			}
			return y >= x
		}}, nil
	}
	variants := []string{raw}
	if mods["windash"] {
		variants = windash(raw)
	}
	var out []valueMatch
	for _, s := range variants {
		m, err := compileString(file, field, kind, mods["cased"], s, vn)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// windash expands a value's dashes at the start of a word into every dash a
// Windows command line accepts: -, /, en dash, em dash, horizontal bar.
func windash(s string) []string {
	out := []string{""}
	for i, r := range s {
		alts := []string{string(r)}
		if r == '-' && (i == 0 || s[i-1] == ' ') {
			alts = []string{"-", "/", "\u2013", "\u2014", "\u2015"}
		}
		var next []string
		for _, p := range out {
			for _, a := range alts {
				next = append(next, p+a)
			}
		}
		out = next
		if len(out) > 256 {
			break
		}
	}
	return out
}

// compileString matches Sigma's string semantics: case-insensitive unless
// |cased, with * and ? wildcards (\* \? \\ escape them).
func compileString(file, field, kind string, cased bool, s string, vn *yaml.Node) (valueMatch, error) {
	var b strings.Builder
	wild := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			b.WriteString(regexp.QuoteMeta(string(s[i+1])))
			i++
		case c == '*':
			b.WriteString(".*")
			wild = true
		case c == '?':
			b.WriteString(".")
			wild = true
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if !wild && !strings.Contains(s, `\`) {
		lit := s
		if !cased {
			lit = strings.ToLower(s)
		}
		return func(v any) bool {
			x, ok := str(v)
			if !ok {
				return false
			}
			if !cased {
				x = strings.ToLower(x)
			}
			switch kind {
			case "contains":
				return strings.Contains(x, lit)
			case "startswith":
				return strings.HasPrefix(x, lit)
			case "endswith":
				return strings.HasSuffix(x, lit)
			}
			return x == lit
		}, nil
	}
	expr := b.String()
	switch kind {
	case "contains":
		expr = ".*" + expr + ".*"
	case "startswith":
		expr = expr + ".*"
	case "endswith":
		expr = ".*" + expr
	}
	flags := "(?s)"
	if !cased {
		flags = "(?is)"
	}
	re, err := regexp.Compile(flags + "^" + expr + "$")
	if err != nil {
		return nil, errAt(file, vn, "value", "field %s: %v", field, err)
	}
	return func(v any) bool { x, ok := str(v); return ok && re.MatchString(x) }, nil
}

// str is a field value as the string Sigma compares: numbers and booleans
// as written in JSON (Okta's isProxy true matches 'true').
func str(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case int:
		return strconv.Itoa(x), true
	}
	return "", false
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case uint32:
		return float64(x), true
	}
	return 0, false
}

// match reports whether the selection matches the record.
func (s *selection) match(rec *record) bool {
	for _, alt := range s.alts {
		ok := true
		for _, f := range alt {
			if !f.match(rec) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (f *fieldMatch) match(rec *record) bool {
	vals, found := rec.lookup(f.path)
	if f.exists != nil {
		return found == *f.exists
	}
	if f.null {
		for _, v := range vals {
			if v != nil {
				return false
			}
		}
		return true
	}
	if !found {
		return false
	}
	if f.all {
		for _, m := range f.values {
			if !anyValue(vals, m) {
				return false
			}
		}
		return true
	}
	for _, m := range f.values {
		if anyValue(vals, m) {
			return true
		}
	}
	return false
}

// anyValue: a field reached through a list holds several values; one match
// is enough.
func anyValue(vals []any, m valueMatch) bool {
	for _, v := range vals {
		if m(v) {
			return true
		}
	}
	return false
}
