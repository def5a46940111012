package schemas_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("event.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEventJSONMatchesTheSchemaFile(t *testing.T) {
	s := compile(t)
	ev := schemas.Event{EventID: "e1", Source: "google_workspace", Tenant: "C1",
		Time:        schemas.NewTime(time.Date(2026, 10, 27, 2, 13, 7, 412e6, time.UTC)),
		Integration: schemas.Integration{ID: "c1", SourceAppID: "c1", Name: "CRM"},
		Credential:  schemas.Credential{Type: "oauth_token", ID: "g-1"}, Principal: schemas.Principal{ID: "u", Type: "user"},
		Action: schemas.Action{Name: "activity", Category: "access"}, TargetApp: "gmail", Scopes: []string{"s"},
		Network: schemas.Network{IP: "102.89.0.1"}, Outcome: "success", Bytes: 10,
		Geo: &schemas.Geo{Country: "NG", City: "Lagos", Lat: 6.5, Lon: 3.4, ASN: 29465, ASOrg: "MTN"}, Raw: json.RawMessage(`{"a":1}`)}
	issued := schemas.NewTime(time.Date(2026, 10, 26, 2, 0, 0, 0, time.UTC))
	ev.TokenIssuedAt, ev.Impersonation, ev.Delegation = &issued, true, schemas.DelegationAppOnly
	ev.IngestedAt, ev.Backfill = &issued, true
	ev.RequestedScopes, ev.DirectoryRoles = []string{"okta.users.manage"}, []string{"62e90394-69f5-4237-9190-012177145e10"}
	ev.HTTP = &schemas.HTTP{Method: "GET", Route: "/repos/{owner}/{repo}", StatusCode: 404}
	ev.Credential.Name, ev.Credential.Issuer = "ci deploy", "https://sts.windows.net/t1/"
	ev.Network.IPChain, ev.Network.Proxy, ev.Network.ASN, ev.Network.ASOrg = []string{"102.89.0.1"}, true, 29465, "MTN"
	b, _ := json.Marshal(ev)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := s.Validate(inst); err != nil {
		t.Fatalf("event does not match the schema: %v\n%s", err, b)
	}
	// Every JSON field of the Go type is declared in the schema.
	raw, _ := os.ReadFile("event.schema.json")
	var doc struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	json.Unmarshal(raw, &doc)
	rt := reflect.TypeOf(schemas.Event{})
	for i := 0; i < rt.NumField(); i++ {
		name := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if _, ok := doc.Properties[name]; !ok {
			t.Errorf("field %q missing from event.schema.json", name)
		}
	}
	// And the schema rejects what the type would never produce.
	bad := strings.Replace(string(b), `"access"`, `"teleport"`, 1)
	inst, _ = jsonschema.UnmarshalJSON(strings.NewReader(bad))
	if err := s.Validate(inst); err == nil {
		t.Error("schema accepted an unknown action category")
	}
}

func TestAlertIDIsDeterministicAndSeparatesFields(t *testing.T) {
	a := schemas.AlertID("geo.new_country", "t", "app", "NG")
	if a != schemas.AlertID("geo.new_country", "t", "app", "NG") {
		t.Fatal("not deterministic")
	}
	if a == schemas.AlertID("geo.new_country", "t", "appN", "G") {
		t.Fatal("field boundaries not separated")
	}
}

func TestTimeRoundTripsAtMilliseconds(t *testing.T) {
	in := schemas.NewTime(time.Date(2026, 10, 27, 2, 13, 7, 412999999, time.FixedZone("x", 3600)))
	b, _ := json.Marshal(in)
	if string(b) != `"2026-10-27T01:13:07.412Z"` {
		t.Fatalf("marshal: %s", b)
	}
	var out schemas.Time
	if err := json.Unmarshal(b, &out); err != nil || !out.Equal(in.Time) {
		t.Fatalf("round trip: %v %v", out, err)
	}
}

func TestMigrationsAreOrderedAndSplit(t *testing.T) {
	ms, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations", len(ms))
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("migration %d out of order", m.Version)
		}
		if len(m.Statements) == 0 {
			t.Errorf("migration %d has no statements", m.Version)
		}
		for _, st := range m.Statements {
			if strings.HasSuffix(st, ";") || strings.HasPrefix(strings.TrimSpace(st), "--") {
				t.Errorf("migration %d statement not cleanly split: %q", m.Version, st)
			}
		}
	}
}

func TestAdjustSeverityByCriticality(t *testing.T) {
	tests := []struct {
		in   schemas.Severity
		crit string
		want schemas.Severity
	}{
		{"high", "critical", "critical"}, {"critical", "critical", "critical"}, {"low", "critical", "medium"},
		{"medium", "high", "high"}, {"low", "high", "low"}, {"high", "low", "medium"}, {"low", "low", "low"},
		{"high", "", "high"}, {"high", "medium", "high"}, {"bogus", "critical", "bogus"},
	}
	for _, tc := range tests {
		if got := schemas.AdjustSeverity(tc.in, tc.crit); got != tc.want {
			t.Errorf("AdjustSeverity(%s, %q) = %s, want %s", tc.in, tc.crit, got, tc.want)
		}
	}
}

func TestEvidenceQueryQuotesVendorIDs(t *testing.T) {
	q, n := schemas.EvidenceQuery("events", []string{"a", "it's"}, 0)
	if n != 2 || q != `SELECT * FROM events WHERE event_id IN ('a', 'it\'s') ORDER BY time_ms, event_id` {
		t.Fatalf("%d %s", n, q)
	}
}

// TestClusterLayoutHasEverySingleServerObject: an object a single server
// gets from schemas/migrations (a table, view or materialized view that
// writers fill or analysts query) exists on the cluster layout too, under
// the same name, so docs and queries hold on both.
func TestClusterLayoutHasEverySingleServerObject(t *testing.T) {
	created := regexp.MustCompile(`(?i)CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS (\w+)`)
	names := func(migs []schemas.Migration) map[string]bool {
		out := map[string]bool{}
		for _, m := range migs {
			for _, st := range m.Statements {
				for _, g := range created.FindAllStringSubmatch(st, -1) {
					out[g[1]] = true
				}
			}
		}
		return out
	}
	single, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := schemas.ClusterMigrations("c")
	if err != nil {
		t.Fatal(err)
	}
	onCluster := names(cluster)
	for name := range names(single) {
		if !onCluster[name] {
			t.Errorf("%s is created by schemas/migrations but not by schemas/cluster", name)
		}
	}
}
