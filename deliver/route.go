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
