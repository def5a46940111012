// Package scopemap holds the scope <-> API-method map (map.yaml, embedded):
// for each API method an audit log names, the least-privileged scope that
// serves it and every scope that does. Usage, built from events, sets the
// scopes an integration holds against those its calls needed, for least
// privilege reviews (tokenwatch inventory --scopes). The same data seeds the
// ClickHouse table api_method_scopes (schemas/migrations). Like its parent it
// must not import ingest, detect or deliver.
package scopemap

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Sources the map covers, as schemas.Event.Source names them.
const (
	Google    = "google_workspace"
	Microsoft = "microsoft"
)

const googleScopePrefix = "https://www.googleapis.com/auth/"

//go:embed map.yaml
var mapYAML []byte

// Entry is one API method.
type Entry struct {
	Source string
	// Call is the method as the audit log names it: a Google method id
	// (gmail.users.messages.get) or a Graph "GET /users/{id}/messages".
	Call string
	// Needs is the least-privileged scope serving the call in full; NeedsApp
	// the same for an app-only token (Graph application permissions), equal
	// to Needs when the vendor lists no other.
	Needs, NeedsApp string
	// Scopes serve the call in full, narrowest first; Partial serve it only
	// on part of the data (metadata, the app's own files).
	Scopes, Partial []string
	Doc             string

	method string   // Graph: upper-case HTTP method
	segs   []string // Graph: lower-case path segments, "{id}" for any one
}

// Map is the parsed map file.
type Map struct {
	entries  []*Entry
	byCall   map[string]*Entry // Google method ids
	graph    []*Entry
	identity map[string]map[string]bool // source -> sign-in scopes (canonical key)
}

type fileEntry struct {
	Method   string   `yaml:"method"`
	Call     string   `yaml:"call"`
	Needs    string   `yaml:"needs"`
	NeedsApp string   `yaml:"needs_app"`
	Scopes   []string `yaml:"scopes"`
	Partial  []string `yaml:"partial"`
	Doc      string   `yaml:"doc"`
}

type file struct {
	Identity  map[string][]string `yaml:"identity_scopes"`
	Google    []fileEntry         `yaml:"google_workspace"`
	Microsoft []fileEntry         `yaml:"microsoft"`
}

var (
	defaultOnce sync.Once
	defaultMap  *Map
	defaultErr  error
)

// Default returns the embedded map. The embedded file is checked by the
// package's tests, so an error here is a build defect.
func Default() (*Map, error) {
	defaultOnce.Do(func() { defaultMap, defaultErr = Parse(mapYAML) })
	return defaultMap, defaultErr
}

