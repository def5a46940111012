// Package useafterrevoke implements lifecycle.use_after_revoke: a credential
// acting after it was revoked. Revocation is the incident responder's main
// lever; if a "revoked" token still reads data, the revocation did not take
// (a refresh token survived, the vendor caches grants, the wrong token was
// revoked) and the attacker is still in. Failed calls after a revoke are the
// revocation working and do not alert.
package useafterrevoke

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.use_after_revoke"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1550.001"},
	Runbook:        "The revoke did not take: find which token or session still works (refresh token, cached session) and kill it at the vendor.",
	FalsePositives: []string{"Vendor-side propagation delay of the revoke"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "a credential acting after its revoke event", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// Grace after the revoke during which use is still tolerated: audit
	// records of calls in flight can carry a slightly later time.
	Grace time.Duration `yaml:"grace"`
	// RememberFor bounds how long a revocation is remembered; tokens expire,
	// and the state must not grow with every credential ever rotated.
	RememberFor time.Duration    `yaml:"remember_for"`
	Severity    schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{Grace: time.Minute, RememberFor: 90 * 24 * time.Hour, Severity: schemas.SeverityHigh}
}

// Detector is lifecycle.use_after_revoke.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.Grace < 0:
		return nil, fmt.Errorf("grace %s: must not be negative", cfg.Grace)
	case cfg.RememberFor <= cfg.Grace:
		return nil, fmt.Errorf("remember_for %s: must be longer than grace %s", cfg.RememberFor, cfg.Grace)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// allCredentials is the key of a revoke that names no credential: the whole
// integration's access was revoked.
const allCredentials = "*"

// Revocation is one remembered revoke event.
type Revocation struct {
	Time    int64  `json:"t"` // Unix ms
	EventID string `json:"event_id"`
	Action  string `json:"action,omitempty"`
}

// State maps credential id (or "*") to its revocation. The map is made
// on the first revocation: most integrations never see one, and an empty Go
// map costs 48 bytes.
type State struct {
	Revoked map[string]Revocation `json:"revoked"`
}

// noRevocations is the JSON of a state without revocations, as written
// when the map was always made.
const noRevocations = `{"revoked":{}}`

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) {
	if len(s.Revoked) == 0 {
		return []byte(noRevocations), nil
	}
	return json.Marshal(s)
}

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error {
	if err := json.Unmarshal(b, s); err != nil {
		return err
	}
	if len(s.Revoked) == 0 {
		s.Revoked = nil
	}
	return nil
}

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	if ev.Outcome == "failure" {
		// A failed revoke revoked nothing; a failed call is the revoke working.
		return nil
	}
	t := ev.Time.Time
	cred := ev.Credential.ID
	if cred == "" {
		cred = allCredentials
	}
	switch ev.Action.Category {
	case schemas.CategoryRevoke:
		if prev, ok := s.Revoked[cred]; !ok || t.UnixMilli() > prev.Time {
			if s.Revoked == nil {
				s.Revoked = map[string]Revocation{}
			}
			s.Revoked[cred] = Revocation{Time: t.UnixMilli(), EventID: ev.EventID, Action: ev.Action.Name}
		}
		s.forget(t.Add(-d.cfg.RememberFor))
		return nil
	case schemas.CategoryAuthorize:
		// A new grant re-enables the credential; any grant means the app was
		// consented again, which lifts an integration-wide revoke.
		delete(s.Revoked, cred)
		delete(s.Revoked, allCredentials)
		return nil
	case schemas.CategoryAccess, schemas.CategoryModify, schemas.CategoryAdmin:
	default:
		return nil
	}
	which := cred
	rev, ok := s.Revoked[cred]
	if !ok {
		which = allCredentials
		if rev, ok = s.Revoked[allCredentials]; !ok {
			return nil
		}
	}
	revokedAt := time.UnixMilli(rev.Time).UTC()
	if t.Sub(revokedAt) <= d.cfg.Grace || t.Sub(revokedAt) > d.cfg.RememberFor {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	what := "credential " + ev.Credential.ID
	if which == allCredentials {
		what = "integration access"
	}
	return []detect.Finding{{
		// One alert per revocation, however many calls follow it.
		Key:      which + "@" + revokedAt.Format("2006-01-02T15:04:05.000Z"),
		Title:    fmt.Sprintf("%s used after %s was revoked", name, what),
		Summary:  fmt.Sprintf("%s (%s) performed %s (%s) with credential %q from %s %s after %s was revoked (%s, event %s).", name, ev.Integration.ID, ev.Action.Name, ev.Action.Category, ev.Credential.ID, ev.Network.IP, t.Sub(revokedAt).Round(time.Second), what, rev.Action, rev.EventID),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"credential": ev.Credential.ID, "action": ev.Action.Name, "category": ev.Action.Category, "ip": ev.Network.IP, "principal": ev.Principal.ID, "outcome": ev.Outcome, "after": t.Sub(revokedAt).String()},
		Baseline: map[string]any{"revoked": which, "revoked_at": schemas.NewTime(revokedAt), "revoke_event_id": rev.EventID, "grace": d.cfg.Grace.String()},
		EventIDs: []string{rev.EventID, ev.EventID}, FirstSeen: revokedAt, LastSeen: t,
	}}
}

// forget drops revocations older than cutoff.
func (s *State) forget(cutoff time.Time) {
	for k, r := range s.Revoked {
		if r.Time < cutoff.UnixMilli() {
			delete(s.Revoked, k)
		}
	}
}
