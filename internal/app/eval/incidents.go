package eval

import (
	"slices"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Opened is an incident's last version with the event-time watermark at
// which its first version was produced.
type Opened struct {
	schemas.Incident
	OpenedAt time.Time `json:"opened_at"`
	Scenario string    `json:"scenario,omitempty"` // the label it matched, empty for a false incident
}

// IncidentRow is one scenario's line of the incident table.
type IncidentRow struct {
	Label     corpus.Label
	Incidents int           // incidents matching the label
	TTD       time.Duration // from the label's start to the first matching incident's opening; -1 if none
	FirstBy   []string      // the detectors of that incident
}

// IncidentScore is the incident half of a result.
type IncidentScore struct {
	Incidents      []Opened
	Rows           []IncidentRow
	ExactlyOne     int // scenarios caught as exactly one incident
	FalseIncidents int
	FalsePer1k     float64
}

// matches reports whether incident inc is about label l: the same tenant,
// the labelled integration among the incident's, and its signals within the
// label's window (plus grace).
func matches(inc schemas.Incident, l corpus.Label, grace time.Duration) bool {
	if inc.Tenant != l.Tenant || (inc.IntegrationID != l.IntegrationID && !slices.Contains(inc.IntegrationIDs, l.IntegrationID)) {
		return false
	}
	return !inc.LastSeen.Before(l.Start) && !inc.FirstSeen.After(l.End.Add(grace))
}

// ScoreIncidents scores incident versions (in production order, each with
// the watermark it was produced at) against labels.
func ScoreIncidents(versions []Opened, labels []corpus.Label, integrationDays float64, grace time.Duration) IncidentScore {
	if grace <= 0 {
		grace = DefaultGrace
	}
	opened := map[string]time.Time{}
	last := map[string]int{}
	var latest []Opened
	for _, v := range versions {
		if _, ok := opened[v.ID]; !ok {
			opened[v.ID] = v.OpenedAt
			last[v.ID] = len(latest)
			latest = append(latest, v)
			continue
		}
		if i := last[v.ID]; v.Version > latest[i].Version {
			latest[i].Incident = v.Incident
		}
	}
	var sc IncidentScore
	rows := make([]IncidentRow, len(labels))
	for i, l := range labels {
		rows[i] = IncidentRow{Label: l, TTD: -1}
	}
	for _, inc := range latest {
		inc.OpenedAt = opened[inc.ID]
		for i, l := range labels {
			if !matches(inc.Incident, l, grace) {
				continue
			}
			inc.Scenario = l.Scenario
			rows[i].Incidents++
			ttd := max(inc.OpenedAt.Sub(l.Start), 0)
			if rows[i].TTD < 0 || ttd < rows[i].TTD {
				rows[i].TTD, rows[i].FirstBy = ttd, inc.Detectors
			}
		}
		if inc.Scenario == "" {
			sc.FalseIncidents++
		}
		sc.Incidents = append(sc.Incidents, inc)
	}
	for _, r := range rows {
		if r.Incidents == 1 {
			sc.ExactlyOne++
		}
	}
	sc.Rows = rows
	if integrationDays > 0 {
		sc.FalsePer1k = float64(sc.FalseIncidents) / integrationDays * 1000
	}
	return sc
}
