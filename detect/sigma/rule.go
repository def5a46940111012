// Package sigma runs detection engineers' own Sigma rules
// (https://sigmahq.io) on tokenwatch's event stream: single-event rules,
// matched against the vendor's raw record (schemas.Event.Raw) with the
// normalized event as a fallback, each rule one detector ("sigma.<id>") in
// the detect program. Everything a rule uses that this engine cannot run is
// an error when the rule loads, naming the file, the line and the construct:
// a rule never silently does nothing. docs/rules.md is the user's guide.
package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Rule is one loaded Sigma rule.
type Rule struct {
	// Path is the file the rule came from.
	Path           string
	ID             string
	Title          string
	Status         string
	Description    string
	References     []string
	Tags           []string
	FalsePositives []string
	Level          string
	Product        string
	Service        string
	// Source is the tokenwatch source the logsource selects (Logsources).
	Source string

	selections map[string]*selection
	names      []string // selection names, sorted
	cond       expr
}

// DetectorID is the rule's detector id: "sigma.<rule id>", or the file stem
// when the rule has no id.
func (r *Rule) DetectorID() string {
	if r.ID != "" {
		return "sigma." + r.ID
	}
	return "sigma." + strings.TrimSuffix(filepath.Base(r.Path), filepath.Ext(r.Path))
}

// Severity maps the rule's level to an alert severity.
func (r *Rule) Severity() schemas.Severity {
	switch r.Level {
	case "informational":
		return schemas.SeverityInfo
	case "low":
		return schemas.SeverityLow
	case "high":
		return schemas.SeverityHigh
	case "critical":
		return schemas.SeverityCritical
	}
	return schemas.SeverityMedium
}

// LoadError is a rule that cannot run: the file, the line in it, and the
// construct at fault.
type LoadError struct {
	File      string
	Line      int
	Construct string
	Msg       string
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("sigma rule %s:%d: %s: %s", e.File, e.Line, e.Construct, e.Msg)
}

func errAt(file string, n *yaml.Node, construct, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &LoadError{File: file, Line: line, Construct: construct, Msg: fmt.Sprintf(format, a...)}
}

// Logsources maps a rule's logsource product (or, without a product, its
// service) to the tokenwatch source whose events it reads.
var Logsources = map[string]string{
	"okta":             "okta",
	"github":           "github",
	"google_workspace": "google_workspace",
	"gworkspace":       "google_workspace",
	"gcp":              "google_workspace",
	"m365":             "microsoft",
	"azure":            "microsoft",
	"microsoft365":     "microsoft",
	"entra":            "microsoft",
	"salesforce":       "salesforce",
	"slack":            "slack",
	"snowflake":        "snowflake",
}

// known top-level keys; anything else is an error (a typo would otherwise
// be a silently ignored part of the rule).
var topKeys = map[string]bool{
	"title": true, "id": true, "name": true, "status": true, "description": true, "references": true, "author": true,
	"date": true, "modified": true, "tags": true, "logsource": true, "detection": true, "falsepositives": true,
	"level": true, "fields": true, "related": true, "license": true, "taxonomy": true, "scope": true,
}

// Parse reads one rule; file labels errors.
func Parse(file string, b []byte) (*Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, &LoadError{File: file, Line: yamlLine(err), Construct: "yaml", Msg: err.Error()}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errAt(file, &extra, "multi-document rule", "rule collections (several YAML documents in one file) are not supported yet")
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errAt(file, &doc, "rule", "a rule is a YAML mapping")
	}
	root := doc.Content[0]
	r := &Rule{Path: file}
	var detection, logsource *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if !topKeys[k.Value] {
			if k.Value == "correlation" || k.Value == "type" {
				return nil, errAt(file, k, "correlation rule", "correlation rules are not supported yet (single-event rules only)")
			}
			return nil, errAt(file, k, k.Value, "unknown rule key")
		}
		var err error
		switch k.Value {
		case "title":
			err = v.Decode(&r.Title)
		case "id":
			err = v.Decode(&r.ID)
		case "status":
			err = v.Decode(&r.Status)
		case "description":
			err = v.Decode(&r.Description)
		case "references":
			err = v.Decode(&r.References)
		case "tags":
			err = v.Decode(&r.Tags)
		case "falsepositives":
			err = decodeStrings(v, &r.FalsePositives)
		case "level":
			err = v.Decode(&r.Level)
		case "logsource":
			logsource = v
		case "detection":
			detection = v
		}
		if err != nil {
			return nil, errAt(file, v, k.Value, "%v", err)
		}
	}
	if r.Title == "" {
		return nil, errAt(file, root, "title", "a rule needs a title")
	}
	switch r.Level {
	case "", "informational", "low", "medium", "high", "critical":
	default:
		return nil, errAt(file, root, "level", "unknown level %q (informational, low, medium, high, critical)", r.Level)
	}
	if logsource == nil {
		return nil, errAt(file, root, "logsource", "a rule needs a logsource (product or service: okta, github, google_workspace, m365, …)")
	}
	if err := r.logsource(logsource); err != nil {
		return nil, err
	}
	if detection == nil {
		return nil, errAt(file, root, "detection", "a rule needs a detection")
	}
	if err := r.detection(detection); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeStrings(v *yaml.Node, out *[]string) error {
	if v.Kind == yaml.ScalarNode {
		*out = []string{v.Value}
		return nil
	}
	return v.Decode(out)
}

