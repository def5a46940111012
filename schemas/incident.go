package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// TopicIncidents carries every version of every incident, keyed by incident
// id: consumers keep the highest version of each.
const TopicIncidents = "tokenwatch.incidents"

// Incident statuses. An incident is open while signals keep arriving and
// resolved once it has been quiet (event time) for the correlator's quiet
// period; acknowledged and suppressed are analysts' decisions.
const (
	IncidentOpen         = "open"
	IncidentAcknowledged = "acknowledged"
	IncidentResolved     = "resolved"
	IncidentSuppressed   = "suppressed"
)

// Incident is one compromised (or suspect) integration, or one linked group
// of integrations (a source IP acting as several), told as a story: the
// signals that raised its risk over the threshold, what it touched, who owns
// it and what to do. Every change is a new Version of the same ID; the ID is
// a pure function of the tenant, the correlation key and the first signal,
// so a replay gives the same ids and versions.
type Incident struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Status  string `json:"status"`
	Tenant  string `json:"tenant"`
	// IntegrationID is the integration the incident is about; for a linked
	// group (Key "ip:…") the first of IntegrationIDs.
	IntegrationID  string   `json:"integration_id"`
	IntegrationIDs []string `json:"integration_ids"`
	// Key is what the signals were correlated on: the integration id, or
	// "ip:<address>" for one source IP acting as several integrations.
	Key       string   `json:"key"`
	Severity  Severity `json:"severity"`
	RiskScore float64  `json:"risk_score"`
	FirstSeen Time     `json:"first_seen"`
	LastSeen  Time     `json:"last_seen"`
	// UpdatedAt is the event time of the change this version records.
	UpdatedAt Time     `json:"updated_at"`
	Detectors []string `json:"detectors"`
	// Techniques are the MITRE ATT&CK technique ids of its signals'
	// detectors, sorted and each once.
	Techniques []string `json:"techniques,omitempty"`
	AlertIDs   []string `json:"alert_ids"`
	Title      string   `json:"title"`
	Summary    string   `json:"summary"`
	// Timeline is the signals, oldest first.
	Timeline []Signal    `json:"timeline"`
	Blast    BlastRadius `json:"blast_radius"`
	// Owner, Purpose, Criticality come from the catalog ("" when the
	// integration is not catalogued — itself a risk factor).
	Owner       string `json:"owner,omitempty"`
	Purpose     string `json:"purpose,omitempty"`
	Criticality string `json:"criticality,omitempty"`
	Source      string `json:"source,omitempty"`
	// Next is what to do, in order: the revocation path for the source, the
	// pivot queries.
	Next []string `json:"next,omitempty"`
}

// Signal is one alert as it counts in an incident.
type Signal struct {
	AlertID  string   `json:"alert_id"`
	Detector string   `json:"detector"`
	Severity Severity `json:"severity"`
	Time     Time     `json:"time"` // the alert's first evidence
	Title    string   `json:"title"`
	// Risk is the contribution the signal added when it arrived.
	Risk float64 `json:"risk"`
	// Techniques and Runbook are the detector's metadata, as on the alert.
	Techniques []string        `json:"techniques,omitempty"`
	Runbook    string          `json:"runbook,omitempty"`
	Observed   json.RawMessage `json:"observed,omitempty"`
	Baseline   json.RawMessage `json:"baseline,omitempty"`
	Query      string          `json:"query,omitempty"`
}

// BlastRadius is what the integration touched while the incident was open:
// bounded samples and totals.
type BlastRadius struct {
	Apps       []string `json:"apps,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Principals []string `json:"principals,omitempty"`
	IPs        []string `json:"ips,omitempty"`
	Events     int64    `json:"events"`
	Bytes      int64    `json:"bytes"`
	Records    int64    `json:"records"`
}

// IncidentID is the stable id of the incident that tenant's key opened with
// the alert firstAlert.
func IncidentID(tenant, key, firstAlert string) string {
	h := sha256.Sum256([]byte("incident\x00" + tenant + "\x00" + key + "\x00" + firstAlert))
	return hex.EncodeToString(h[:16])
}

// TopicDecisions is compacted: the latest analyst decision per incident id
// (acknowledge, resolve, suppress), which the correlator honours.
const TopicDecisions = "tokenwatch.incident_decisions"

// Decision actions.
const (
	DecisionAcknowledge = "acknowledge"
	DecisionResolve     = "resolve"
	DecisionSuppress    = "suppress"
)

// Decision is an analyst's word on an incident. A suppression covers the
// incident's key (the integration, or the source-IP group) until Until:
// signals before then (event time) open no incident for that key.
type Decision struct {
	IncidentID    string `json:"incident_id"`
	Tenant        string `json:"tenant"`
	Key           string `json:"key"`
	IntegrationID string `json:"integration_id"`
	Action        string `json:"action"`
	Reason        string `json:"reason"`
	Actor         string `json:"actor"`
	DecidedAt     Time   `json:"decided_at"` // wall clock: when the analyst decided
	Until         *Time  `json:"until,omitempty"`
}

// Validate checks what the correlator relies on: an incident, a known action
// and, for a suppression, its key and end.
func (d Decision) Validate() error {
	switch {
	case d.IncidentID == "":
		return errors.New("decision: incident_id is required")
	case d.Action != DecisionAcknowledge && d.Action != DecisionResolve && d.Action != DecisionSuppress:
		return fmt.Errorf("decision on %s: action %q: must be %s, %s or %s", d.IncidentID, d.Action, DecisionAcknowledge, DecisionResolve, DecisionSuppress)
	case d.Action == DecisionSuppress && (d.Key == "" || d.Until == nil):
		return fmt.Errorf("decision on %s: a suppression needs key and until", d.IncidentID)
	}
	return nil
}
