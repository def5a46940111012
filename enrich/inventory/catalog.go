// Package inventory owns the integration catalog: the YAML file in which a
// security team lists the integrations it knows (owner, purpose, criticality,
// approved scopes and countries, expiry) and the source identities (OAuth
// client ids, connected-app ids…) each one appears under. Its Enricher maps an
// event's (source, source app id) to its catalog entry, so one vendor
// integration is one identity across SaaS apps, and attaches what the catalog
// says as ev.Inventory. Its Discovery records which integrations are actually
// active, catalogued or not. It must not import ingest, detect or deliver.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Criticalities lists the valid criticality values, lowest first.
var Criticalities = []string{"low", "medium", "high", "critical"}

// Identity is one name an integration has in one source: the OAuth client id
// in google_workspace, the connected app id in salesforce, and so on. It is
// matched against ev.Source and ev.Integration.SourceAppID exactly.
type Identity struct {
	Source string `yaml:"source"`
	ID     string `yaml:"id"`
}

// Entry is one catalogued integration.
type Entry struct {
	// ID becomes ev.Integration.ID for every identity below: the key alerts,
	// baselines and partitions use.
	ID                string   `yaml:"id"`
	Name              string   `yaml:"name"`
	Owner             string   `yaml:"owner"`
	Purpose           string   `yaml:"purpose"`
	Criticality       string   `yaml:"criticality"`
	ApprovedScopes    []string `yaml:"approved_scopes"`
	ApprovedCountries []string `yaml:"approved_countries"`
	ExpiresAt         string   `yaml:"expires_at"` // RFC 3339, or a date meaning 00:00 UTC that day
	// ReviewedAt is when the entry was last reviewed (RFC 3339 or a date);
	// ReviewEvery is how often it must be (a Go duration such as 2160h, or
	// whole days such as 90d). Both or neither: a review is overdue once
	// ReviewedAt + ReviewEvery has passed.
	ReviewedAt  string     `yaml:"reviewed_at"`
	ReviewEvery string     `yaml:"review_every"`
	Identities  []Identity `yaml:"identities"`

	expires     *time.Time
	reviewed    *time.Time
	reviewEvery time.Duration
	view        *schemas.Inventory // shared by every event of the entry; read-only
}

// Expires returns the parsed expires_at, nil when the entry has none.
func (e *Entry) Expires() *time.Time { return e.expires }

// ReviewDue returns when the next review is due (reviewed_at + review_every)
// and false when the entry has no review schedule.
func (e *Entry) ReviewDue() (time.Time, bool) {
	if e.reviewed == nil || e.reviewEvery <= 0 {
		return time.Time{}, false
	}
	return e.reviewed.Add(e.reviewEvery), true
}

// ReviewOverdue reports whether the review due date is before now.
func (e *Entry) ReviewOverdue(now time.Time) bool {
	due, ok := e.ReviewDue()
	return ok && due.Before(now)
}

// Inventory returns what enrichment attaches to an event of this entry. The
// value is shared between events and must not be modified.
func (e *Entry) Inventory() *schemas.Inventory { return e.view }

// Catalog is a validated catalog file: entries in file order and an index by
// source identity. A Catalog is immutable once parsed, so readers share it
// without locks.
type Catalog struct {
	Entries []*Entry
	byIdent map[Identity]*Entry
	byID    map[string]*Entry
}

// Lookup finds the entry for a source identity.
func (c *Catalog) Lookup(source, sourceAppID string) (*Entry, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.byIdent[Identity{Source: source, ID: sourceAppID}]
	return e, ok
}

// Entry finds an entry by catalog id.
func (c *Catalog) Entry(id string) (*Entry, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.byID[id]
	return e, ok
}

// file is the catalog document: a top-level `integrations:` list, leaving room
// for other top-level keys later.
type file struct {
	Integrations []*Entry `yaml:"integrations"`
}