func (r *Rule) logsource(n *yaml.Node) error {
	var ls struct {
		Product    string `yaml:"product"`
		Service    string `yaml:"service"`
		Category   string `yaml:"category"`
		Definition string `yaml:"definition"`
	}
	if err := n.Decode(&ls); err != nil {
		return errAt(r.Path, n, "logsource", "%v", err)
	}
	r.Product, r.Service = ls.Product, ls.Service
	key := strings.ToLower(ls.Product)
	if key == "" {
		key = strings.ToLower(ls.Service)
	}
	src, ok := Logsources[key]
	if !ok {
		known := make([]string, 0, len(Logsources))
		for k := range Logsources {
			known = append(known, k)
		}
		sort.Strings(known)
		return errAt(r.Path, n, "logsource", "product %q / service %q is no source tokenwatch reads (products: %s)", ls.Product, ls.Service, strings.Join(known, ", "))
	}
	r.Source = src
	return nil
}

func (r *Rule) detection(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errAt(r.Path, n, "detection", "detection is a mapping of selections and a condition")
	}
	r.selections = map[string]*selection{}
	var cond *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "condition":
			cond = v
			continue
		case "timeframe":
			return errAt(r.Path, k, "timeframe", "timeframe belongs to correlation rules, which are not supported yet")
		}
		s, err := parseSelection(r.Path, k.Value, v)
		if err != nil {
			return err
		}
		r.selections[k.Value] = s
		r.names = append(r.names, k.Value)
	}
	sort.Strings(r.names)
	if cond == nil {
		return errAt(r.Path, n, "condition", "detection has no condition")
	}
	var conds []*yaml.Node
	switch cond.Kind {
	case yaml.ScalarNode:
		conds = []*yaml.Node{cond}
	case yaml.SequenceNode:
		conds = cond.Content // a list of conditions: any of them
	default:
		return errAt(r.Path, cond, "condition", "condition is a string")
	}
	var alts []expr
	for _, c := range conds {
		e, err := parseCondition(r, c)
		if err != nil {
			return err
		}
		alts = append(alts, e)
	}
	if len(alts) == 1 {
		r.cond = alts[0]
	} else {
		r.cond = orExpr(alts)
	}
	return nil
}

func yamlLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	var line int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); e == nil {
		return line
	}
	return 0
}

// LoadFile reads and parses one rule file.
func LoadFile(path string) (*Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sigma rule: %w", err)
	}
	return Parse(path, b)
}

// Load reads every rule under paths: a file is one rule, a folder holds
// rules (*.yml, *.yaml, recursively, in name order). Two rules with one
// detector id are an error.
func Load(paths []string) ([]*Rule, error) {
	files, err := ruleFiles(paths)
	if err != nil {
		return nil, err
	}
	var out []*Rule
	by := map[string]string{}
	for _, f := range files {
		r, err := LoadFile(f)
		if err != nil {
			return nil, err
		}
		if prev, dup := by[r.DetectorID()]; dup {
			return nil, &LoadError{File: f, Line: 1, Construct: "id", Msg: fmt.Sprintf("%s is also the id of %s", r.DetectorID(), prev)}
		}
		by[r.DetectorID()] = f
		out = append(out, r)
	}
	return out, nil
}

// ruleFiles lists the rule files under paths, in Load's order.
func ruleFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("sigma rules: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml")) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sigma rules: %w", err)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}
