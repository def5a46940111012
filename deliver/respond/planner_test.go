package respond_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/googleworkspace"
	"github.com/tokenwatch/tokenwatch/deliver/respond/microsoft"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const (
	client = "1234567890-abc.apps.googleusercontent.com"
	appID  = "4a1c2b3d-1111-2222-3333-444455556666"
)

var t0 = time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC)

func revokers(t *testing.T) map[string]respond.Revoker {
	g, err := googleworkspace.New(googleworkspace.Config{AccessToken: secret.New("tok")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := microsoft.New(microsoft.Config{AccessToken: secret.New("tok")})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]respond.Revoker{g.Source(): g, m.Source(): m}
}

func incident(id, source, integration string, at time.Time, principals ...string) schemas.Incident {
	return schemas.Incident{ID: id, Version: 1, Tenant: "acme", Source: source, IntegrationID: integration, IntegrationIDs: []string{integration},
		Severity: schemas.SeverityHigh, RiskScore: 150, Detectors: []string{"geo.new_country"}, UpdatedAt: schemas.NewTime(at),
		Blast: schemas.BlastRadius{Principals: principals}}
}

func policy(rules ...respond.Rule) respond.Config {
	c := respond.DefaultConfig()
	c.Rules = rules
	c.MaxRevocationsPerHour = 2
	c.AllowList = []string{"crm-core"}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

var revokeHigh = respond.Rule{Name: "revoke-high", Match: respond.Match{MinSeverity: schemas.SeverityHigh, MinRiskScore: 100}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce}

func TestPolicyDecidesPerIncident(t *testing.T) {
	notifyOkta := respond.Rule{Name: "notify-okta", Match: respond.Match{Sources: []string{"okta"}}, Action: schemas.ActionNotify}
	cat, err := inventory.Parse([]byte("integrations:\n  - id: crm-core\n    owner: a@acme.example\n    identities: [{source: microsoft, id: " + appID + "}]\n" +
		"  - id: drive-sync\n    owner: a@acme.example\n    identities: [{source: microsoft, id: " + appID[:35] + "7}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	low := incident("i", "google_workspace", client, t0, "ana@acme.example")
	low.Severity = schemas.SeverityMedium
	for _, tc := range []struct {
		name    string
		inc     schemas.Incident
		want    []string // action/status/target/principal per record
		reqs    []string
		reasonA string
	}{
		{"no rule matches: nothing", low, nil, nil, ""},
		{"google: one revoke per user", incident("i", "google_workspace", client, t0, "bo@acme.example", "ana@acme.example"),
			[]string{"revoke/planned/" + client + "/ana@acme.example", "revoke/planned/" + client + "/bo@acme.example"},
			[]string{"DELETE https://admin.googleapis.com/admin/directory/v1/users/ana@acme.example/tokens/" + client,
				"DELETE https://admin.googleapis.com/admin/directory/v1/users/bo@acme.example/tokens/" + client}, ""},
		{"google without a known user: skipped", incident("i", "google_workspace", client, t0), []string{"revoke/skipped//"}, nil, "no user"},
		{"catalogued id resolves through the catalog", incident("i", "microsoft", "drive-sync", t0),
			[]string{"revoke/planned/" + appID[:35] + "7/"}, []string{"PATCH https://graph.microsoft.com/v1.0/servicePrincipals(appId='" + appID[:35] + "7')"}, ""},
		{"allow-listed: approval instead", incident("i", "microsoft", "crm-core", t0), []string{"request_approval/planned/" + appID + "/"},
			[]string{"PATCH https://graph.microsoft.com/v1.0/servicePrincipals(appId='" + appID + "')"}, "allow_list"},
		{"unresolvable integration: skipped", incident("i", "microsoft", "some-name", t0), []string{"revoke/skipped//"}, nil, "cannot be resolved"},
		{"no revoker for the source: skipped", incident("i", "salesforce", "x", t0), []string{"revoke/skipped//"}, nil, "no revoker"},
		{"first matching rule wins", incident("i", "okta", "0oa1b2c3d4e5f6g7h8i9", t0), []string{"notify/planned//"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := respond.NewPlanner(policy(notifyOkta, revokeHigh), revokers(t), cat)
			got := p.Plan(tc.inc)
			if len(got) != len(tc.want) {
				t.Fatalf("planned %+v, want %v", got, tc.want)
			}
			var reqs []string
			for i, g := range got {
				r := g.Response
				if s := r.Action + "/" + r.Status + "/" + r.Target + "/" + r.Principal; s != tc.want[i] {
					t.Errorf("record %d: %s, want %s", i, s, tc.want[i])
				}
				if r.At.Time != t0 || r.Rule == "" || r.ID == "" {
					t.Errorf("record %d lacks its event time, rule or id: %+v", i, r)
				}
				reqs = append(reqs, r.Requests...)
			}
			if len(reqs) != len(tc.reqs) {
				t.Fatalf("requests %v, want %v", reqs, tc.reqs)
			}
			for i := range reqs {
				if reqs[i] != tc.reqs[i] {
					t.Errorf("request %d: %s, want %s", i, reqs[i], tc.reqs[i])
				}
			}
			if tc.reasonA != "" && (len(got) == 0 || !contains(got[0].Response.Reason, tc.reasonA)) {
				t.Errorf("reason %q does not say %q", got[0].Response.Reason, tc.reasonA)
			}
		})
	}
}

func TestRevocationCapCountsEventTimeAndAsksForApproval(t *testing.T) {
	incs := []schemas.Incident{
		incident("a", "microsoft", appID, t0),
		incident("b", "microsoft", appID[:35]+"1", t0.Add(10*time.Minute)),
		incident("c", "microsoft", appID[:35]+"2", t0.Add(20*time.Minute)),   // third within the hour: approval
		incident("d", "microsoft", appID[:35]+"3", t0.Add(61*time.Minute)),   // "a" left the window
		incident("b", "microsoft", appID[:35]+"1", t0.Add(65*time.Minute)),   // a later version of b: planned again, not counted
		incident("e", "microsoft", appID[:35]+"4", t0.Add(65*time.Minute+1)), // b and d in the window: approval
	}
	incs[4].Version = 2
	want := []string{"revoke", "revoke", "request_approval", "revoke", "request_approval"}
	run := func() []schemas.Response {
		p := respond.NewPlanner(policy(revokeHigh), revokers(t), nil)
		var out []schemas.Response
		for _, inc := range incs {
			for _, pl := range p.Plan(inc) {
				out = append(out, pl.Response)
			}
		}
		return out
	}
	first, second := run(), run()
	if len(first) != len(want) {
		t.Fatalf("%d records, want %d", len(first), len(want))
	}
	for i := range want {
		if first[i].Action != want[i] {
			t.Errorf("incident %s v%d: %s (%s), want %s", first[i].IncidentID, first[i].IncidentVersion, first[i].Action, first[i].Reason, want[i])
		}
		if first[i].ID != second[i].ID || first[i].Action != second[i].Action {
			t.Errorf("replay planned %s/%s, first run %s/%s", second[i].ID, second[i].Action, first[i].ID, first[i].Action)
		}
	}
}

func TestConfigValidationNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		rule respond.Rule
		want string
	}{
		{respond.Rule{Action: "revoke"}, "rules[0].name"},
		{respond.Rule{Name: "x", Action: "delete"}, "rules[0].action"},
		{respond.Rule{Name: "x", Action: "revoke", Mode: "yolo"}, "rules[0].mode"},
		{respond.Rule{Name: "x", Action: "revoke", Match: respond.Match{MinSeverity: "huge"}}, "min_severity"},
	} {
		c := respond.DefaultConfig()
		c.Rules = []respond.Rule{tc.rule}
		if err := c.Validate(); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.rule, err, tc.want)
		}
	}
	c := respond.DefaultConfig()
	c.Rules = []respond.Rule{{Name: "x", Action: "revoke"}}
	if err := c.Validate(); err != nil || c.Rules[0].Mode != schemas.ModeDryRun {
		t.Errorf("mode defaults to dry_run: %v %q", err, c.Rules[0].Mode)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestLaterVersionsPlanOnlyWhatIsNew: a grown blast radius adds the new
// user's revoke under the new version's id; users already planned are not
// planned again.
func TestLaterVersionsPlanOnlyWhatIsNew(t *testing.T) {
	p := respond.NewPlanner(policy(revokeHigh), revokers(t), nil)
	v1 := incident("i", "google_workspace", client, t0, "ana@acme.example")
	v2 := incident("i", "google_workspace", client, t0.Add(time.Minute), "ana@acme.example", "bo@acme.example")
	v2.Version = 2
	a, b := p.Plan(v1), p.Plan(v2)
	if len(a) != 1 || len(b) != 1 || b[0].Response.Principal != "bo@acme.example" || b[0].Response.IncidentVersion != 2 {
		t.Fatalf("v1 %+v\nv2 %+v", a, b)
	}
	if a[0].Response.ID == b[0].Response.ID || b[0].Response.ID != schemas.ResponseID("i", 2, schemas.ActionRevoke, "google_workspace/"+client+"/bo@acme.example") {
		t.Errorf("ids %s %s", a[0].Response.ID, b[0].Response.ID)
	}
}

// TestTimeBoundAccessRevokesExpiredIntegrations: a rule on inventory.expired
// revokes a catalogued integration once its approval lapsed, through the
// catalog's identity for the source and in dry run by default, whatever the
// incident's severity; incidents without the detector are not its business.
func TestTimeBoundAccessRevokesExpiredIntegrations(t *testing.T) {
	cat, err := inventory.Parse([]byte("integrations:\n  - id: survey-pilot\n    owner: pm@acme.example\n    expires_at: 2026-10-08\n" +
		"    identities: [{source: google_workspace, id: " + client + "}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	timeBound := respond.Rule{Name: "time-bound-access", Match: respond.Match{Detectors: []string{"inventory.expired"}}, Action: schemas.ActionRevoke}
	expired := incident("i", "google_workspace", "survey-pilot", t0, "pm@acme.example")
	expired.Severity, expired.RiskScore, expired.Detectors = schemas.SeverityMedium, 100, []string{"inventory.expired"}
	hygiene := expired
	hygiene.Detectors = []string{"inventory.review_overdue", "inventory.unowned"}
	for _, tc := range []struct {
		name string
		inc  schemas.Incident
		want []string
	}{
		{"expired: a dry-run revoke of the catalogued client", expired,
			[]string{"revoke/planned/dry_run/time-bound-access DELETE https://admin.googleapis.com/admin/directory/v1/users/pm@acme.example/tokens/" + client}},
		{"no inventory.expired: no action", hygiene, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, pl := range respond.NewPlanner(policy(timeBound), revokers(t), cat).Plan(tc.inc) {
				r := pl.Response
				got = append(got, r.Action+"/"+r.Status+"/"+r.Mode+"/"+r.Rule+" "+strings.Join(r.Requests, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("planned %q, want %q", got, tc.want)
			}
		})
	}
}
