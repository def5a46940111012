package schemas

import (
	"bytes"
	"encoding/json"
	"math"
	"runtime/debug"
	"strings"
)

// OCSF Detection Finding (class 2004, category 2 Findings) encodings of
// alerts and incidents (ocsf.md), as of OCSF 1.7.0: the attributes follow
// ocsf/ocsf-schema events/findings/detection_finding.json, finding.json,
// base_event.json and the objects it names (finding_info, analytic,
// evidences, anomaly_analysis, anomaly, baseline, observation,
// analysis_target, metadata, product). testdata/ocsf_detection_finding.schema.json
// holds the attributes used, with their types and requirements, and the
// tests validate against it.
const (
	OCSFVersion          = "1.7.0"
	OCSFClassUID         = 2004
	OCSFCategoryUID      = 2
	OCSFActivityCreate   = 1
	OCSFActivityUpdate   = 2
	OCSFActivityClose    = 3
	ocsfClassName        = "Detection Finding"
	ocsfCategoryName     = "Findings"
	ocsfProductName      = "tokenwatch"
	ocsfAnalyticRule     = 1
	ocsfAnalyticBehavior = 2
)

// OCSFProductVersion is metadata.product.version: the main module's version
// from the build info, "dev" in development builds.
var OCSFProductVersion = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}()

// OCSFFinding is one OCSF Detection Finding event.
type OCSFFinding struct {
	ActivityID      int                   `json:"activity_id"`
	ActivityName    string                `json:"activity_name"`
	CategoryUID     int                   `json:"category_uid"`
	CategoryName    string                `json:"category_name"`
	ClassUID        int                   `json:"class_uid"`
	ClassName       string                `json:"class_name"`
	TypeUID         int                   `json:"type_uid"`
	TypeName        string                `json:"type_name"`
	SeverityID      int                   `json:"severity_id"`
	Severity        string                `json:"severity"`
	StatusID        int                   `json:"status_id"`
	Status          string                `json:"status"`
	Time            int64                 `json:"time"`
	StartTime       int64                 `json:"start_time,omitempty"`
	EndTime         int64                 `json:"end_time,omitempty"`
	Message         string                `json:"message,omitempty"`
	RiskScore       *int                  `json:"risk_score,omitempty"`
	IsAlert         bool                  `json:"is_alert"`
	FindingInfo     OCSFFindingInfo       `json:"finding_info"`
	Evidences       []OCSFEvidence        `json:"evidences,omitempty"`
	AnomalyAnalyses []OCSFAnomalyAnalysis `json:"anomaly_analyses,omitempty"`
	Metadata        OCSFMetadata          `json:"metadata"`
	// Unmapped holds tokenwatch fields OCSF has no attribute for.
	Unmapped map[string]any `json:"unmapped,omitempty"`
}

// OCSFFindingInfo is finding_info.
type OCSFFindingInfo struct {
	UID              string         `json:"uid"`
	Title            string         `json:"title,omitempty"`
	Desc             string         `json:"desc,omitempty"`
	Types            []string       `json:"types,omitempty"`
	Analytic         OCSFAnalytic   `json:"analytic"`
	RelatedAnalytics []OCSFAnalytic `json:"related_analytics,omitempty"`
	FirstSeenTime    int64          `json:"first_seen_time,omitempty"`
	LastSeenTime     int64          `json:"last_seen_time,omitempty"`
	ModifiedTime     int64          `json:"modified_time,omitempty"`
}

// OCSFAnalytic is an analytic: the detector (or, for incidents, the
// correlation) that produced the finding.
type OCSFAnalytic struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
}

// OCSFEvidence is one evidences entry: the integration as the actor, and
// the event or alert it points at as data.
type OCSFEvidence struct {
	UID   string         `json:"uid,omitempty"`
	Name  string         `json:"name,omitempty"`
	Actor *OCSFActor     `json:"actor,omitempty"`
	Data  map[string]any `json:"data,omitempty"`
}

// OCSFActor is the subset of the actor object used: the application.
type OCSFActor struct {
	AppUID  string `json:"app_uid,omitempty"`
	AppName string `json:"app_name,omitempty"`
}

// OCSFAnomalyAnalysis is our observed-vs-baseline.
type OCSFAnomalyAnalysis struct {
	AnalysisTargets []OCSFAnalysisTarget `json:"analysis_targets"`
	Anomalies       []OCSFPattern        `json:"anomalies"`
	Baselines       []OCSFPattern        `json:"baselines,omitempty"`
}

