package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Response actions: what the policy decided to do about an incident.
const (
	ActionNotify          = "notify"
	ActionRequestApproval = "request_approval"
	ActionRevoke          = "revoke"
)

// Response modes. dry_run is the default: the action is planned and
// recorded, its requests are listed, nothing is sent.
const (
	ModeDryRun  = "dry_run"
	ModeEnforce = "enforce"
)

// Response statuses, the life of one action on one target.
const (
	ResponsePlanned     = "planned"
	ResponseExecuted    = "executed"
	ResponseFailed      = "failed"
	ResponseAlreadyDone = "already_done"
	// ResponseSkipped records that a rule matched but no action could be
	// taken: the integration has no vendor identity to act on.
	ResponseSkipped = "skipped"
	// ResponseApproved and ResponseDenied are a human's answer to a
	// request_approval (tokenwatch respond approve|deny); an approval is
	// followed by the revoke it approves, under the revoke's own id.
	ResponseApproved = "approved"
	ResponseDenied   = "denied"
)

// Response is one record of the audit trail of the respond stage: one action
// on one target (a vendor identity, and for Google Workspace the user whose
// grant is revoked) for one incident version. Its ID is a pure function of
// the incident id, version, action and target, so a replay plans the same
// ids and a restarted executor recognises an action it already carried out.
type Response struct {
	ID              string `json:"id"`
	IncidentID      string `json:"incident_id"`
	IncidentVersion int    `json:"incident_version"`
	Tenant          string `json:"tenant"`
	Source          string `json:"source"`
	IntegrationID   string `json:"integration_id"`
	// Target is the vendor's id of what is acted on (OAuth client id,
	// service principal, Okta app id, PAT id); "" when it could not be
	// resolved (status skipped).
	Target    string `json:"target"`
	Principal string `json:"principal,omitempty"`
	Action    string `json:"action"`
	Mode      string `json:"mode"`
	Status    string `json:"status"`
	// Rule is the name of the policy rule that chose the action.
	Rule string `json:"rule"`
	// Reason says why the action is what it is (a guard rail that turned a
	// revoke into an approval request, why it was skipped).
	Reason string `json:"reason,omitempty"`
	// Requests are the vendor API calls, "METHOD URL" each.
	Requests []string `json:"requests,omitempty"`
	Error    string   `json:"error,omitempty"`
	// Actor is who approved or denied (approved and denied steps only).
	Actor string `json:"actor,omitempty"`
	// At is the event time of the incident version the action answers: the
	// policy's only clock.
	At Time `json:"at"`
	// RecordedAt is the wall clock of this record (operational only).
	RecordedAt Time `json:"recorded_at"`
}

// ResponseID is the stable id of action on target for an incident version.
func ResponseID(incidentID string, version int, action, target string) string {
	h := sha256.Sum256([]byte("response\x00" + incidentID + "\x00" + strconv.Itoa(version) + "\x00" + action + "\x00" + target))
	return hex.EncodeToString(h[:16])
}
