package hosting

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go4.org/netipx"
)

// Seed is the curated ranges file embedded in the binary (data/seed.tsv):
// networks named in public campaign reporting that the published cloud
// ranges and the Tor exit list do not cover. It is always loaded; a
// ranges_file line for the same CIDR or AS wins over it.
//
//go:embed data/seed.tsv
var Seed []byte

// Classes a ranges file may give a network.
const (
	ClassCloud   = "cloud"
	ClassHosting = "hosting"
	ClassVPN     = "vpn"
	ClassTor     = "tor"
)

// ValidClass reports whether c is one of the classes above.
func ValidClass(c string) bool {
	switch c {
	case ClassCloud, ClassHosting, ClassVPN, ClassTor:
		return true
	}
	return false
}

// Label is what a ranges file says about a CIDR or an AS.
type Label struct {
	Class    string // cloud, hosting, vpn or tor
	Provider string // may be empty
}

// Ranges is a parsed ranges file: labels by CIDR (longest prefix wins) and
// by AS number. The zero value is empty; a Ranges is read-only once built.
type Ranges struct {
	// byLen[bits][prefix]: one map per prefix length in use, probed from the
	// longest length down, so a lookup is at most a few dozen map reads.
	v4, v6 map[int]map[netip.Prefix]Label
	lens4  []int // prefix lengths in v4, longest first
	lens6  []int
	asns   map[uint32]Label
	// any holds every prefix (netipx's sorted ranges): a binary search that
	// answers the common case, an address in no range, before the probes.
	any        *netipx.IPSet
	prefixes   int
	asnEntries int
}

// Len returns the number of CIDR and AS entries.
func (r *Ranges) Len() (cidrs, asns int) {
	if r == nil {
		return 0, 0
	}
	return r.prefixes, r.asnEntries
}

// LookupIP returns the label of the longest prefix holding a.
func (r *Ranges) LookupIP(a netip.Addr) (Label, bool) {
	if r == nil || !a.IsValid() {
		return Label{}, false
	}
	a = a.Unmap()
	if r.any == nil || !r.any.Contains(a) {
		return Label{}, false
	}
	m, lens := r.v4, r.lens4
	if a.Is6() {
		m, lens = r.v6, r.lens6
	}
	for _, n := range lens {
		p, err := a.Prefix(n)
		if err != nil {
			continue
		}
		if l, ok := m[n][p]; ok {
			return l, true
		}
	}
	return Label{}, false
}

// LookupASN returns the label of AS n.
func (r *Ranges) LookupASN(n uint32) (Label, bool) {
	if r == nil || n == 0 {
		return Label{}, false
	}
	l, ok := r.asns[n]
	return l, ok
}

func (r *Ranges) addPrefix(p netip.Prefix, l Label) {
	p = p.Masked()
	m := &r.v4
	if p.Addr().Is6() {
		m = &r.v6
	}
	if *m == nil {
		*m = map[int]map[netip.Prefix]Label{}
	}
	byLen := (*m)[p.Bits()]
	if byLen == nil {
		byLen = map[netip.Prefix]Label{}
		(*m)[p.Bits()] = byLen
	}
	if _, dup := byLen[p]; !dup {
		r.prefixes++
	}
	byLen[p] = l
}

func (r *Ranges) addASN(n uint32, l Label) {
	if r.asns == nil {
		r.asns = map[uint32]Label{}
	}
	if _, dup := r.asns[n]; !dup {
		r.asnEntries++
	}
	r.asns[n] = l
}

func (r *Ranges) finish() {
	var b netipx.IPSetBuilder
	for _, m := range []map[int]map[netip.Prefix]Label{r.v4, r.v6} {
		for _, byLen := range m {
			for p := range byLen {
				b.AddPrefix(p)
			}
		}
	}
	r.any, _ = b.IPSet() // the builder only errs on invalid prefixes, which parse rejects
	for _, x := range []struct {
		m    map[int]map[netip.Prefix]Label
		lens *[]int
	}{{r.v4, &r.lens4}, {r.v6, &r.lens6}} {
		*x.lens = (*x.lens)[:0]
		for n := range x.m {
			*x.lens = append(*x.lens, n)
		}
		slices.Sort(*x.lens)
		slices.Reverse(*x.lens)
	}
}

