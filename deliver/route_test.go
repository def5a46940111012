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

func TestAlertsGoWhereTheSinkOrARouteAsksAndIncidentsEverywhereRouted(t *testing.T) {
	yes, no := true, false
	a := schemas.Alert{Detector: "geo.new_country", Severity: "high", Tenant: "acme"}
	inc := schemas.Incident{Detectors: []string{"volume.spike", "geo.new_country"}, Severity: "critical", Tenant: "acme"}
	// No routes: the sink's default decides alerts; incidents always go.
	if !Routes(nil).AlertTo("soc", a, true) || Routes(nil).AlertTo("pager", a, false) || !Routes(nil).IncidentTo("pager", inc) {
		t.Fatal("without routes: alerts by the sink default, incidents to all")
	}
	rs := Routes{
		{Sinks: []string{"pager"}, MinSeverity: "high"},                              // incidents only (pager's default: no alerts)
		{Sinks: []string{"pager"}, Detectors: []string{"lifecycle.*"}, Alerts: &yes}, // and use-after-revoke alerts
		{Sinks: []string{"soc"}, Detectors: []string{"geo.*"}},                       // alerts and incidents
		{Sinks: []string{"archive"}, Incidents: &no},                                 // alerts only
		{Sinks: []string{"quiet"}, Alerts: &no},                                      // never alerts
	}
	for _, tt := range []struct {
		sink        string
		def         bool
		alert       schemas.Alert
		wantAlert   bool
		wantIncdent bool
	}{
		{"pager", false, a, false, true},
		{"pager", false, schemas.Alert{Detector: "lifecycle.use_after_revoke", Severity: "low"}, true, true},
		{"soc", true, a, true, true},
		{"soc", true, schemas.Alert{Detector: "volume.spike"}, false, true},
		{"archive", true, a, true, false},
		{"quiet", true, a, false, true},
		{"unrouted", true, a, false, false},
	} {
		if got := rs.AlertTo(tt.sink, tt.alert, tt.def); got != tt.wantAlert {
			t.Errorf("%s: AlertTo(%s) = %v", tt.sink, tt.alert.Detector, got)
		}
		if got := rs.IncidentTo(tt.sink, inc); got != tt.wantIncdent {
			t.Errorf("%s: IncidentTo = %v", tt.sink, got)
		}
	}
	// min_severity and detector globs hold for incidents too.
	low := inc
	low.Severity = "medium"
	if (Routes{{Sinks: []string{"p"}, MinSeverity: "high"}}).IncidentTo("p", low) {
		t.Error("a medium incident passed min_severity high")
	}
	if (Routes{{Sinks: []string{"p"}, Detectors: []string{"chain.*"}}}).IncidentTo("p", inc) {
		t.Error("detector glob matched none of the incident's detectors")
	}
}
