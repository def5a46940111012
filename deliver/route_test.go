package deliver

import (
	"slices"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestRoutesSinksForIsTheUnionOfMatchingRoutes(t *testing.T) {
	routes := Routes{
		{Sinks: []string{"pagerduty"}, MinSeverity: "high", Criticality: []string{"crown_jewel"}},
		{Sinks: []string{"soc-slack", "splunk"}, Detectors: []string{"geo.*"}},
		{Sinks: []string{"acme-slack", "splunk"}, Tenants: []string{"acme"}},
		{Sinks: []string{"archive"}},
	}
	alert := func(det string, sev schemas.Severity, tenant string) schemas.Alert {
		return schemas.Alert{Detector: det, Severity: sev, Tenant: tenant}
	}
	tests := []struct {
		name        string
		alert       schemas.Alert
		criticality string
		want        []string
	}{
		{"catch-all only", alert("volume.spike", "low", "globex"), "", []string{"archive"}},
		{"detector glob", alert("geo.new_country", "low", "globex"), "", []string{"soc-slack", "splunk", "archive"}},
		{"glob does not match other family", alert("geography.x", "low", "globex"), "", []string{"archive"}},
		{"tenant adds a sink, shared sink once", alert("geo.impossible_travel", "medium", "acme"), "", []string{"soc-slack", "splunk", "acme-slack", "archive"}},
		{"severity and criticality both needed", alert("volume.spike", "critical", "globex"), "crown_jewel", []string{"pagerduty", "archive"}},
		{"severity too low for paging", alert("volume.spike", "medium", "globex"), "crown_jewel", []string{"archive"}},
		{"unknown criticality does not page", alert("volume.spike", "critical", "globex"), "", []string{"archive"}},
		{"unknown severity never passes min_severity", alert("volume.spike", "weird", "globex"), "crown_jewel", []string{"archive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := routes.SinksFor(tt.alert, tt.criticality)
			if !slices.Equal(got, tt.want) {
				t.Errorf("SinksFor = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoutesSinksForNoMatchIsNil(t *testing.T) {
	rs := Routes{{Sinks: []string{"x"}, Tenants: []string{"acme"}}}
	if got := rs.SinksFor(schemas.Alert{Tenant: "globex", Severity: "high"}, ""); got != nil {
		t.Fatalf("got %v, want nil", got)
	}
}

func TestRoutesValidateRejectsBadRoutes(t *testing.T) {
	tests := []struct {
		name  string
		route Route
		ok    bool
	}{
		{"fine", Route{Sinks: []string{"slack"}, MinSeverity: "High", Detectors: []string{"geo.*"}}, true},
		{"no sinks", Route{}, false},
		{"unknown sink", Route{Sinks: []string{"nope"}}, false},
		{"bad severity", Route{Sinks: []string{"slack"}, MinSeverity: "urgent"}, false},
		{"bad glob", Route{Sinks: []string{"slack"}, Detectors: []string{"geo.["}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Routes{tt.route}.Validate([]string{"slack"})
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
