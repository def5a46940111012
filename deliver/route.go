package deliver

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Route sends matching alerts to named sinks. Every condition that is set
// must hold; an empty condition matches everything:
//
//	routes:
//	  - sinks: [pagerduty-oncall]
//	    min_severity: high
//	    criticality: [crown_jewel, high]
//	  - sinks: [soc-slack, splunk]
//	    detectors: ["geo.*", "lifecycle.use_after_revoke"]
//	  - sinks: [acme-slack]
//	    tenants: [acme]
type Route struct {
	// Sinks are sink instance names (the "name" of a configured sink).
	Sinks []string `yaml:"sinks"`
	// MinSeverity drops alerts below it; an alert whose severity is unknown
	// only matches a route without MinSeverity.
	MinSeverity schemas.Severity `yaml:"min_severity"`
	// Detectors are globs over the detector id ("geo.*"), path.Match syntax.
	Detectors []string `yaml:"detectors"`
	// Tenants are exact tenant names.
	Tenants []string `yaml:"tenants"`
	// Criticality lists the integration criticalities (from the inventory)
	// that match; an integration the inventory does not know has criticality
	// "" and only matches a route without Criticality.
	Criticality []string `yaml:"criticality"`
	// Alerts: whether this route sends matching alerts to its sinks. Unset,
	// each sink's own default applies (deliver.sinks[].alerts: true for
	// record-keeping sinks, false for paging ones).
	Alerts *bool `yaml:"alerts"`
	// Incidents: whether this route sends matching incidents to its sinks
	// (default true).
	Incidents *bool `yaml:"incidents"`
}

// Routes is the routing table. It has union semantics: an alert goes to
// every sink of every route it matches, each sink once. Union rather than
// first match, so adding a route (page on-call for crown jewels) can never
// silently stop an alert reaching a sink an earlier route sent it to (the
// SOC channel); order does not matter.
type Routes []Route

// Validate checks severities, globs and that every sink is in known (pass
// nil to skip that check).
func (rs Routes) Validate(known []string) error {
	var errs []error
	for i, r := range rs {
		if len(r.Sinks) == 0 {
			errs = append(errs, fmt.Errorf("route %d: sinks: at least one required", i))
		}
		for _, s := range r.Sinks {
			if known != nil && !slices.Contains(known, s) {
				errs = append(errs, fmt.Errorf("route %d: sink %q is not configured (have %v)", i, s, known))
			}
		}
		if r.MinSeverity != "" {
			if _, err := schemas.ParseSeverity(string(r.MinSeverity)); err != nil {
				errs = append(errs, fmt.Errorf("route %d: min_severity: %w", i, err))
			}
		}
		for _, g := range r.Detectors {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Errorf("route %d: detector glob %q: %w", i, g, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Matches reports whether a (of an integration with the given criticality)
// satisfies every condition set on r.
func (r Route) Matches(a schemas.Alert, criticality string) bool {
	if r.MinSeverity != "" {
		min := schemas.Severity(strings.ToLower(string(r.MinSeverity))).Rank()
		if got := a.Severity.Rank(); got < 0 || got < min {
			return false
		}
	}
	if len(r.Detectors) > 0 && !slices.ContainsFunc(r.Detectors, func(g string) bool {
		ok, _ := path.Match(g, a.Detector)
		return ok
	}) {
		return false
	}
	if len(r.Tenants) > 0 && !slices.Contains(r.Tenants, a.Tenant) {
		return false
	}
	if len(r.Criticality) > 0 && !slices.Contains(r.Criticality, criticality) {
		return false
	}
	return true
}

// MatchesIncident reports whether inc satisfies every condition set on r:
// min_severity against the incident's severity, detectors against any of
// the detectors that contributed to it, tenants and criticality as for
// alerts.
func (r Route) MatchesIncident(inc schemas.Incident) bool {
	if r.MinSeverity != "" {
		min := schemas.Severity(strings.ToLower(string(r.MinSeverity))).Rank()
		if got := inc.Severity.Rank(); got < 0 || got < min {
			return false
		}
	}
	if len(r.Detectors) > 0 && !slices.ContainsFunc(r.Detectors, func(g string) bool {
		return slices.ContainsFunc(inc.Detectors, func(d string) bool { ok, _ := path.Match(g, d); return ok })
	}) {
		return false
	}
	if len(r.Tenants) > 0 && !slices.Contains(r.Tenants, inc.Tenant) {
		return false
	}
	if len(r.Criticality) > 0 && !slices.Contains(r.Criticality, inc.Criticality) {
		return false
	}
	return true
}

// AlertTo reports whether alert a goes to sink, whose own alerts default is
// sinkDefault: with no routes, that default decides; with routes, some route
// naming the sink must match a and ask for alerts (its alerts switch, or the
// sink's default when the route leaves it unset).
func (rs Routes) AlertTo(sink string, a schemas.Alert, sinkDefault bool) bool {
	if len(rs) == 0 {
		return sinkDefault
	}
	for _, r := range rs {
		want := sinkDefault
		if r.Alerts != nil {
			want = *r.Alerts
		}
		if want && slices.Contains(r.Sinks, sink) && r.Matches(a, a.Criticality) {
			return true
		}
	}
	return false
}

// IncidentTo reports whether inc goes to sink: always with no routes; with
// routes, when a route naming the sink matches it and does not turn
// incidents off.
func (rs Routes) IncidentTo(sink string, inc schemas.Incident) bool {
	if len(rs) == 0 {
		return true
	}
	for _, r := range rs {
		if (r.Incidents == nil || *r.Incidents) && slices.Contains(r.Sinks, sink) && r.MatchesIncident(inc) {
			return true
		}
	}
	return false
}

// SinksFor returns the sinks a should go to: the union over all matching
// routes, in order of first appearance, without duplicates. Nil means no
// route matched (the runner should count that, not drop it silently).
func (rs Routes) SinksFor(a schemas.Alert, criticality string) []string {
	var out []string
	for _, r := range rs {
		if !r.Matches(a, criticality) {
			continue
		}
		for _, s := range r.Sinks {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
