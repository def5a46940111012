package delivertest

import (
	"encoding/json"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Incident is a two-signal incident on Alert's integration at the given
// version and status.
func Incident(version int, status string) schemas.Incident {
	a := Alert()
	return schemas.Incident{ID: "5b1e0c9a7d3f4e2a8c6b0d1f3e5a7c9b", Version: version, Status: status, Tenant: a.Tenant,
		IntegrationID: a.IntegrationID, IntegrationIDs: []string{a.IntegrationID}, Key: a.IntegrationID,
		Severity: schemas.SeverityCritical, RiskScore: 84.5, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, UpdatedAt: a.LastSeen,
		Detectors: []string{a.Detector, "volume.spike"}, AlertIDs: []string{a.ID, "7c2d"}, Title: "OAuth client used from BR, with a Drive export burst",
		Summary: "Two signals in 10 minutes on a vendor OAuth client.",
		Timeline: []schemas.Signal{
			{AlertID: a.ID, Detector: a.Detector, Severity: a.Severity, Time: a.FirstSeen, Title: a.Title, Risk: 40, Observed: a.Observed, Baseline: a.Baseline},
			{AlertID: "7c2d", Detector: "volume.spike", Severity: schemas.SeverityMedium, Time: a.LastSeen, Title: "Drive export burst", Risk: 44.5,
				Observed: json.RawMessage(`{"bytes":52000000}`), Baseline: json.RawMessage(`{"p99_bytes":1200000}`)},
		},
		Blast: schemas.BlastRadius{Apps: []string{"drive"}, Principals: []string{"cfo@acme.example"}, Events: 412, Bytes: 52000000},
		Owner: "data-platform@acme.example", Source: "google_workspace", Next: []string{"Revoke the OAuth grant in the Google Admin console"}}
}