// OCSFAnalysisTarget names what was analysed: the integration.
type OCSFAnalysisTarget struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// OCSFPattern is an anomaly or a baseline.
type OCSFPattern struct {
	ObservationParameter string            `json:"observation_parameter"`
	ObservationType      string            `json:"observation_type,omitempty"`
	Observations         []OCSFObservation `json:"observations"`
}

// OCSFObservation is one observed value (our observed or baseline JSON,
// compacted, as text: observation.value is a string).
type OCSFObservation struct {
	Value string `json:"value"`
	Count int    `json:"count,omitempty"`
}

// OCSFMetadata is metadata.
type OCSFMetadata struct {
	Product OCSFProduct `json:"product"`
	Version string      `json:"version"`
	UID     string      `json:"uid,omitempty"`
	Labels  []string    `json:"labels,omitempty"`
}

// OCSFProduct is metadata.product.
type OCSFProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name,omitempty"`
	Version    string `json:"version,omitempty"`
}

// OCSFSeverityID maps a severity: info 1, low 2, medium 3, high 4,
// critical 5, unknown 0.
func OCSFSeverityID(s Severity) (int, string) {
	switch s {
	case SeverityInfo:
		return 1, "Informational"
	case SeverityLow:
		return 2, "Low"
	case SeverityMedium:
		return 3, "Medium"
	case SeverityHigh:
		return 4, "High"
	case SeverityCritical:
		return 5, "Critical"
	}
	return 0, "Unknown"
}

var ocsfActivityNames = map[int]string{OCSFActivityCreate: "Create", OCSFActivityUpdate: "Update", OCSFActivityClose: "Close"}

func ocsfBase(activity int, sev Severity, at Time, meta string) OCSFFinding {
	sevID, sevName := OCSFSeverityID(sev)
	act := ocsfActivityNames[activity]
	return OCSFFinding{
		ActivityID: activity, ActivityName: act,
		CategoryUID: OCSFCategoryUID, CategoryName: ocsfCategoryName,
		ClassUID: OCSFClassUID, ClassName: ocsfClassName,
		TypeUID: OCSFClassUID*100 + activity, TypeName: ocsfClassName + ": " + act,
		SeverityID: sevID, Severity: sevName,
		Time:     ms(at),
		Metadata: OCSFMetadata{Product: OCSFProduct{Name: ocsfProductName, VendorName: ocsfProductName, Version: OCSFProductVersion}, Version: OCSFVersion, UID: meta},
	}
}