// ParseRanges reads a ranges file: one entry a line,
//
//	CIDR<TAB>class[<TAB>provider]     e.g. 3.5.140.0/22	cloud	AWS
//	AS<n><TAB>class[<TAB>name]        e.g. AS200019	hosting	ALEXHOST SRL
//
// with class one of cloud, hosting, vpn, tor. A bare IP address is its /32
// (/128). Blank lines and lines starting with '#' are skipped. Later lines
// win over earlier ones for the same CIDR or AS. name labels errors.
func ParseRanges(r io.Reader, name string) (*Ranges, error) {
	out := &Ranges{}
	if err := out.parse(r, name); err != nil {
		return nil, err
	}
	out.finish()
	return out, nil
}

func (r *Ranges) parse(in io.Reader, name string) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			return fmt.Errorf("%s line %d: want CIDR or AS<n>, a tab, and a class (cloud, hosting, vpn, tor): %q", name, n, line)
		}
		key, class := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if !ValidClass(class) {
			return fmt.Errorf("%s line %d: class %q: want cloud, hosting, vpn or tor", name, n, class)
		}
		l := Label{Class: class}
		if len(f) > 2 {
			l.Provider = strings.TrimSpace(strings.Join(f[2:], " "))
		}
		if num, ok := cutAS(key); ok {
			asn, err := strconv.ParseUint(num, 10, 32)
			if err != nil || asn == 0 {
				return fmt.Errorf("%s line %d: AS number %q: want 1 to 4294967295", name, n, key)
			}
			r.addASN(uint32(asn), l)
			continue
		}
		p, err := parsePrefix(key)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", name, n, err)
		}
		r.addPrefix(p, l)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func cutAS(s string) (string, bool) {
	if len(s) > 2 && (s[:2] == "AS" || s[:2] == "as" || s[:2] == "As") {
		return s[2:], true
	}
	return "", false
}

// parsePrefix parses a CIDR or a bare address (its host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// loadRanges builds the seed plus the file at path ("" : the seed alone).
func loadRanges(path string) (*Ranges, error) {
	r := &Ranges{}
	if err := r.parse(strings.NewReader(string(Seed)), "seed"); err != nil {
		return nil, err
	}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := r.parse(f, path); err != nil {
			return nil, err
		}
	}
	r.finish()
	return r, nil
}

// rangesFile holds the loaded ranges and reloads them when the file changes
// (size or mtime, like enrich/geoip's Reloading). The file is checked when
// an event arrives, at most once per interval of wall-clock time: only the
// reload check uses the wall clock, detection stays on event time. A file
// that fails to parse keeps the ranges in use.
type rangesFile struct {
	path     string
	interval time.Duration
	now      func() time.Time

	cur       atomic.Pointer[Ranges]
	nextCheck atomic.Int64 // wall-clock Unix ns of the next check

	mu      sync.Mutex // one reload at a time
	stamp   string
	lastErr error
	loads   int
}

func openRangesFile(path string, interval time.Duration) (*rangesFile, error) {
	rf := &rangesFile{path: path, interval: interval, now: time.Now}
	if _, err := rf.reload(); err != nil {
		return nil, err
	}
	return rf, nil
}

func (rf *rangesFile) stampOf() (string, error) {
	if rf.path == "" {
		return "seed", nil
	}
	fi, err := os.Stat(rf.path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano()), nil
}

// reload loads the file again if its stamp changed.
func (rf *rangesFile) reload() (bool, error) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	st, err := rf.stampOf()
	if err == nil && st == rf.stamp && rf.cur.Load() != nil {
		return false, nil
	}
	var r *Ranges
	if err == nil {
		r, err = loadRanges(rf.path)
	}
	if err != nil {
		rf.lastErr = err
		return false, err
	}
	rf.cur.Store(r)
	rf.stamp, rf.lastErr = st, nil
	rf.loads++
	return true, nil
}

// current returns the ranges, first reloading them if the interval passed.
func (rf *rangesFile) current() *Ranges {
	if rf.path != "" {
		now := rf.now().UnixNano()
		next := rf.nextCheck.Load()
		if now >= next && rf.nextCheck.CompareAndSwap(next, now+int64(rf.interval)) {
			rf.reload() // an error keeps the old ranges; see lastErr
		}
	}
	return rf.cur.Load()
}
