// Package sigma runs detection engineers' own Sigma rules
// (https://sigmahq.io) on tokenwatch's event stream: single-event rules,
// matched against the vendor's raw record (schemas.Event.Raw) with the
// normalized event as a fallback, and correlation rules over them
// (event_count, value_count, temporal, temporal_ordered; Sigma correlation
// rules specification 2.0, SigmaHQ/sigma-specification
// specification/sigma-correlation-rules-specification.md), evaluated on
// event time per integration with their windows in the detector's
// checkpointed state (correlation.go, window.go). Each rule is one detector
// ("sigma.<id>") in the detect program; a rule that a correlation uses
// raises no alerts of its own unless the correlation says generate: true.
// Everything a rule uses that this engine cannot run is an error when the
// rule loads, naming the file, the line and the construct: a rule never
// silently does nothing. docs/rules.md is the user's guide.
package sigma

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	Path string
	// Line is where the rule's YAML document starts in Path.
	Line int
	ID   string
	// Name is the rule's optional unique name, by which a correlation may
	// reference it instead of its id.
	Name           string
	Title          string
	Status         string
	Description    string
	References     []string
	Tags           []string
	FalsePositives []string
	// Runbook is tokenwatch's one custom top-level key (the rules
	// specification allows "arbitrary custom fields"): what to check and how
	// to contain, shown by `tokenwatch detectors --long`.
	Runbook string
	Level   string
	Product string
	Service string
	// Source is the tokenwatch source the logsource selects (Logsources); a
	// correlation's is its rules' one source.
	Source string
	// Correlation is set on a correlation rule (no logsource, no detection).
	Correlation *Correlation
	// PartOf lists the detector ids of the correlations that use this rule
	// (set when a collection is linked); Silent says it raises no alerts of
	// its own: none of them says generate: true.
	PartOf []string
	Silent bool
	// TypeNote is set on a rule of a source whose connector reads only some
	// record types (typesRead) when its condition names none: it loads, and
	// may never fire. tokenwatch detectors, rule test and config check show it.
	TypeNote string

	nth        int    // place in a collection of several rules (1-based), 0 alone
	ruleDigest string // digest of the rule's YAML document
	selections map[string]*selection
	names      []string // selection names, sorted
	cond       expr
	// neverFires: the rule parsed but its condition requires event types
	// its source's connector does not read (checkTypes); the collection's
	// check (checkFires) refuses it, naming the correlations that use it.
	neverFires *LoadError
}

// DetectorID is the rule's detector id: "sigma.<rule id>", or without an
// id the file stem (in a collection of several rules: the stem, a dot and
// the rule's name, else its 1-based place in the file).
func (r *Rule) DetectorID() string {
	if r.ID != "" {
		return "sigma." + r.ID
	}
	stem := strings.TrimSuffix(filepath.Base(r.Path), filepath.Ext(r.Path))
	if r.nth == 0 {
		return "sigma." + stem
	}
	if r.Name != "" {
		return "sigma." + stem + "." + r.Name
	}
	return fmt.Sprintf("sigma.%s.%d", stem, r.nth)
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
	"runbook": true,
}

// corrTopKeys are the keys a correlation rule document may hold besides
// topKeys' metadata (spec: "Components"); logsource, detection, fields and
// scope belong to single-event rules.
var corrTopKeys = map[string]bool{"correlation": true, "generate": true}

// Parse reads a file holding exactly one rule; file labels errors.
func Parse(file string, b []byte) (*Rule, error) {
	rs, err := ParseCollection(file, b)
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, &LoadError{File: file, Line: rs[1].Line, Construct: "rule collection", Msg: fmt.Sprintf("%d rules in one file where one was expected", len(rs))}
	}
	return rs[0], nil
}

// ParseCollection reads every rule of a file: one YAML document, or a rule
// collection of several separated by "---" (how a correlation usually ships
// with the rules it uses). Empty documents are skipped.
func ParseCollection(file string, b []byte) ([]*Rule, error) {
	rs, err := parseCollection(file, b)
	if err != nil {
		return nil, err
	}
	return rs, checkFires(rs)
}

