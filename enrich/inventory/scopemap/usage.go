package scopemap

import (
	"cmp"
	"slices"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Usage is one integration's least-privilege picture over a window.
type Usage struct {
	Tenant        string `json:"tenant"`
	IntegrationID string `json:"integration_id"`
	Name          string `json:"name,omitempty"`
	Source        string `json:"source"`
	// Held: the catalog's approved scopes and every scope seen on the
	// integration's events (grants, tokens), sign-in scopes left out.
	Held []string `json:"held"`
	// Needed: the least-privileged scope of every mapped call.
	Needed []string `json:"needed"`
	// Exercised: the held scopes the calls were credited to.
	Exercised []string `json:"exercised"`
	// Unused: held but never exercised: candidates to remove.
	Unused []string `json:"unused"`
	// Narrower: exercised scopes broader than some call needed, with the
	// least-privileged scope those calls needed ("Mail.ReadWrite" used only
	// to read: Mail.Read would do).
	Narrower []Narrowing `json:"narrower"`
	// Uncovered: mapped calls none of the held scopes serves (the held
	// scopes are not all known, e.g. no grant seen in the window).
	Uncovered []Count `json:"uncovered"`
	// Calls counts successful API calls; Mapped those the map knows;
	// Unmapped the others by call; Failed the calls left out (a failed
	// call exercised nothing).
	Calls    int       `json:"calls"`
	Mapped   int       `json:"mapped"`
	Unmapped []Count   `json:"unmapped"`
	Failed   int       `json:"failed"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
}

// Narrowing is a held scope and what its calls needed instead. A scope
// listed with several needs (read and send) can be swapped for all of them.
type Narrowing struct {
	Held  string   `json:"held"`
	Needs []string `json:"needs"`
}

// Count is a call and how often it was made.
type Count struct {
	Call  string `json:"call"`
	Count int    `json:"count"`
}

// Builder accumulates events into Usage per (tenant, integration, source).
// Only events with From <= time < To count (event time, so a replay of the
// same files gives the same report); zero bounds are open.
type Builder struct {
	m        *Map
	From, To time.Time
	by       map[usageKey]*acc
}

type usageKey struct{ tenant, integration, source string }

type callKey struct {
	call    string
	appOnly bool
}

type acc struct {
	name     string
	held     map[string]string // key -> scope as first seen
	mapped   map[callKey]*mappedCalls
	unmapped map[string]int
	calls    int
	failed   int
}

type mappedCalls struct {
	e *Entry
	n int
}

// NewBuilder starts an empty report.
func NewBuilder(m *Map) *Builder { return &Builder{m: m, by: map[usageKey]*acc{}} }

// Add counts one (catalog-enriched) event.
func (b *Builder) Add(ev *schemas.Event) {
	t := ev.Time.Time
	if (!b.From.IsZero() && t.Before(b.From)) || (!b.To.IsZero() && !t.Before(b.To)) {
		return
	}
	k := usageKey{ev.Tenant, ev.Integration.ID, ev.Source}
	a := b.by[k]
	if a == nil {
		a = &acc{held: map[string]string{}, mapped: map[callKey]*mappedCalls{}, unmapped: map[string]int{}}
		b.by[k] = a
	}
	// The catalog's name wins over whatever the vendor calls the app.
	if ev.Inventory != nil && ev.Inventory.Name != "" {
		a.name = ev.Inventory.Name
	} else if a.name == "" {
		a.name = ev.Integration.Name
	}
	hold := func(s string) {
		if s == "" || b.m.Identity(ev.Source, s) {
			return
		}
		if _, ok := a.held[Key(ev.Source, s)]; !ok {
			a.held[Key(ev.Source, s)] = Canonical(ev.Source, s)
		}
	}
	if ev.Inventory != nil {
		for _, s := range ev.Inventory.ApprovedScopes {
			hold(s)
		}
	}
	for _, s := range ev.Scopes {
		hold(s)
	}
	call, e := b.m.Call(ev)
	if call == "" {
		return
	}
	if ev.Outcome == "failure" {
		a.failed++
		return
	}
	a.calls++
	if e == nil {
		a.unmapped[call]++
		return
	}
	ck := callKey{e.Call, ev.Delegation == schemas.DelegationAppOnly}
	if a.mapped[ck] == nil {
		a.mapped[ck] = &mappedCalls{e: e}
	}
	a.mapped[ck].n++
}

// Usage returns the report, sorted by tenant, integration and source.
func (b *Builder) Usage() []Usage {
	out := make([]Usage, 0, len(b.by))
	for k, a := range b.by {
		u := Usage{Tenant: k.tenant, IntegrationID: k.integration, Name: a.name, Source: k.source,
			Calls: a.calls, Failed: a.failed, From: b.From, To: b.To,
			Held: []string{}, Needed: []string{}, Exercised: []string{}, Unused: []string{}, Narrower: []Narrowing{}, Uncovered: []Count{}, Unmapped: []Count{}}
		for _, s := range a.held {
			u.Held = append(u.Held, s)
		}
		exercised := map[string]bool{}
		needed := map[string]bool{}
		// needsOf[s]: what the calls credited to s needed; s is broader
		// than needed when its calls needed anything but s itself.
		needsOf := map[string]map[string]bool{}
		uncovered := map[string]int{}
		for ck, mc := range a.mapped {
			u.Mapped += mc.n
			needs := mc.e.Needs
			if ck.appOnly {
				needs = mc.e.NeedsApp
			}
			needed[needs] = true
			if s := credit(a.held, k.source, mc.e); s != "" {
				exercised[s] = true
				if needsOf[s] == nil {
					needsOf[s] = map[string]bool{}
				}
				needsOf[s][needs] = true
			} else {
				uncovered[mc.e.Call] += mc.n
			}
		}
		for s := range needed {
			u.Needed = append(u.Needed, s)
		}
		for s := range exercised {
			u.Exercised = append(u.Exercised, s)
		}
		for _, s := range u.Held {
			if !exercised[s] {
				u.Unused = append(u.Unused, s)
			}
		}
		for s, ns := range needsOf {
			if ns[s] {
				continue // some call needed s itself
			}
			n := Narrowing{Held: s}
			for x := range ns {
				n.Needs = append(n.Needs, x)
			}
			slices.Sort(n.Needs)
			u.Narrower = append(u.Narrower, n)
		}
		slices.SortFunc(u.Narrower, func(x, y Narrowing) int { return cmp.Compare(x.Held, y.Held) })
		u.Uncovered = counts(uncovered)
		u.Unmapped = counts(a.unmapped)
		for _, l := range [][]string{u.Held, u.Needed, u.Exercised, u.Unused} {
			slices.Sort(l)
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(x, y Usage) int {
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.IntegrationID, y.IntegrationID), cmp.Compare(x.Source, y.Source))
	})
	return out
}

// credit is the held scope a call is put down to: the first full scope held
// (they are listed narrowest first), else the first partial one, else "".
func credit(held map[string]string, source string, e *Entry) string {
	for _, list := range [][]string{e.Scopes, e.Partial} {
		for _, s := range list {
			if h, ok := held[Key(source, s)]; ok {
				return h
			}
		}
	}
	return ""
}

// counts sorts by count (most first), then call.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for c, n := range m {
		out = append(out, Count{c, n})
	}
	slices.SortFunc(out, func(x, y Count) int { return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Call, y.Call)) })
	return out
}
