// Package hosting implements geo.hosting_or_anonymizer: an integration acting
// from a hosting/cloud/VPN network or a Tor exit it never used during its
// learning period. Attackers replay stolen tokens from rented VPS, commercial
// VPNs and Tor; legitimate integrations that run in a cloud show that cloud
// while learning, so only a hosting network new to the integration alerts.
package hosting

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/detect/geo/newasn"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "geo.hosting_or_anonymizer"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004", "T1090.003"},
	Runbook:        "A machine identity should not need a VPN or Tor: confirm with the owner, otherwise revoke its tokens and block the network.",
	FalsePositives: []string{"An automation deliberately routed through a corporate VPN"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "activity from a hosting/VPN network or Tor exit the integration never used while learning", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod after an integration's first event during which hosting
	// networks it uses are learned silently.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// HostingASNs and HostingOrgPatterns (case-insensitive regular expressions
	// over the AS organisation) say which networks count as hosting or VPN.
	HostingASNs        []uint32 `yaml:"hosting_asns"`
	HostingOrgPatterns []string `yaml:"hosting_org_patterns"`
	// TorExitList is a file of Tor exit addresses, one per line ('#' comments),
	// e.g. a copy of https://check.torproject.org/torbulkexitlist. Empty: no Tor check.
	TorExitList string `yaml:"tor_exit_list"`
	// RangesFile is a ranges file (ParseRanges' format: CIDR or AS<n>, class
	// cloud/hosting/vpn/tor, provider), as `tokenwatch hosting refresh`
	// writes it from the published cloud ranges, the Tor exit list and
	// datacenter ASN lists. It is read over the embedded Seed and checked for
	// changes (size, mtime) at most every RangesReloadInterval when events
	// arrive. A CIDR or AS it classifies wins over hosting_asns and
	// hosting_org_patterns, which stay as the fallback. Empty: the seed only.
	RangesFile           string           `yaml:"ranges_file"`
	RangesReloadInterval time.Duration    `yaml:"ranges_reload_interval"`
	Severity             schemas.Severity `yaml:"severity"`
	TorSeverity          schemas.Severity `yaml:"tor_severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{
		LearningPeriod: 7 * 24 * time.Hour,
		HostingASNs: []uint32{
			16509, 14618, // Amazon
			15169, 396982, // Google, Google Cloud
			8075,          // Microsoft
			20473,         // Choopa / Vultr
			14061,         // DigitalOcean
			16276,         // OVH
			24940, 213230, // Hetzner
			63949,  // Linode / Akamai
			9009,   // M247 (behind many commercial VPNs)
			31898,  // Oracle Cloud
			45102,  // Alibaba Cloud
			51167,  // Contabo
			12876,  // Scaleway
			60781,  // LeaseWeb
			212238, // Datacamp (CDN77, VPN exits)
		},
		HostingOrgPatterns: []string{
			`amazon`, `google[- ]cloud`, `microsoft`, `choopa|vultr`, `digitalocean`, `\bovh`,
			`hetzner`, `linode`, `m247`, `oracle`, `alibaba`, `contabo`, `scaleway`, `leaseweb`,
			`datacamp`, `mullvad`, `nordvpn|tefincom`, `expressvpn`, `proton`,
		},
		Severity:             schemas.SeverityMedium,
		TorSeverity:          schemas.SeverityHigh,
		RangesReloadInterval: time.Minute,
	}
}

// Detector is geo.hosting_or_anonymizer.
type Detector struct {
	cfg  Config
	asns map[uint32]bool
	orgs []*regexp.Regexp
	tor  map[netip.Addr]bool
	// ranges is the seed plus ranges_file, reloaded when the file changes.
	ranges *rangesFile

	// classes caches classifyNetwork by (ASN, AS org): the org patterns are
	// regular expressions, far too slow to run on every event, and an
	// integration's traffic comes from a handful of networks. Bounded by
	// maxClasses; detectors are shared by the partitions' goroutines.
	mu      sync.RWMutex
	classes map[network]string
	// verdicts caches classify by IP, read without a lock on every event:
	// parsing the address, the Tor set, the ranges and the classes map
	// each time were most of the detector's cost. Entries are checked
	// against everything classify reads (verdictKey), so a hit is the
	// answer classify would give.
	verdicts []atomic.Pointer[verdict]
}

type network struct {
	asn uint32
	org string
}

// maxClasses bounds the classification cache (distinct ASN/org pairs).
const maxClasses = 1 << 16

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config; it reads the Tor exit list once.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.RangesReloadInterval < 0 {
		return nil, fmt.Errorf("ranges_reload_interval %s: must not be negative", cfg.RangesReloadInterval)
	}
	if cfg.LearningPeriod < 0 {
		return nil, fmt.Errorf("learning_period %s: must not be negative", cfg.LearningPeriod)
	}
	for k, sev := range map[string]schemas.Severity{"severity": cfg.Severity, "tor_severity": cfg.TorSeverity} {
		if _, err := schemas.ParseSeverity(string(sev)); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	d := &Detector{cfg: cfg, asns: map[uint32]bool{}, tor: map[netip.Addr]bool{}, classes: map[network]string{},
		verdicts: make([]atomic.Pointer[verdict], verdictSlots)}
	for _, a := range cfg.HostingASNs {
		d.asns[a] = true
	}
	for _, p := range cfg.HostingOrgPatterns {
		re, err := regexp.Compile("(?i)" + p)
		if err != nil {
			return nil, fmt.Errorf("hosting_org_patterns %q: %w", p, err)
		}
		d.orgs = append(d.orgs, re)
	}
	if cfg.TorExitList != "" {
		if err := d.loadTor(cfg.TorExitList); err != nil {
			return nil, fmt.Errorf("tor_exit_list: %w", err)
		}
	}
	rf, err := openRangesFile(cfg.RangesFile, cfg.RangesReloadInterval)
	if err != nil {
		return nil, fmt.Errorf("ranges_file: %w", err)
	}
	d.ranges = rf
	return d, nil
}

func (d *Detector) loadTor(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", path, n, err)
		}
		d.tor[a.Unmap()] = true
	}
	return sc.Err()
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64 `json:"first_seen"` // Unix ms of the first event
	// Networks are the hosting networks ("AS<n>", "org:<name>") and "tor" the
	// integration has used.
	Networks baseline.Seen `json:"networks"`
	// Orgs names each "AS<n>" network, so a new ASN of the same provider
	// (newasn.Network) is recognised as a network the integration uses.
	Orgs baseline.SmallMap[string] `json:"orgs,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Networks: baseline.Seen{}} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
	}
	key, kind, src, provider := d.classify(ev)
	if key == "" || s.Networks.Has(key) {
		return nil
	}
	known := s.Networks.Keys()
	s.Networks.Add(key, t)
	if ev.Geo != nil && ev.Geo.ASOrg != "" && strings.HasPrefix(key, "AS") {
		s.Orgs.Set(key, ev.Geo.ASOrg)
	}
	if detect.SinceMilli(t, s.FirstSeen) < d.cfg.LearningPeriod {
		return nil
	}
	// One provider is one network: a new ASN of a provider the integration
	// already runs in (AWS us-east-1's AS14618, then us-east-2's AS16509)
	// is not a new hosting network; geo.new_asn groups them the same way.
	if kind != ClassTor && ev.Geo != nil && s.sameProvider(ev.Geo, known) {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	sev, where := d.cfg.Severity, key
	if org := provider; key != "tor" {
		if ev.Geo != nil && ev.Geo.ASOrg != "" {
			org = ev.Geo.ASOrg
		}
		if org != "" && strings.HasPrefix(key, "AS") {
			where = key + " " + org
		}
	}
	if kind == "tor" {
		sev, where = d.cfg.TorSeverity, "Tor exit "+ev.Network.IP
	}
	obs := map[string]any{"kind": kind, "ip": ev.Network.IP, "action": ev.Action.Name}
	if ev.Geo != nil {
		obs["asn"], obs["as_org"], obs["country"] = ev.Geo.ASN, ev.Geo.ASOrg, ev.Geo.Country
	}
	if src != "" {
		obs["source"] = src
	}
	if provider != "" {
		obs["provider"] = provider
	}
	return []detect.Finding{{
		Key:      key,
		Title:    fmt.Sprintf("%s used from %s", name, where),
		Summary:  fmt.Sprintf("%s (%s) acted from %s (%s, IP %s), which it never used in %.0f days of history.", name, ev.Integration.ID, where, kind, ev.Network.IP, t.Sub(time.UnixMilli(s.FirstSeen)).Hours()/24),
		Severity: sev,
		Observed: obs,
		Baseline: map[string]any{"hosting_networks": known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}

// sameProvider reports whether g's network (newasn.Network) is that of one
// of the known hosting networks ("AS<n>", named by Orgs when it was seen with
// one, or "org:<as org>").
func (s *State) sameProvider(g *schemas.Geo, known []string) bool {
	network := newasn.Network(g.ASN, g.ASOrg)
	if network == "" {
		return false
	}
	for _, k := range known {
		var other string
		if org, ok := strings.CutPrefix(k, "org:"); ok {
			other = newasn.NormalizeOrg(org)
		} else if n, err := strconv.ParseUint(strings.TrimPrefix(k, "AS"), 10, 32); err == nil {
			org, _ := s.Orgs.Get(k)
			other = newasn.Network(uint32(n), org)
		}
		if other == network {
			return true
		}
	}
	return false
}

// classify returns the baseline key and kind of ev's origin ("tor", or the
// ranges file's class cloud/hosting/vpn, or "hosting" for the hand-written
// fallback), where the verdict came from ("ranges_ip", "ranges_asn",
// "tor_exit_list", "patterns") and the provider the ranges name; key is ""
// when the origin is none of these. Tor wins: an exit may sit in a hosting
// AS. The ranges file wins over hosting_asns and hosting_org_patterns, and
// a CIDR over an AS.
func (d *Detector) classify(ev *schemas.Event) (key, kind, src, provider string) {
	r := d.ranges.current()
	v := verdictKey{ip: ev.Network.IP, ranges: r}
	if g := ev.Geo; g != nil {
		v.geo, v.asn, v.org = true, g.ASN, g.ASOrg
	}
	slot := &d.verdicts[verdictSlot(ev.Geo, v.ip)]
	if e := slot.Load(); e != nil && e.verdictKey == v {
		return e.key, e.kind, e.src, e.provider
	}
	key, kind, src, provider = d.classifyOnce(ev, r)
	slot.Store(&verdict{v, key, kind, src, provider})
	return key, kind, src, provider
}

// verdictKey is everything classify reads from an event and the detector's
// changing config: the IP, its GeoIP network and the ranges in force (the
// Tor list, the ASNs and the patterns are fixed at New).
type verdictKey struct {
	ip     string
	geo    bool // ev.Geo != nil
	asn    uint32
	org    string
	ranges *Ranges
}

type verdict struct {
	verdictKey
	key, kind, src, provider string
}

// verdictSlots sizes the verdict cache (a direct-mapped table: a clash
// only classifies again), a power of two.
const verdictSlots = 1 << verdictBits

const verdictBits = 12

// verdictSlot picks an event's slot: by its Geo's address when it has one
// (GeoIP hands one shared Geo per address, so this spares hashing the IP
// again; the entry is still checked by value), else by the IP.
func verdictSlot(g *schemas.Geo, ip string) uint64 {
	if g != nil {
		return uint64(uintptr(unsafe.Pointer(g))>>3) * 0x9e3779b97f4a7c15 >> (64 - verdictBits)
	}
	return maphash.String(verdictSeed, ip) & (verdictSlots - 1)
}

var verdictSeed = maphash.MakeSeed()

func (d *Detector) classifyOnce(ev *schemas.Event, r *Ranges) (key, kind, src, provider string) {
	var addr netip.Addr
	if ev.Network.IP != "" {
		if a, err := netip.ParseAddr(ev.Network.IP); err == nil {
			addr = a.Unmap()
		}
	}
	if addr.IsValid() && d.tor[addr] {
		return "tor", ClassTor, "tor_exit_list", ""
	}
	g := ev.Geo
	var asn uint32
	if g != nil {
		asn = g.ASN
	}
	l, ok := r.LookupIP(addr)
	src = "ranges_ip"
	if !ok {
		l, ok = r.LookupASN(asn)
		src = "ranges_asn"
	}
	if ok {
		switch {
		case l.Class == ClassTor:
			return "tor", ClassTor, src, l.Provider
		case asn != 0:
			return "AS" + strconv.FormatUint(uint64(asn), 10), l.Class, src, l.Provider
		case l.Provider != "":
			return "range:" + strings.ToLower(l.Provider), l.Class, src, l.Provider
		default:
			return "range:" + l.Class, l.Class, src, ""
		}
	}
	if g == nil {
		return "", "", "", ""
	}
	n := network{g.ASN, g.ASOrg}
	d.mu.RLock()
	key, ok = d.classes[n]
	d.mu.RUnlock()
	if !ok {
		key = d.classifyNetwork(g.ASN, g.ASOrg)
		d.mu.Lock()
		if len(d.classes) < maxClasses {
			d.classes[n] = key
		}
		d.mu.Unlock()
	}
	if key == "" {
		return "", "", "", ""
	}
	return key, ClassHosting, "patterns", ""
}

// classifyNetwork returns the baseline key of a hosting network, or "".
func (d *Detector) classifyNetwork(asn uint32, org string) string {
	hosting := d.asns[asn]
	for _, re := range d.orgs {
		if hosting || org == "" {
			break
		}
		hosting = re.MatchString(org)
	}
	switch {
	case !hosting:
		return ""
	case asn != 0:
		return "AS" + strconv.FormatUint(uint64(asn), 10)
	default:
		return "org:" + strings.ToLower(org)
	}
}
