package schemas_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// OCSFSchemaFile holds the OCSF 1.7.0 Detection Finding attributes tokenwatch
// emits (see its $comment for the ocsf/ocsf-schema files it comes from).
const ocsfSchemaFile = "testdata/ocsf_detection_finding.schema.json"

func compileOCSF(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(ocsfSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(ocsfSchemaFile, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(ocsfSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validateOCSF(t *testing.T, s *jsonschema.Schema, f schemas.OCSFFinding) map[string]any {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Fatalf("not an OCSF Detection Finding: %v\n%s", err, b)
	}
	return v.(map[string]any)
}

func testIncident(version int, status string) schemas.Incident {
	t0 := schemas.UnixMilli(1761531187412)
	return schemas.Incident{ID: "inc1", Version: version, Status: status, Tenant: "acme", IntegrationID: "crm",
		IntegrationIDs: []string{"crm"}, Key: "crm", Severity: schemas.SeverityCritical, RiskScore: 84.6,
		FirstSeen: t0, LastSeen: schemas.UnixMilli(1761531787000), UpdatedAt: schemas.UnixMilli(1761531787000),
		Detectors: []string{"geo.new_country", "volume.spike"}, AlertIDs: []string{"a1", "a2"}, Title: "crm: token theft",
		Summary: "two signals", Timeline: []schemas.Signal{
			{AlertID: "a1", Detector: "geo.new_country", Severity: "high", Time: t0, Risk: 40,
				Observed: json.RawMessage(`{"country": "NG"}`), Baseline: json.RawMessage(`{"countries":["US"]}`)},
			{AlertID: "a2", Detector: "volume.spike", Severity: "medium", Time: t0, Risk: 44.6, Observed: json.RawMessage(`{"bytes":200000}`)},
		}, Blast: schemas.BlastRadius{Apps: []string{"gmail"}, Events: 4, Bytes: 200000}, Owner: "revops@acme.test",
		Next: []string{"revoke the grant"}}
}

func TestAlertsAndIncidentsEncodeAsOCSFDetectionFindings(t *testing.T) {
	s := compileOCSF(t)
	a := schemas.Alert{ID: "a1", Detector: "geo.new_country", Severity: schemas.SeverityHigh, IntegrationID: "crm", Tenant: "acme",
		Title: "new country", Summary: "NG", FirstSeen: schemas.UnixMilli(1761531187412), LastSeen: schemas.UnixMilli(1761531787000),
		EventIDs: []string{"e1", "e2"}, Observed: json.RawMessage(`{"country":"NG"}`), Baseline: json.RawMessage(`{"countries":["US"]}`)}
	v := validateOCSF(t, s, schemas.AlertOCSF(&a))
	fi := v["finding_info"].(map[string]any)
	if v["class_uid"] != 2004.0 || v["type_uid"] != 200401.0 || v["severity_id"] != 4.0 || fi["uid"] != "a1" ||
		fi["analytic"].(map[string]any)["name"] != "geo.new_country" || len(v["evidences"].([]any)) != 2 ||
		v["start_time"] != 1761531187412.0 || v["end_time"] != 1761531787000.0 {
		t.Fatalf("alert finding: %v", v)
	}
	aa := v["anomaly_analyses"].([]any)[0].(map[string]any)
	if aa["anomalies"].([]any)[0].(map[string]any)["observations"].([]any)[0].(map[string]any)["value"] != `{"country":"NG"}` ||
		aa["baselines"].([]any)[0].(map[string]any)["observations"].([]any)[0].(map[string]any)["value"] != `{"countries":["US"]}` {
		t.Fatalf("anomaly analysis: %v", aa)
	}
	// A bare alert (no evidence, nothing observed) is still valid.
	validateOCSF(t, s, schemas.AlertOCSF(&schemas.Alert{ID: "a0", Detector: "x.y"}))

	for _, tc := range []struct {
		version           int
		status            string
		activity, status_ float64
	}{
		{1, schemas.IncidentOpen, 1, 1},
		{2, schemas.IncidentOpen, 2, 2},
		{3, schemas.IncidentAcknowledged, 2, 2},
		{4, schemas.IncidentResolved, 3, 4},
		{5, schemas.IncidentSuppressed, 3, 3},
	} {
		inc := testIncident(tc.version, tc.status)
		v := validateOCSF(t, s, schemas.IncidentOCSF(&inc))
		if v["activity_id"] != tc.activity || v["status_id"] != tc.status_ || v["type_uid"] != 200400+tc.activity {
			t.Errorf("v%d %s: activity %v status %v type %v", tc.version, tc.status, v["activity_id"], v["status_id"], v["type_uid"])
		}
		if v["risk_score"] != 85.0 || v["severity_id"] != 5.0 || len(v["evidences"].([]any)) != 2 || len(v["anomaly_analyses"].([]any)) != 2 {
			t.Errorf("v%d: %v", tc.version, v)
		}
		if u := v["unmapped"].(map[string]any); u["version"] != float64(tc.version) {
			t.Errorf("unmapped.version %v", u["version"])
		}
	}
}

// TestOCSFSchemaRejectsWhatOCSFRejects: the schema file is not a rubber stamp.
func TestOCSFSchemaRejectsWhatOCSFRejects(t *testing.T) {
	s := compileOCSF(t)
	inc := testIncident(1, schemas.IncidentOpen)
	good, _ := json.Marshal(schemas.IncidentOCSF(&inc))
	for name, mutate := range map[string]func(m map[string]any){
		"no finding_info.uid":  func(m map[string]any) { delete(m["finding_info"].(map[string]any), "uid") },
		"wrong class":          func(m map[string]any) { m["class_uid"] = 2001 },
		"time as a string":     func(m map[string]any) { m["time"] = "2025-10-27T02:13:07Z" },
		"no metadata.product":  func(m map[string]any) { delete(m["metadata"].(map[string]any), "product") },
		"an unknown attribute": func(m map[string]any) { m["risk"] = 1 },
		"analytic without type": func(m map[string]any) {
			delete(m["finding_info"].(map[string]any)["analytic"].(map[string]any), "type_id")
		},
	} {
		var m map[string]any
		json.Unmarshal(good, &m)
		mutate(m)
		if s.Validate(m) == nil {
			t.Errorf("%s: validated", name)
		}
	}
}
