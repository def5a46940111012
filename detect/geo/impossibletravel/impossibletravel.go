// Package impossibletravel implements geo.impossible_travel: one credential
// used from two places farther apart than anything could travel in the time
// between. A token copied off a laptop or CI runner and replayed elsewhere
// shows up this way while the legitimate holder keeps using it. Credentials
// are tracked separately (ev.Credential.ID; the integration as a whole when
// the source names none) because one integration legitimately runs in several
// regions with different tokens.
package impossibletravel

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "geo.impossible_travel"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004", "T1550.001"},
	Runbook:        "Two places too far apart for the time between means two holders of one credential: revoke it and find which use was not the owner's.",
	FalsePositives: []string{"GeoIP error on anycast or mobile networks", "One credential shared by two legitimate deployments"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "one credential used from two places too far apart for the time between", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// MaxSpeedKMH is the fastest plausible travel; faster alerts.
	MaxSpeedKMH float64 `yaml:"max_speed_kmh"`
	// MaxAccuracyKM drops locations whose GeoIP accuracy radius is larger:
	// country-level guesses would otherwise "travel" across continents.
	MaxAccuracyKM uint16 `yaml:"max_accuracy_km"`
	// MinDistanceKM ignores hops shorter than this once both accuracy radii are
	// subtracted (neighbouring cities, mobile networks).
	MinDistanceKM float64 `yaml:"min_distance_km"`
	// SameNetworkIsTravel: by default two uses from the same autonomous
	// system are not travel. A server-side integration's token is used from
	// every region of its vendor's cloud (AWS us-east and Frankfurt minutes
	// apart), and a mobile carrier geolocates one phone all over a country;
	// an attacker replaying a stolen token comes from another network, which
	// geo.new_asn reports too.
	SameNetworkIsTravel bool             `yaml:"same_network_is_travel"`
	Severity            schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{MaxSpeedKMH: 1000, MaxAccuracyKM: 500, MinDistanceKM: 100, Severity: schemas.SeverityHigh}
}

// Detector is geo.impossible_travel.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxSpeedKMH <= 0:
		return nil, fmt.Errorf("max_speed_kmh %g: must be positive", cfg.MaxSpeedKMH)
	case cfg.MaxAccuracyKM == 0:
		return nil, fmt.Errorf("max_accuracy_km: must be positive")
	case cfg.MinDistanceKM < 0:
		return nil, fmt.Errorf("min_distance_km %g: must not be negative", cfg.MinDistanceKM)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// Fix is a credential's last located use. The two small numbers sit
// together so an entry (with its credential key) is 112 bytes, not 128.
type Fix struct {
	Time       int64   `json:"t"` // Unix ms
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	AccuracyKM uint16  `json:"acc,omitempty"`
	ASN        uint32  `json:"asn,omitempty"`
	Country    string  `json:"country,omitempty"`
	City       string  `json:"city,omitempty"`
	IP         string  `json:"ip,omitempty"`
	EventID    string  `json:"event_id"`
}