func ms(t Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// compact renders raw JSON as one line of text ("" when empty).
func compact(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// anomalyAnalysis is observed against baseline for one detector on one
// integration; nil when nothing was observed.
func anomalyAnalysis(integration, detector string, observed, baseline json.RawMessage) *OCSFAnomalyAnalysis {
	o := compact(observed)
	if o == "" {
		return nil
	}
	typ := "Behavioral Analysis"
	family, _, _ := strings.Cut(detector, ".")
	switch family {
	case "volume":
		typ = "Volume Analysis"
	case "geo", "network":
		typ = "Association Analysis"
	case "time":
		typ = "Time Pattern Analysis"
	}
	aa := &OCSFAnomalyAnalysis{
		AnalysisTargets: []OCSFAnalysisTarget{{Name: integration, Type: "Integration"}},
		Anomalies:       []OCSFPattern{{ObservationParameter: detector, ObservationType: typ, Observations: []OCSFObservation{{Value: o}}}},
	}
	if b := compact(baseline); b != "" {
		aa.Baselines = []OCSFPattern{{ObservationParameter: detector, ObservationType: typ, Observations: []OCSFObservation{{Value: b}}}}
	}
	return aa
}

func detectorAnalytic(detector string) OCSFAnalytic {
	return OCSFAnalytic{UID: detector, Name: detector, Type: "Behavioral", TypeID: ocsfAnalyticBehavior}
}

// AlertOCSF encodes an alert as a Detection Finding with activity Create
// and status New: alerts do not change once raised. time is the alert's
// last_seen (event time, stable under replay).
func AlertOCSF(a *Alert) OCSFFinding {
	f := ocsfBase(OCSFActivityCreate, a.Severity, a.LastSeen, a.ID)
	f.StatusID, f.Status = 1, "New"
	f.StartTime, f.EndTime = ms(a.FirstSeen), ms(a.LastSeen)
	f.Message = a.Summary
	f.IsAlert = true
	f.FindingInfo = OCSFFindingInfo{UID: a.ID, Title: a.Title, Desc: a.Summary, Types: []string{"tokenwatch alert", a.Detector},
		Analytic: detectorAnalytic(a.Detector), FirstSeenTime: ms(a.FirstSeen), LastSeenTime: ms(a.LastSeen)}
	actor := &OCSFActor{AppUID: a.IntegrationID}
	for _, id := range a.EventIDs {
		f.Evidences = append(f.Evidences, OCSFEvidence{UID: id, Name: "tokenwatch event", Actor: actor,
			Data: map[string]any{"event_id": id}})
	}
	if aa := anomalyAnalysis(a.IntegrationID, a.Detector, a.Observed, a.Baseline); aa != nil {
		f.AnomalyAnalyses = []OCSFAnomalyAnalysis{*aa}
	}
	f.Unmapped = unmapped(map[string]any{"tenant": a.Tenant, "integration_id": a.IntegrationID, "query": a.Query,
		"owner": a.Owner, "purpose": a.Purpose, "criticality": a.Criticality})
	return f
}

// IncidentOCSF encodes one incident version as a Detection Finding: activity
// Create for version 1, Close once resolved or suppressed, Update otherwise;
// status New (open, version 1), In Progress (open later, acknowledged),
// Suppressed, Resolved. risk_score is the incident's, rounded; the analytic
// is tokenwatch's correlation and each contributing detector is a related
// analytic; each signal is an evidence and an anomaly analysis.
func IncidentOCSF(inc *Incident) OCSFFinding {
	activity := OCSFActivityUpdate
	switch {
	case inc.Status == IncidentResolved || inc.Status == IncidentSuppressed:
		activity = OCSFActivityClose
	case inc.Version <= 1:
		activity = OCSFActivityCreate
	}
	f := ocsfBase(activity, inc.Severity, inc.UpdatedAt, inc.ID+"/v"+itoa(inc.Version))
	switch inc.Status {
	case IncidentResolved:
		f.StatusID, f.Status = 4, "Resolved"
	case IncidentSuppressed:
		f.StatusID, f.Status = 3, "Suppressed"
	case IncidentAcknowledged:
		f.StatusID, f.Status = 2, "In Progress"
	default:
		f.StatusID, f.Status = 1, "New"
		if inc.Version > 1 {
			f.StatusID, f.Status = 2, "In Progress"
		}
	}
	f.StartTime, f.EndTime = ms(inc.FirstSeen), ms(inc.LastSeen)
	f.Message = inc.Summary
	f.IsAlert = activity != OCSFActivityClose
	score := int(math.Round(inc.RiskScore))
	f.RiskScore = &score
	kind := "integration"
	if strings.HasPrefix(inc.Key, "ip:") {
		kind = "linked integrations"
	}
	f.FindingInfo = OCSFFindingInfo{UID: inc.ID, Title: inc.Title, Desc: inc.Summary, Types: []string{"tokenwatch incident", kind},
		Analytic:      OCSFAnalytic{UID: "tokenwatch.correlate", Name: "tokenwatch.correlate", Type: "Rule", TypeID: ocsfAnalyticRule},
		FirstSeenTime: ms(inc.FirstSeen), LastSeenTime: ms(inc.LastSeen), ModifiedTime: ms(inc.UpdatedAt)}
	for _, d := range inc.Detectors {
		f.FindingInfo.RelatedAnalytics = append(f.FindingInfo.RelatedAnalytics, detectorAnalytic(d))
	}
	actor := &OCSFActor{AppUID: inc.IntegrationID}
	for _, s := range inc.Timeline {
		f.Evidences = append(f.Evidences, OCSFEvidence{UID: s.AlertID, Name: s.Detector, Actor: actor,
			Data: unmapped(map[string]any{"alert_id": s.AlertID, "detector": s.Detector, "severity": string(s.Severity),
				"time": ms(s.Time), "title": s.Title, "risk": s.Risk, "query": s.Query})})
		if aa := anomalyAnalysis(inc.IntegrationID, s.Detector, s.Observed, s.Baseline); aa != nil {
			f.AnomalyAnalyses = append(f.AnomalyAnalyses, *aa)
		}
	}
	f.Unmapped = unmapped(map[string]any{"tenant": inc.Tenant, "version": inc.Version, "status": inc.Status, "key": inc.Key,
		"integration_id": inc.IntegrationID, "integration_ids": inc.IntegrationIDs, "alert_ids": inc.AlertIDs,
		"blast_radius": inc.Blast, "owner": inc.Owner, "purpose": inc.Purpose, "criticality": inc.Criticality,
		"source": inc.Source, "next": inc.Next, "risk_score": inc.RiskScore})
	return f
}

// unmapped drops empty values.
func unmapped(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if x == "" {
				delete(m, k)
			}
		case []string:
			if len(x) == 0 {
				delete(m, k)
			}
		case int64:
			if x == 0 {
				delete(m, k)
			}
		case nil:
			delete(m, k)
		}
	}
	return m
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