// Parse decodes and validates a map file; every error names the entry.
func Parse(b []byte) (*Map, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("scope map: decode: %w", err)
	}
	m := &Map{byCall: map[string]*Entry{}, identity: map[string]map[string]bool{}}
	for src, ss := range f.Identity {
		m.identity[src] = map[string]bool{}
		for _, s := range ss {
			m.identity[src][Key(src, s)] = true
		}
	}
	var errs []error
	add := func(src string, i int, fe fileEntry) {
		where := fmt.Sprintf("%s[%d] (%s%s)", src, i, fe.Method, fe.Call)
		e := &Entry{Source: src, Needs: Canonical(src, fe.Needs), NeedsApp: Canonical(src, fe.NeedsApp), Doc: fe.Doc}
		for _, s := range fe.Scopes {
			e.Scopes = append(e.Scopes, Canonical(src, s))
		}
		for _, s := range fe.Partial {
			e.Partial = append(e.Partial, Canonical(src, s))
		}
		if e.NeedsApp == "" {
			e.NeedsApp = e.Needs
		}
		switch src {
		case Google:
			e.Call = fe.Method
			if e.Call == "" || fe.Call != "" {
				errs = append(errs, fmt.Errorf("%s: want method (a method id), not call", where))
			} else if m.byCall[e.Call] != nil {
				errs = append(errs, fmt.Errorf("%s: listed twice", where))
			}
			m.byCall[e.Call] = e
		case Microsoft:
			method, path, ok := strings.Cut(fe.Call, " ")
			if !ok || fe.Method != "" || !strings.HasPrefix(path, "/") {
				errs = append(errs, fmt.Errorf("%s: want call: \"METHOD /path\"", where))
			}
			e.Call, e.method, e.segs = fe.Call, strings.ToUpper(method), segments(path)
			for _, o := range m.graph {
				if o.method == e.method && slices.Equal(o.segs, e.segs) {
					errs = append(errs, fmt.Errorf("%s: listed twice", where))
				}
			}
			m.graph = append(m.graph, e)
		}
		if e.Needs == "" || !strings.HasPrefix(e.Doc, "https://") || len(e.Scopes) == 0 {
			errs = append(errs, fmt.Errorf("%s: needs, scopes and an https doc are required", where))
		}
		// The scope to request must serve the call in full, or the advice
		// would break the integration.
		if !slices.Contains(e.Scopes, e.Needs) || !slices.Contains(e.Scopes, e.NeedsApp) {
			errs = append(errs, fmt.Errorf("%s: needs %q / needs_app %q must be among scopes", where, e.Needs, e.NeedsApp))
		}
		for _, p := range e.Partial {
			if slices.Contains(e.Scopes, p) {
				errs = append(errs, fmt.Errorf("%s: %q is both a full and a partial scope", where, p))
			}
		}
		m.entries = append(m.entries, e)
	}
	for i, fe := range f.Google {
		add(Google, i, fe)
	}
	for i, fe := range f.Microsoft {
		add(Microsoft, i, fe)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scope map: %w", err)
	}
	return m, nil
}

// Entries returns every entry in file order (read-only).
func (m *Map) Entries() []*Entry { return m.entries }

// Canonical spells a scope as events carry it: Google short names
// (gmail.readonly) become their URL.
func Canonical(source, scope string) string {
	scope = strings.TrimSpace(scope)
	if source == Google && scope != "" && !strings.Contains(scope, "://") && !isGoogleIdentity(scope) {
		return googleScopePrefix + scope
	}
	return scope
}

func isGoogleIdentity(s string) bool { return s == "openid" || s == "email" || s == "profile" }

// Key compares scopes: Graph permission names are case-insensitive.
func Key(source, scope string) string {
	scope = Canonical(source, scope)
	if source == Microsoft {
		return strings.ToLower(scope)
	}
	return scope
}

// Identity reports whether scope only signs the user in (openid, profile…):
// held by nearly every app and never API use.
func (m *Map) Identity(source, scope string) bool { return m.identity[source][Key(source, scope)] }

// Call returns the API call an event records, as the map keys it ("" when
// the event is no API call: a consent, a revoke, an admin change), and the
// entry for it (nil when the map has none: an unmapped call).
func (m *Map) Call(ev *schemas.Event) (string, *Entry) {
	switch {
	case ev.Resource.Type == "api_method" && ev.Resource.ID != "":
		return ev.Resource.ID, m.byCall[ev.Resource.ID]
	case ev.HTTP != nil && ev.HTTP.Method != "":
		// The route has ids templated ({id}), so unmapped calls group by
		// what was called, not on whom.
		route := ev.HTTP.Route
		if route == "" {
			route = ev.Resource.ID
		}
		segs := segments(route)
		call := strings.ToUpper(ev.HTTP.Method) + " " + display(route)
		if ev.Source != Microsoft {
			return call, nil
		}
		if e := m.graphMatch(ev.HTTP.Method, segs); e != nil {
			return call, e
		}
		// /me/... is /users/{signed-in user}/...
		if len(segs) > 0 && segs[0] == "me" {
			return call, m.graphMatch(ev.HTTP.Method, append([]string{"users", "{id}"}, segs[1:]...))
		}
		return call, nil
	}
	return "", nil
}