// checkFires refuses the first rule that could never fire (neverFires),
// naming the correlations among rules that use it: they cannot run either.
func checkFires(rules []*Rule) error {
	for _, r := range rules {
		if r.neverFires == nil {
			continue
		}
		e := *r.neverFires
		var users []string
		for _, c := range rules {
			if c.Correlation == nil {
				continue
			}
			for _, ref := range c.Correlation.Refs {
				if (r.ID != "" && ref == r.ID) || (r.Name != "" && ref == r.Name) {
					users = append(users, fmt.Sprintf("%s (%s:%d)", c.DetectorID(), c.Path, c.Line))
					break
				}
			}
		}
		if len(users) > 0 {
			e.Msg += "; the correlation " + strings.Join(users, ", the correlation ") + " uses it and so could never fire either"
		}
		return &e
	}
	return nil
}

func parseCollection(file string, b []byte) ([]*Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []*Rule
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &LoadError{File: file, Line: yamlLine(err), Construct: "yaml", Msg: err.Error()}
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue
		}
		r, err := parseDoc(file, &doc)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, &LoadError{File: file, Line: 1, Construct: "rule", Msg: "the file holds no rule"}
	}
	if len(out) > 1 {
		for i, r := range out {
			r.nth = i + 1
		}
	}
	return out, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

