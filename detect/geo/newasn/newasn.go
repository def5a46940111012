// Package newasn implements geo.new_asn: activity by an integration from a
// network (autonomous system) it was never seen on once its learning period is
// over. Integrations run from a handful of stable networks (the vendor's cloud,
// the customer's egress); a token replayed from attacker infrastructure
// usually arrives from a new ASN even when the country is the same, which is
// why this complements geo.new_country (Datadog's post-Drift Salesforce rule).
package newasn

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "geo.new_asn"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004", "T1550.001"},
	Runbook:        "Compare the new network with the integration's hosting provider; an unrelated ISP or cloud is a token used elsewhere: revoke and rotate.",
	FalsePositives: []string{"A vendor changing hosting provider or adding a CDN egress"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "activity from a network (ASN) never seen for the integration after its learning period", New: New})
}

// Config is geo.new_asn's YAML config: learning_period and severity
// (baseline.FirstSeenConfig), and the networks approved for every integration.
type Config struct {
	baseline.FirstSeenConfig `yaml:",inline"`
	// ApprovedASNs never alert, for every integration (the company's egress).
	ApprovedASNs []uint32 `yaml:"approved_asns"`
	// SameProviderIsNew: by default an ASN of a network the integration
	// already uses (the same provider, see Network: AWS us-east-1's AS14618
	// and us-east-2's AS16509) is learned silently. Set it to alert on every
	// new ASN, as before the grouping.
	SameProviderIsNew bool `yaml:"same_provider_is_new"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{FirstSeenConfig: baseline.FirstSeenDefaults(schemas.SeverityMedium)}
}

// Detector is geo.new_asn.
type Detector struct {
	cfg      Config
	approved map[uint32]bool
}

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	return baseline.NewFirstSeen(decode, DefaultConfig(), func(cfg Config) detect.Detector {
		return &Detector{cfg: cfg, approved: baseline.SetOf(cfg.ApprovedASNs, nil)}
	})
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64         `json:"first_seen"` // Unix ms of the first event
	ASNs      baseline.Seen `json:"asns"`       // "AS<n>" → first seen
	// Orgs names each ASN for the alert's baseline.
	Orgs baseline.SmallMap[string] `json:"orgs,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State {
	return &State{ASNs: baseline.Seen{}} // Orgs is made on first use
}

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	var buf [16]byte
	var key []byte
	if ev.Geo != nil && ev.Geo.ASN != 0 {
		key = strconv.AppendUint(append(buf[:0], "AS"...), uint64(ev.Geo.ASN), 10)
	}
	// string(key) does not escape Observe: no allocation for a known ASN.
	seen := d.cfg.Rule().Observe(&s.FirstSeen, &s.ASNs, string(key), t)
	if !seen.New {
		return nil
	}
	asn := string(key)
	if ev.Geo.ASOrg != "" {
		s.Orgs.Set(asn, ev.Geo.ASOrg)
	}
	if !seen.News || d.approved[ev.Geo.ASN] {
		return nil
	}
	// One provider is one network: a new ASN of a network a known ASN
	// belongs to joins the baseline quietly (it already has, above).
	network := Network(ev.Geo.ASN, ev.Geo.ASOrg)
	known := make([]string, 0, len(seen.Known))
	for _, k := range seen.Known {
		org, _ := s.Orgs.Get(k)
		if network != "" && !d.cfg.SameProviderIsNew && Network(asnOf(k), org) == network {
			return nil
		}
		known = append(known, label(k, org))
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	return []detect.Finding{{
		Key:      asn,
		Title:    fmt.Sprintf("%s used from new network %s", name, label(asn, ev.Geo.ASOrg)),
		Summary:  fmt.Sprintf("%s (%s) acted from %s (IP %s, %s); in %.0f days of history it had used only %d other networks.", name, ev.Integration.ID, label(asn, ev.Geo.ASOrg), ev.Network.IP, ev.Geo.Country, t.Sub(seen.Since).Hours()/24, len(known)),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"asn": ev.Geo.ASN, "as_org": ev.Geo.ASOrg, "ip": ev.Network.IP, "country": ev.Geo.Country, "action": ev.Action.Name},
		Baseline: map[string]any{"asns": known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}

// asnOf is the number of a baseline key "AS<n>" (0 when it is not one).
func asnOf(key string) uint32 {
	n, err := strconv.ParseUint(strings.TrimPrefix(key, "AS"), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

func label(asn, org string) string {
	if org == "" {
		return asn
	}
	return asn + " " + org
}