// graphMatch picks the template matching the most literal segments.
func (m *Map) graphMatch(method string, segs []string) *Entry {
	method = strings.ToUpper(method)
	var best *Entry
	bestScore := -1
	for _, e := range m.graph {
		if e.method != method || len(e.segs) != len(segs) {
			continue
		}
		score, ok := 0, true
		for i, s := range e.segs {
			switch {
			case s == "{id}":
			case s == segs[i]:
				score++
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok && score > bestScore {
			best, bestScore = e, score
		}
	}
	return best
}

// segments splits a Graph path: lower case, no version prefix, no trailing
// slash.
func segments(path string) []string {
	path = strings.Trim(strings.ToLower(path), "/")
	if path == "" {
		return nil
	}
	segs := strings.Split(path, "/")
	if segs[0] == "v1.0" || segs[0] == "beta" {
		segs = segs[1:]
	}
	return segs
}

// display is the path without its version prefix, case kept, for reports.
func display(path string) string {
	p := strings.TrimRight(path, "/")
	for _, v := range []string{"/v1.0/", "/beta/"} {
		if len(p) >= len(v) && strings.EqualFold(p[:len(v)], v) {
			return p[len(v)-1:]
		}
	}
	return p
}

// SQLCollections are the Graph collections whose next path segment is an
// id. ClickHouse 18.16 cannot match against a pattern held in a table (its
// match() wants a constant), so integration_scope_usage keys a Graph call by
// rewriting its route with this list (schemas/migrations/0019_scope_usage.sql
// repeats it; a test keeps the two equal) and joins on SQLKey.
const SQLCollections = "users|messages|mailfolders|childfolders|drives|items|groups|applications|serviceprincipals|sites|chats|events|calendars|contacts|attachments"

var sqlIDSegment = regexp.MustCompile("/(" + SQLCollections + ")/[^/]+")

// SQLKey is the entry's key in api_method_scopes: the Google method id, or
// the Graph call in lower case ("get /users/{id}/messages").
func (e *Entry) SQLKey() string {
	if e.Source != Microsoft {
		return e.Call
	}
	return strings.ToLower(e.Call)
}

// SQLCallKey is what the view computes from a Graph request (method and
// route): lower case, no version prefix, /me/ as /users/{id}/, the segment
// after each SQLCollections name as {id}. Go's twin of the SQL, for tests.
func SQLCallKey(method, route string) string {
	r := strings.TrimSuffix(strings.ToLower(route), "/")
	r = regexp.MustCompile(`^/(v1\.0|beta)/`).ReplaceAllString(r, "/")
	r = regexp.MustCompile(`^/me/`).ReplaceAllString(r, "/users/{id}/")
	r = sqlIDSegment.ReplaceAllString(r, "/$1/{id}")
	return strings.ToLower(method) + " " + r
}

// SQLInsert is the INSERT that fills the ClickHouse table api_method_scopes
// with the map (schemas/migrations carries it verbatim; a test keeps the
// two equal). It is an INSERT … SELECT over one array of string tuples:
// ClickHouse 18.16 does not answer an INSERT … VALUES sent through the
// driver's Exec, and all-string tuples need no type unification (scope
// lists travel space-separated).
func (m *Map) SQLInsert() string {
	var b strings.Builder
	b.WriteString("INSERT INTO api_method_scopes (source, call, call_key, needs, needs_app, scopes, partial, doc)\n")
	b.WriteString("SELECT tupleElement(r, 1), tupleElement(r, 2), tupleElement(r, 3), tupleElement(r, 4), tupleElement(r, 5),\n")
	b.WriteString("    arrayFilter(x -> x != '', splitByChar(' ', tupleElement(r, 6))), arrayFilter(x -> x != '', splitByChar(' ', tupleElement(r, 7))), tupleElement(r, 8)\n")
	b.WriteString("FROM (SELECT arrayJoin([\n")
	for i, e := range m.entries {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "    (%s, %s, %s, %s, %s, %s, %s, %s)", sqlString(e.Source), sqlString(e.Call), sqlString(e.SQLKey()),
			sqlString(e.Needs), sqlString(e.NeedsApp), sqlString(strings.Join(e.Scopes, " ")), sqlString(strings.Join(e.Partial, " ")), sqlString(e.Doc))
	}
	b.WriteString("\n]) AS r);")
	return b.String()
}

func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
