// Package newcountry implements geo.new_country: activity by an integration
// from a country it was never seen in once its learning period is over, and
// that is not among its approved countries. A stolen OAuth token replayed from
// attacker infrastructure usually shows up here first. Countries approved for
// every integration come from config, those approved for one integration from
// its catalog entry (ev.Inventory.ApprovedCountries).
package newcountry

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "geo.new_country"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004", "T1550.001"},
	Runbook:        "Ask the integration's owner whether it moved (new region, new vendor egress); if not, revoke its tokens and rotate its secret, then pivot on the IP.",
	FalsePositives: []string{"A vendor moving its egress to a new cloud region", "A new CI runner location"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "activity from a country never seen for the integration after its learning period", New: New})
}

// Config is geo.new_country's YAML config: learning_period and severity
// (baseline.FirstSeenConfig), and the countries approved for every integration.
type Config struct {
	baseline.FirstSeenConfig `yaml:",inline"`
	// ApprovedCountries (ISO alpha-2) never alert, for every integration.
	ApprovedCountries []string `yaml:"approved_countries"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{FirstSeenConfig: baseline.FirstSeenDefaults(schemas.SeverityHigh)}
}

// Detector is geo.new_country.
type Detector struct {
	cfg      Config
	approved map[string]bool
}

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	return baseline.NewFirstSeen(decode, DefaultConfig(), func(cfg Config) detect.Detector {
		return &Detector{cfg: cfg, approved: baseline.SetOf(cfg.ApprovedCountries, strings.ToUpper)}
	})
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64         `json:"first_seen"` // Unix ms of the first event
	Countries baseline.Seen `json:"countries"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Countries: baseline.Seen{}} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	var c string
	if ev.Geo != nil {
		c = ev.Geo.Country
	}
	seen := d.cfg.Rule().Observe(&s.FirstSeen, &s.Countries, c, t)
	if !seen.News || d.approved[c] || catalogApproves(ev.Inventory, c) {
		return nil
	}
	where := c
	if ev.Geo.City != "" {
		where = ev.Geo.City + ", " + c
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	return []detect.Finding{{
		Key:      c,
		Title:    fmt.Sprintf("%s used from new country %s", name, c),
		Summary:  fmt.Sprintf("%s (%s) acted from %s (IP %s, AS%d %s); in %s of history it had been seen only in %s.", name, ev.Integration.ID, where, ev.Network.IP, ev.Geo.ASN, ev.Geo.ASOrg, roundDays(t.Sub(seen.Since)), strings.Join(seen.Known, ", ")),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"country": c, "city": ev.Geo.City, "ip": ev.Network.IP, "asn": ev.Geo.ASN, "as_org": ev.Geo.ASOrg, "action": ev.Action.Name},
		Baseline: map[string]any{"countries": seen.Known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}

// catalogApproves reports whether the integration's catalog entry lists c
// among its approved countries. Like the config's list it only silences the
// alert: the country still joins the baseline.
func catalogApproves(inv *schemas.Inventory, c string) bool {
	if inv == nil {
		return false
	}
	for _, a := range inv.ApprovedCountries {
		if strings.EqualFold(a, c) {
			return true
		}
	}
	return false
}

func roundDays(d time.Duration) string {
	return fmt.Sprintf("%.0f days", d.Hours()/24)
}