func parseDoc(file string, doc *yaml.Node) (*Rule, error) {
	if doc.Content[0].Kind != yaml.MappingNode {
		return nil, errAt(file, doc.Content[0], "rule", "a rule is a YAML mapping")
	}
	root := doc.Content[0]
	r := &Rule{Path: file, Line: root.Line}
	if b, err := yaml.Marshal(root); err == nil {
		sum := sha256.Sum256(b)
		r.ruleDigest = hex.EncodeToString(sum[:8])
	}
	isCorr := hasKey(root, "correlation")
	var detection, logsource, correlation, generate *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case isCorr && corrTopKeys[k.Value]:
		case !topKeys[k.Value] && corrTopKeys[k.Value]:
			return nil, errAt(file, k, k.Value, "%s belongs to a correlation rule (one with a correlation section)", k.Value)
		case !topKeys[k.Value]:
			if k.Value == "type" || k.Value == "action" {
				return nil, errAt(file, k, k.Value, "unknown rule key (a correlation's type goes under correlation:, Sigma correlation rules specification 2.0)")
			}
			return nil, errAt(file, k, k.Value, "unknown rule key")
		case isCorr && (k.Value == "logsource" || k.Value == "detection" || k.Value == "fields" || k.Value == "scope"):
			return nil, errAt(file, k, k.Value, "a correlation rule has no %s: it reads the events its rules match", k.Value)
		}
		var err error
		switch k.Value {
		case "title":
			err = v.Decode(&r.Title)
		case "id":
			err = v.Decode(&r.ID)
		case "name":
			err = v.Decode(&r.Name)
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
		case "runbook":
			err = v.Decode(&r.Runbook)
		case "logsource":
			logsource = v
		case "detection":
			detection = v
		case "correlation":
			correlation = v
		case "generate":
			generate = v
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
	if isCorr {
		c, err := parseCorrelation(file, correlation, generate)
		if err != nil {
			return nil, err
		}
		r.Correlation = c
		return r, nil
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
	if err := r.checkTypes(); err != nil {
		var le *LoadError
		errors.As(err, &le)
		r.neverFires = le
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
	if services, ok := logsourceServices[key]; ok && ls.Product != "" && !services[strings.ToLower(ls.Service)] {
		read := make([]string, 0, len(services))
		for k := range services {
			read = append(read, fmt.Sprintf("%q", k))
		}
		sort.Strings(read)
		return errAt(r.Path, n, "logsource", "product %q service %q is a log tokenwatch does not read, so the rule could never fire (of %s it reads the services %s)",
			ls.Product, ls.Service, ls.Product, strings.Join(read, ", "))
	}
	r.Source = src
	return nil
}

// logsourceServices narrows the products that name several logs to those
// whose records tokenwatch reads: a rule for another log would load and
// never fire. Google Cloud (gcp) rules are Workspace rules only when the
// service is the Reports API's token application; Azure's are the Entra
// sign-in and audit logs and Graph activity (not activitylogs, riskdetection
// or pim); m365's services are the Management Activity API, which is not read.
var logsourceServices = map[string]map[string]bool{
	"gcp":   {"google_workspace": true, "google_workspace.token": true},
	"azure": {"": true, "signinlogs": true, "auditlogs": true, "microsoftgraphactivitylogs": true},
	"m365":  {"": true},
}

// typesRead narrows a source whose connector turns only some types of its
// vendor's records into events, by a type field of the record: a rule
// whose condition requires another type would load and never fire, so it
// is a load error (checkTypes, types.go). Keyed by tokenwatch source.
var typesRead = map[string]typeFields{
	// ingest/okta: DefaultFilter asks the System Log for `eventType sw
	// "app.oauth2" or eventType sw "system.api_token"`, and whatever filter
	// is configured its normalizer (category) turns only app.oauth2.* and
	// system.api_token.* records into events (event types compared in lower
	// case). The normalized action.name is the record's eventType.
	"okta": {
		field: "eventtype", fields: []string{"eventtype", "action.name"}, connector: "Okta",
		prefixes: []string{"app.oauth2.", "system.api_token."},
		what:     "integration activity: OAuth 2.0 tokens and consents, API tokens; not user sign-ins, admin or policy changes",
	},
	// Not here: GitHub's connector drops records that name no token, app or
	// OAuth application, whatever their action; Microsoft's normalizer
	// reads every directoryAudit (category ApplicationManagement is only its
	// Graph pull's filter; an Event Hubs batch holds what the diagnostic
	// setting sends); Google Workspace's reads one Reports application
	// (token), which logsourceServices narrows.
}

// typeFields is one source's type field and the types its connector reads.
type typeFields struct {
	field     string   // the field as SigmaHQ spells it, for errors
	fields    []string // every name a rule may reach it by, lower case
	connector string   // the connector, for errors
	prefixes  []string // lower case: a type is read when it starts with one
	what      string   // what those types are, for errors
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
			return errAt(r.Path, k, "timeframe", "timeframe is Sigma 1.x's aggregation window, obsolete: write a correlation rule with a timespan (docs/rules.md, Correlation rules)")
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

// LoadFile reads and parses one rule file: one rule or a collection. The
// rules are not linked (see Link).
func LoadFile(path string) ([]*Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sigma rule: %w", err)
	}
	return ParseCollection(path, b)
}

// Load reads every rule under paths: a file is one rule or a collection, a
// folder holds rule files (*.yml, *.yaml, recursively, in name order).
// Two rules with one detector id are an error.
func Load(paths []string) ([]*Rule, error) {
	files, err := ruleFiles(paths)
	if err != nil {
		return nil, err
	}
	var out []*Rule
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("sigma rule: %w", err)
		}
		rs, err := parseCollection(f, b)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if err := checkIDs(out); err != nil {
		return nil, err
	}
	// After every file: a refused rule's error names the correlations of
	// any file that use it.
	if err := checkFires(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkIDs refuses two rules with one detector id.
func checkIDs(rules []*Rule) error {
	by := map[string]*Rule{}
	for _, r := range rules {
		if prev, dup := by[r.DetectorID()]; dup {
			return &LoadError{File: r.Path, Line: r.Line, Construct: "id", Msg: fmt.Sprintf("%s is also the id of the rule at %s:%d", r.DetectorID(), prev.Path, prev.Line)}
		}
		by[r.DetectorID()] = r
	}
	return nil
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