// Load reads and validates a catalog file.
func Load(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	return c, nil
}

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]*$`)
	sourcePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Parse decodes and validates catalog YAML. Unknown keys are errors, so a
// typo ("owners:") is not silently an unowned integration. Every error names
// the entry (index and id) and the field.
func Parse(b []byte) (*Catalog, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file, an empty catalog
		return nil, fmt.Errorf("decode: %w", err)
	}
	c := &Catalog{byIdent: map[Identity]*Entry{}, byID: map[string]*Entry{}}
	var errs []error
	for i, e := range f.Integrations {
		if e == nil {
			errs = append(errs, fmt.Errorf("integrations[%d]: empty entry", i))
			continue
		}
		where := fmt.Sprintf("integrations[%d] (id %q)", i, e.ID)
		for _, err := range e.validate() {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if e.ID != "" {
			if _, dup := c.byID[e.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: id: duplicate of an earlier entry", where))
			}
			c.byID[e.ID] = e
		}
		for j, id := range e.Identities {
			if other, dup := c.byIdent[id]; dup && id.Source != "" && id.ID != "" {
				errs = append(errs, fmt.Errorf("%s: identities[%d]: %s %q is already listed under %q", where, j, id.Source, id.ID, other.ID))
				continue
			}
			c.byIdent[id] = e
		}
		c.Entries = append(c.Entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// validate normalizes the entry in place (trimmed strings, upper-case
// countries, parsed expiry) and returns every problem found.
func (e *Entry) validate() []error {
	var errs []error
	e.ID = strings.TrimSpace(e.ID)
	e.Name = strings.TrimSpace(e.Name)
	e.Owner = strings.TrimSpace(e.Owner)
	e.Criticality = strings.ToLower(strings.TrimSpace(e.Criticality))
	switch {
	case e.ID == "":
		errs = append(errs, errors.New("id: required"))
	case !idPattern.MatchString(e.ID):
		errs = append(errs, fmt.Errorf("id %q: letters, digits and . _ : / @ - only", e.ID))
	}
	if e.Criticality != "" && !slices.Contains(Criticalities, e.Criticality) {
		errs = append(errs, fmt.Errorf("criticality %q: want one of %s", e.Criticality, strings.Join(Criticalities, ", ")))
	}
	for i, s := range e.ApprovedScopes {
		e.ApprovedScopes[i] = strings.TrimSpace(s)
		if e.ApprovedScopes[i] == "" {
			errs = append(errs, fmt.Errorf("approved_scopes[%d]: empty", i))
		}
	}
	for i, c := range e.ApprovedCountries {
		c = strings.ToUpper(strings.TrimSpace(c))
		e.ApprovedCountries[i] = c
		if !countryPattern.MatchString(c) {
			errs = append(errs, fmt.Errorf("approved_countries[%d] %q: want an ISO 3166-1 alpha-2 code", i, c))
		}
	}
	if s := strings.TrimSpace(e.ExpiresAt); s != "" {
		t, err := ParseTime(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("expires_at %q: want RFC 3339 (2026-12-31T18:00:00Z) or a date (2026-12-31)", s))
		} else {
			e.expires = &t
		}
	}
	rs, es := strings.TrimSpace(e.ReviewedAt), strings.TrimSpace(e.ReviewEvery)
	if rs != "" {
		if t, err := ParseTime(rs); err != nil {
			errs = append(errs, fmt.Errorf("reviewed_at %q: want RFC 3339 (2026-09-01T09:00:00Z) or a date (2026-09-01)", rs))
		} else {
			e.reviewed = &t
		}
	}
	if es != "" {
		if d, err := ParseDays(es); err != nil {
			errs = append(errs, fmt.Errorf("review_every %q: %w", es, err))
		} else {
			e.reviewEvery = d
		}
	}
	if (rs == "") != (es == "") {
		errs = append(errs, errors.New("reviewed_at and review_every: give both or neither"))
	}
	if len(e.Identities) == 0 {
		errs = append(errs, errors.New("identities: at least one {source, id} is needed to match events"))
	}
	for i := range e.Identities {
		id := &e.Identities[i]
		id.Source, id.ID = strings.TrimSpace(id.Source), strings.TrimSpace(id.ID)
		if !sourcePattern.MatchString(id.Source) {
			errs = append(errs, fmt.Errorf("identities[%d].source %q: want a source name such as google_workspace", i, id.Source))
		}
		if id.ID == "" {
			errs = append(errs, fmt.Errorf("identities[%d].id: required", i))
		}
	}
	if len(errs) == 0 {
		e.view = &schemas.Inventory{
			Catalogued: true, Name: e.Name, Owner: e.Owner, Purpose: strings.TrimSpace(e.Purpose),
			Criticality: e.Criticality, ApprovedScopes: e.ApprovedScopes, ApprovedCountries: e.ApprovedCountries,
		}
		if e.expires != nil {
			t := schemas.NewTime(*e.expires)
			e.view.ExpiresAt = &t
		}
		if due, ok := e.ReviewDue(); ok {
			t := schemas.NewTime(due)
			e.view.ReviewDueAt = &t
		}
	}
	return errs
}

// ParseTime accepts RFC 3339 or a bare date; a date means its first instant
// in UTC, so "expires_at: 2026-12-31" is no longer valid on that day. The
// catalog's times and the CLI's --since/--until read alike.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}

// ParseDays accepts whole days ("90d") or a Go duration ("2160h"),
// positive: review_every, and the CLI's --window.
func ParseDays(s string) (time.Duration, error) {
	bad := errors.New("want a positive duration: days (90d) or a Go duration (2160h)")
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, bad
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}