// State is the last fix of each credential of the integration.
type State struct {
	Last baseline.SmallMap[Fix] `json:"last"`
	// PrunedAt is when stale fixes were last dropped (Unix ms).
	PrunedAt int64 `json:"pruned_at,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Last: baseline.SmallMap[Fix]{}} }

// halfEarthKM is the longest great-circle distance: after halfEarthKM /
// max_speed hours any move is possible, so older fixes can be forgotten.
const halfEarthKM = math.Pi * earthRadiusKM

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	if s.Last == nil {
		s.Last = baseline.SmallMap[Fix]{}
	}
	s.prune(t, time.Duration(halfEarthKM/d.cfg.MaxSpeedKMH*float64(time.Hour)))
	g := ev.Geo
	if !d.locates(g) {
		return nil
	}
	cred := ev.Credential.ID
	if cred == "" {
		cred = "integration"
	}
	cur := Fix{Time: t.UnixMilli(), Lat: g.Lat, Lon: g.Lon, AccuracyKM: g.AccuracyKM, Country: g.Country, City: g.City, IP: ev.Network.IP, ASN: g.ASN, EventID: ev.EventID}
	// One search for the get and the set (the credential's fix is most often
	// there): the same as SmallMap's Get then Set.
	i, had := s.Last.Find(cred)
	if !had {
		s.Last = slices.Insert(s.Last, i, baseline.SmallEntry[Fix]{K: cred, V: cur})
		return nil
	}
	prev := s.Last[i].V
	if cur.Time >= prev.Time {
		s.Last[i].V = cur
	}
	// Both radii come off the distance: the two uses may have been that much
	// closer than their GeoIP centres. When one fix's radius covers the other
	// point (or the two circles overlap) nothing is left: no travel.
	if prev.Lat == cur.Lat && prev.Lon == cur.Lon {
		return nil // same place: zero distance, under any minimum (skips the trigonometry)
	}
	if !d.cfg.SameNetworkIsTravel && cur.ASN != 0 && cur.ASN == prev.ASN {
		return nil
	}
	dist := haversineKM(prev.Lat, prev.Lon, cur.Lat, cur.Lon) - float64(prev.AccuracyKM) - float64(cur.AccuracyKM)
	if dist < d.cfg.MinDistanceKM || dist <= 0 {
		return nil
	}
	// A late event is compared with the newer fix all the same: order of
	// arrival does not make travel any more possible.
	elapsed := time.Duration(cur.Time-prev.Time) * time.Millisecond
	older, newer := prev, cur
	if elapsed < 0 {
		elapsed, older, newer = -elapsed, cur, prev
	}
	if elapsed > 0 && dist/elapsed.Hours() <= d.cfg.MaxSpeedKMH {
		return nil
	}
	obs := map[string]any{"credential": cred, "from": older.view(), "to": newer.view(),
		"distance_km": math.Round(dist), "elapsed": elapsed.String()}
	speed := "instantly"
	if elapsed > 0 {
		v := math.Round(dist / elapsed.Hours())
		obs["speed_kmh"] = v
		speed = fmt.Sprintf("at %.0f km/h", v)
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	first, last := time.UnixMilli(older.Time).UTC(), time.UnixMilli(newer.Time).UTC()
	return []detect.Finding{{
		// One alert per credential, route and day: a token bouncing between the
		// same two places all day is one incident.
		Key:      fmt.Sprintf("%s:%s>%s:%s", cred, older.place(), newer.place(), last.Format(time.DateOnly)),
		Title:    fmt.Sprintf("%s credential used from %s and %s %s apart", name, older.place(), newer.place(), elapsed.Round(time.Second)),
		Summary:  fmt.Sprintf("%s (%s) credential %s was used from %s (IP %s) and then %s (IP %s): %.0f km beyond both GeoIP accuracy radii in %s, i.e. travelling %s, over the %.0f km/h limit.", name, ev.Integration.ID, cred, older.place(), older.IP, newer.place(), newer.IP, dist, elapsed.Round(time.Second), speed, d.cfg.MaxSpeedKMH),
		Severity: d.cfg.Severity,
		Observed: obs,
		Baseline: map[string]any{"max_speed_kmh": d.cfg.MaxSpeedKMH, "min_distance_km": d.cfg.MinDistanceKM},
		EventIDs: []string{older.EventID, newer.EventID}, FirstSeen: first, LastSeen: last,
	}}
}

// locates reports whether g is a fix to measure travel from: coordinates,
// an accuracy radius within max_accuracy_km, and a city. A GeoIP answer
// without a city is country-only (GeoLite2 knows the country, not the city,
// for much mobile and residential address space): its coordinates are the
// country's centroid, where nobody is, and its radius, though large, need
// not cover the country (Lagos is some 640 km from Nigeria's centroid, and
// GeoLite2 gives it a 500 km radius). Such a fix is neither compared nor
// remembered, so the credential's last real fix stays the reference.
func (d *Detector) locates(g *schemas.Geo) bool {
	return g != nil && (g.Lat != 0 || g.Lon != 0) && g.AccuracyKM <= d.cfg.MaxAccuracyKM && g.City != ""
}

func (s *State) prune(t time.Time, horizon time.Duration) {
	if t.UnixMilli()-s.PrunedAt < time.Hour.Milliseconds() {
		return
	}
	s.PrunedAt = t.UnixMilli()
	s.Last = slices.DeleteFunc(s.Last, func(e baseline.SmallEntry[Fix]) bool {
		return detect.SinceMilli(t, e.V.Time) > horizon
	})
}

func (f Fix) place() string {
	switch {
	case f.City != "" && f.Country != "":
		return f.City + ", " + f.Country
	case f.Country != "":
		return f.Country
	}
	return fmt.Sprintf("%.1f,%.1f", f.Lat, f.Lon)
}

func (f Fix) view() map[string]any {
	return map[string]any{"place": f.place(), "lat": f.Lat, "lon": f.Lon, "accuracy_km": f.AccuracyKM,
		"ip": f.IP, "time": schemas.UnixMilli(f.Time)}
}

const earthRadiusKM = 6371.0088

func haversineKM(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKM * math.Asin(math.Min(1, math.Sqrt(a)))
}
