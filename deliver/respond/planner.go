package respond

import (
	"fmt"
	"slices"
	"time"

	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Planned is one action the policy chose: its audit record (status
// planned, or skipped), its target and the requests that carry it out.
type Planned struct {
	Response schemas.Response
	Target   Target
	Requests []Request
}

// Planner applies the policy and its guard rails to incident versions. It
// is deterministic on event time: the revocation cap counts incidents'
// UpdatedAt, never the wall clock, so replaying the same incidents plans the
// same actions with the same ids. Not safe for concurrent use; the cap and
// the memory of what was already planned are per Planner (one per process:
// after a restart a later version may plan a revoke again, which the
// executor's store or the vendor's 404 turns into already_done).
type Planner struct {
	cfg      Config
	revokers map[string]Revoker
	catalog  *inventory.Catalog
	allow    map[string]bool
	// revocations are the event times of planned revokes, oldest first,
	// trimmed to the last hour.
	revocations []time.Time
	planned     map[string]bool // incident id + integration: a revoke counted against the cap
	// seen holds incident id + action + target already planned: a later
	// version of the incident plans only what is new (a user the grown
	// blast radius names, an approval turned revoke), not the same again.
	seen map[string]bool
}

// NewPlanner builds a planner; revokers maps source names to their vendor's
// revoker; catalog (nil for none) maps catalogued integration ids to source
// identities.
func NewPlanner(cfg Config, revokers map[string]Revoker, catalog *inventory.Catalog) *Planner {
	allow := map[string]bool{}
	for _, id := range cfg.AllowList {
		allow[id] = true
	}
	return &Planner{cfg: cfg, revokers: revokers, catalog: catalog, allow: allow, planned: map[string]bool{}, seen: map[string]bool{}}
}

// Plan decides what to do about one incident version: nothing when no rule
// matches; otherwise one Planned per target (per integration of the
// incident, and per user for per-user vendors) not planned for an earlier
// version of the incident. Call it with incident versions in the order
// they were produced.
func (p *Planner) Plan(inc schemas.Incident) []Planned {
	rule := p.cfg.rule(&inc)
	if rule == nil {
		return nil
	}
	at := inc.UpdatedAt
	if at.IsZero() {
		at = inc.LastSeen
	}
	var out []Planned
	for _, integration := range incidentIntegrations(&inc) {
		base := schemas.Response{IncidentID: inc.ID, IncidentVersion: inc.Version, Tenant: inc.Tenant, Source: inc.Source,
			IntegrationID: integration, Action: rule.Action, Mode: rule.Mode, Rule: rule.Name, Status: schemas.ResponsePlanned, At: at}
		if rule.Action == schemas.ActionNotify {
			if p.once(inc.ID, base.Action, inc.Source+"/"+integration) {
				base.ID = schemas.ResponseID(inc.ID, inc.Version, base.Action, inc.Source+"/"+integration)
				out = append(out, Planned{Response: base})
			}
			continue
		}
		targets, why := p.targets(&inc, integration)
		if why != "" {
			// The guard rail: nothing to act on is no action, recorded.
			if p.once(inc.ID, schemas.ResponseSkipped, inc.Source+"/"+integration+"\x00"+why) {
				base.Status, base.Reason = schemas.ResponseSkipped, why
				base.ID = schemas.ResponseID(inc.ID, inc.Version, base.Action, inc.Source+"/"+integration)
				out = append(out, Planned{Response: base})
			}
			continue
		}
		action, reason := rule.Action, ""
		if action == schemas.ActionRevoke {
			action, reason = p.guard(inc.ID, integration, at.Time)
		}
		rv := p.revokers[inc.Source]
		for _, t := range targets {
			if !p.once(inc.ID, action, targetKey(t)) {
				continue
			}
			r := base
			r.Action, r.Reason, r.Target, r.Principal = action, reason, t.VendorID, t.Principal
			r.ID = schemas.ResponseID(inc.ID, inc.Version, action, targetKey(t))
			reqs, err := rv.Plan(t)
			if err != nil {
				r.Status, r.Reason = schemas.ResponseSkipped, err.Error()
				reqs = nil
			}
			for _, q := range reqs {
				r.Requests = append(r.Requests, q.String())
			}
			out = append(out, Planned{Response: r, Target: t, Requests: reqs})
		}
	}
	return out
}

// once reports whether action on target is new for the incident, and
// remembers it.
func (p *Planner) once(incidentID, action, target string) bool {
	k := incidentID + "\x00" + action + "\x00" + target
	if p.seen[k] {
		return false
	}
	p.seen[k] = true
	return true
}

// guard applies the allow-list and the hourly cap to a revoke, counting it
// when it stands. A revoke planned before for the same incident and
// integration (an earlier version) is planned again without counting twice.
func (p *Planner) guard(incidentID, integration string, at time.Time) (action, reason string) {
	if p.allow[integration] {
		return schemas.ActionRequestApproval, "integration is on respond.allow_list: never revoked without approval"
	}
	key := incidentID + "\x00" + integration
	if p.planned[key] {
		return schemas.ActionRevoke, ""
	}
	cut := 0
	for cut < len(p.revocations) && !p.revocations[cut].After(at.Add(-time.Hour)) {
		cut++
	}
	p.revocations = p.revocations[cut:]
	if len(p.revocations) >= p.cfg.MaxRevocationsPerHour {
		return schemas.ActionRequestApproval, fmt.Sprintf("respond.max_revocations_per_hour (%d) reached: approval required", p.cfg.MaxRevocationsPerHour)
	}
	// Incident versions arrive in production order, which may not be event
	// time order across integrations: keep the window sorted.
	i, _ := slices.BinarySearchFunc(p.revocations, at, func(a, b time.Time) int { return a.Compare(b) })
	p.revocations = slices.Insert(p.revocations, i, at)
	p.planned[key] = true
	return schemas.ActionRevoke, ""
}

// targets resolves integration to the vendor's identity and, for per-user
// vendors, the users holding a grant; why says what is missing when none.
func (p *Planner) targets(inc *schemas.Incident, integration string) ([]Target, string) {
	rv, ok := p.revokers[inc.Source]
	if !ok {
		return nil, fmt.Sprintf("no revoker for source %q (configure respond.vendors.%s)", inc.Source, inc.Source)
	}
	vendorID, ok := Resolve(rv, p.catalog, inc.Source, integration)
	if !ok {
		why := fmt.Sprintf("integration %q cannot be resolved to a %s identity", integration, inc.Source)
		if e, ok := rv.(Explainer); ok {
			if s := e.Unresolved(integration); s != "" {
				why += ": " + s
			}
		}
		return nil, why
	}
	t := Target{Source: inc.Source, Tenant: inc.Tenant, IntegrationID: integration, VendorID: vendorID}
	if !rv.PerPrincipal() {
		return []Target{t}, ""
	}
	users := slices.Clone(inc.Blast.Principals)
	slices.Sort(users)
	users = slices.Compact(users)
	if len(users) == 0 {
		return nil, fmt.Sprintf("no user known to hold a %s grant to %s", inc.Source, vendorID)
	}
	out := make([]Target, 0, len(users))
	for _, u := range users {
		t.Principal = u
		out = append(out, t)
	}
	return out, ""
}

// Resolve maps an integration id to the vendor id rv acts on: through the
// catalog's identity for source when the integration is catalogued (its id
// is then the catalog's), else the id itself, which connectors set to the
// source app id.
func Resolve(rv Revoker, catalog *inventory.Catalog, source, integration string) (string, bool) {
	if e, ok := catalog.Entry(integration); ok {
		for _, id := range e.Identities {
			if id.Source == source {
				if v, ok := rv.Resolve(id.ID); ok {
					return v, true
				}
			}
		}
	}
	return rv.Resolve(integration)
}

func targetKey(t Target) string { return t.Source + "/" + t.VendorID + "/" + t.Principal }
