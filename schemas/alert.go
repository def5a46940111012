package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Severity orders alerts for routing and paging.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Rank returns 0 (info) … 4 (critical), -1 for an unknown severity.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 0
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return -1
}

// ParseSeverity validates a severity name.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(s))
	if v.Rank() < 0 {
		return "", fmt.Errorf("unknown severity %q (want info, low, medium, high or critical)", s)
	}
	return v, nil
}

// Alert is an explained detection: what was observed, against which baseline,
// and the events that prove it. Its ID is a pure function of the detector, the
// tenant, the integration and the finding's key, so replaying the same input
// yields the same ids and sinks can deduplicate on them.
type Alert struct {
	ID            string          `json:"id"`
	Detector      string          `json:"detector"`
	Severity      Severity        `json:"severity"`
	IntegrationID string          `json:"integration_id"`
	Tenant        string          `json:"tenant"`
	Title         string          `json:"title"`
	Summary       string          `json:"summary"`
	FirstSeen     Time            `json:"first_seen"`
	LastSeen      Time            `json:"last_seen"`
	EventIDs      []string        `json:"event_ids"`
	Observed      json.RawMessage `json:"observed,omitempty"`
	Baseline      json.RawMessage `json:"baseline,omitempty"`
	// Query is the ClickHouse pivot to the evidence (EvidenceQuery).
	Query string `json:"query,omitempty"`
	// Criticality is the integration's, from the catalog ("" when not
	// catalogued): routing rules send by it.
	Criticality string `json:"criticality,omitempty"`
	// Owner and Purpose are the catalog's for the integration, so every sink
	// can name who to ask without knowing the catalog.
	Owner   string `json:"owner,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	// Backfill is true when the event that raised the alert was a backfilled
	// one (schemas.Event.Backfill): old news arriving late, not live activity.
	Backfill bool `json:"backfill,omitempty"`
	// Techniques are the detector's MITRE ATT&CK technique ids and Status
	// its maturity (experimental, test, stable): the detector's metadata,
	// copied so a sink or a query need not know the catalogue.
	Techniques []string `json:"techniques,omitempty"`
	Status     string   `json:"status,omitempty"`
	// Runbook is the detector's: what to check, how to contain.
	Runbook string `json:"runbook,omitempty"`
	// Shadow is true when the detector runs in shadow mode (config
	// `shadow: true`): the alert is recorded (ClickHouse, archive sinks) to
	// measure the detector on live data, but never pages and never counts
	// towards an incident. The id does not depend on it, so promoting a
	// detector keeps its alert ids.
	Shadow bool `json:"shadow,omitempty"`
}

// AlertID derives the deterministic alert id.
func AlertID(detector, tenant, integrationID, key string) string {
	h := sha256.New()
	for _, p := range []string{detector, tenant, integrationID, key} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// AdjustSeverity weighs a detector's severity by how much the integration
// matters (inventory criticality): a critical integration raises every alert
// one level, a high one raises medium and above, a low one lowers by one
// (never below low). Unknown or medium criticality leaves it as it is.
func AdjustSeverity(s Severity, criticality string) Severity {
	r := s.Rank()
	if r < 0 {
		return s
	}
	switch criticality {
	case "critical":
		r++
	case "high":
		if r >= SeverityMedium.Rank() {
			r++
		}
	case "low":
		if r > SeverityLow.Rank() {
			r--
		}
	}
	return [...]Severity{SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}[min(r, 4)]
}
