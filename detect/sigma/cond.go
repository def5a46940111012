package sigma

import (
	"path"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// expr is a parsed condition over the selections' results.
type expr interface {
	eval(hit map[string]bool) bool
}

type (
	ref     string
	notExpr struct{ e expr }
	andExpr []expr
	orExpr  []expr
)

func (r ref) eval(hit map[string]bool) bool     { return hit[string(r)] }
func (n notExpr) eval(hit map[string]bool) bool { return !n.e.eval(hit) }
func (a andExpr) eval(hit map[string]bool) bool {
	for _, e := range a {
		if !e.eval(hit) {
			return false
		}
	}
	return true
}
func (o orExpr) eval(hit map[string]bool) bool {
	for _, e := range o {
		if e.eval(hit) {
			return true
		}
	}
	return false
}

type condParser struct {
	r    *Rule
	node *yaml.Node
	toks []string
	pos  int
}

func parseCondition(r *Rule, n *yaml.Node) (expr, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, errAt(r.Path, n, "condition", "condition is a string")
	}
	s := n.Value
	if strings.Contains(s, "|") {
		return nil, errAt(r.Path, n, "aggregation", "%q: aggregation conditions (| count() …) are Sigma 1.x's, obsolete and not supported: write a correlation rule (event_count, value_count; docs/rules.md, Correlation rules)", s)
	}
	p := &condParser{r: r, node: n, toks: tokenize(s)}
	if len(p.toks) == 0 {
		return nil, errAt(r.Path, n, "condition", "empty condition")
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, p.fail("condition", "unexpected %q", p.toks[p.pos])
	}
	return e, nil
}

func tokenize(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, c := range s {
		switch {
		case c == '(' || c == ')':
			flush()
			out = append(out, string(c))
		case unicode.IsSpace(c):
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	flush()
	return out
}

func (p *condParser) fail(construct, format string, a ...any) error {
	return errAt(p.r.Path, p.node, construct, "%q: "+format, append([]any{p.node.Value}, a...)...)
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return strings.ToLower(p.toks[p.pos])
	}
	return ""
}

func (p *condParser) or() (expr, error) {
	var alts orExpr
	for {
		e, err := p.and()
		if err != nil {
			return nil, err
		}
		alts = append(alts, e)
		if p.peek() != "or" {
			break
		}
		p.pos++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return alts, nil
}

func (p *condParser) and() (expr, error) {
	var all andExpr
	for {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		all = append(all, e)
		if p.peek() != "and" {
			break
		}
		p.pos++
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}

func (p *condParser) unary() (expr, error) {
	t := p.peek()
	switch t {
	case "":
		return nil, p.fail("condition", "ends too early")
	case "not":
		p.pos++
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	case "(":
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, p.fail("condition", "missing )")
		}
		p.pos++
		return e, nil
	case ")", "and", "or":
		return nil, p.fail("condition", "unexpected %q", t)
	case "near":
		return nil, p.fail("near", "near is Sigma 1.x's, obsolete and not supported: write a temporal correlation rule (docs/rules.md, Correlation rules)")
	case "1", "all", "any":
		if p.pos+1 < len(p.toks) && strings.ToLower(p.toks[p.pos+1]) == "of" {
			return p.quantified(t)
		}
	default:
		if p.pos+1 < len(p.toks) && strings.ToLower(p.toks[p.pos+1]) == "of" {
			return nil, p.fail(t+" of", "only \"1 of\" and \"all of\" are supported")
		}
	}
	name := p.toks[p.pos]
	p.pos++
	if _, ok := p.r.selections[name]; !ok {
		return nil, p.fail("condition", "no selection named %q", name)
	}
	return ref(name), nil
}

func (p *condParser) quantified(q string) (expr, error) {
	if q == "any" {
		return nil, p.fail("any of", "write \"1 of\"")
	}
	p.pos += 2
	if p.pos >= len(p.toks) {
		return nil, p.fail("condition", "%s of what?", q)
	}
	pat := p.toks[p.pos]
	p.pos++
	var names []expr
	for _, n := range p.r.names {
		if strings.EqualFold(pat, "them") {
			if strings.HasPrefix(n, "_") {
				continue // Sigma: "them" leaves out selections named _…
			}
			names = append(names, ref(n))
			continue
		}
		if ok, err := path.Match(pat, n); err != nil {
			return nil, p.fail(q+" of", "bad pattern %q: %v", pat, err)
		} else if ok {
			names = append(names, ref(n))
		}
	}
	if len(names) == 0 {
		return nil, p.fail(q+" of", "%q names no selection", pat)
	}
	if q == "all" {
		return andExpr(names), nil
	}
	return orExpr(names), nil
}
