package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/geo/hosting"
)

// Default sources of `tokenwatch hosting refresh`.
const (
	defaultAWSRanges = "https://ip-ranges.amazonaws.com/ip-ranges.json"
	defaultGCPRanges = "https://www.gstatic.com/ipranges/cloud.json"
	defaultTorExits  = "https://check.torproject.org/torbulkexitlist"
)

// maxRangesBody bounds one downloaded source (AWS's file is a few MB).
const maxRangesBody = 64 << 20

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// runHosting is `tokenwatch hosting refresh --out FILE`: download the
// published cloud ranges, the Tor exit list and datacenter ASN lists,
// normalize them into geo.hosting_or_anonymizer's ranges file and replace
// FILE atomically (a running detector reloads it when it changes).
func runHosting(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: tokenwatch hosting refresh --out FILE [--aws URL] [--gcp URL] [--tor URL] [--asn-list URL ...] [--seed=false]"
	if len(args) == 0 || args[0] != "refresh" {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	fs := newFlags("hosting refresh", stderr)
	out := fs.String("out", "", "ranges file to write (required); replaced atomically")
	aws := fs.String("aws", defaultAWSRanges, `AWS ip-ranges.json URL ("" skips AWS)`)
	gcp := fs.String("gcp", defaultGCPRanges, `Google Cloud cloud.json URL ("" skips Google Cloud)`)
	tor := fs.String("tor", defaultTorExits, `Tor Project bulk exit list URL ("" skips Tor)`)
	var asnLists multiFlag
	fs.Var(&asnLists, "asn-list", "datacenter ASN list URL (AS<n> or <n> a line, optional '# name'), repeatable; e.g. https://raw.githubusercontent.com/X4BNet/lists_vpn/main/input/datacenter/ASN.txt")
	asnClass := fs.String("asn-class", hosting.ClassHosting, "class given to --asn-list entries (cloud, hosting, vpn)")
	seed := fs.Bool("seed", true, "include the curated seed (ALEXHOST AS200019, Voxility AS3223, ...) in the file")
	timeout := fs.Duration("timeout", 2*time.Minute, "overall download timeout")
	if err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	if !hosting.ValidClass(*asnClass) {
		return fmt.Errorf("%w: --asn-class %q: want cloud, hosting, vpn or tor", errUsage, *asnClass)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r := &refresh{client: http.DefaultClient}
	b, err := r.build(ctx, refreshSources{AWS: *aws, GCP: *gcp, Tor: *tor, ASNLists: asnLists, ASNClass: *asnClass, Seed: *seed})
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s\n", *out, strings.Join(r.counts, ", "))
	return nil
}

type refreshSources struct {
	AWS, GCP, Tor string
	ASNLists      []string
	ASNClass      string
	Seed          bool
}

type refresh struct {
	client *http.Client
	counts []string // "aws 1234 prefixes", ...
}

// rangeLine is one normalized entry: a CIDR or AS<n> key.
type rangeLine struct{ key, class, provider string }

// build downloads and parses every source and returns the whole file. Any
// source failing fails the refresh: no partial file.
func (r *refresh) build(ctx context.Context, src refreshSources) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# geo.hosting_or_anonymizer ranges file, written by `tokenwatch hosting refresh` at %s.\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintln(&buf, "# Format: CIDR<TAB>class<TAB>provider or AS<n><TAB>class<TAB>name; class cloud, hosting, vpn or tor.")
	var all []rangeLine
	type source struct {
		name, url string
		parse     func([]byte) ([]rangeLine, string, error)
	}
	var sources []source
	if src.AWS != "" {
		sources = append(sources, source{"aws", src.AWS, parseAWSRanges})
	}
	if src.GCP != "" {
		sources = append(sources, source{"gcp", src.GCP, parseGCPRanges})
	}
	for _, u := range src.ASNLists {
		class := src.ASNClass
		sources = append(sources, source{"asn-list", u, func(b []byte) ([]rangeLine, string, error) { return parseASNList(b, class) }})
	}
	if src.Tor != "" { // last: a Tor exit /32 is also the longest prefix
		sources = append(sources, source{"tor", src.Tor, parseTorExits})
	}
	for _, s := range sources {
		body, err := r.get(ctx, s.url)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.name, s.url, err)
		}
		lines, note, err := s.parse(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.name, s.url, err)
		}
		if len(lines) == 0 {
			return nil, fmt.Errorf("%s %s: no entries (refusing to write a file without them)", s.name, s.url)
		}
		fmt.Fprintf(&buf, "# source %s: %s (%d entries%s)\n", s.name, s.url, len(lines), note)
		r.counts = append(r.counts, fmt.Sprintf("%s %d", s.name, len(lines)))
		all = append(all, lines...)
	}
	if src.Seed {
		fmt.Fprintln(&buf, "# source seed: detect/geo/hosting/data/seed.tsv (curated; see its comments)")
		r.counts = append(r.counts, "seed")
	}
	buf.WriteByte('\n')
	all = dedupe(all)
	for _, l := range all {
		fmt.Fprintf(&buf, "%s\t%s\t%s\n", l.key, l.class, l.provider)
	}
	if src.Seed {
		fmt.Fprintln(&buf, "\n# --- seed ---")
		buf.Write(hosting.Seed)
	}
	// What the detector will read: refuse to write anything it would reject.
	if _, err := hosting.ParseRanges(bytes.NewReader(buf.Bytes()), "refreshed file"); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dedupe keeps the last line for each key (later sources win: Tor over
// cloud), in the order keys were first seen, sorted ASNs first then CIDRs.
func dedupe(in []rangeLine) []rangeLine {
	idx := map[string]int{}
	var out []rangeLine
	for _, l := range in {
		if i, ok := idx[l.key]; ok {
			out[i] = l
			continue
		}
		idx[l.key] = len(out)
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := strings.HasPrefix(out[i].key, "AS"), strings.HasPrefix(out[j].key, "AS")
		return ai && !aj
	})
	return out
}

func (r *refresh) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "tokenwatch-hosting-refresh/"+version)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRangesBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRangesBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxRangesBody)
	}
	return b, nil
}

// parseAWSRanges reads https://ip-ranges.amazonaws.com/ip-ranges.json:
// {"syncToken","createDate","prefixes":[{"ip_prefix","region","service",
// "network_border_group"}],"ipv6_prefixes":[{"ipv6_prefix",...}]}.
// Every prefix is class cloud, provider "AWS" (the AMAZON service is the
// superset of the others, so the service is not kept).
func parseAWSRanges(b []byte) ([]rangeLine, string, error) {
	var doc struct {
		SyncToken  string `json:"syncToken"`
		CreateDate string `json:"createDate"`
		Prefixes   []struct {
			IPPrefix string `json:"ip_prefix"`
			Service  string `json:"service"`
		} `json:"prefixes"`
		IPv6Prefixes []struct {
			IPv6Prefix string `json:"ipv6_prefix"`
			Service    string `json:"service"`
		} `json:"ipv6_prefixes"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("not AWS ip-ranges.json: %w", err)
	}
	var out []rangeLine
	for i, p := range doc.Prefixes {
		l, err := cidrLine(p.IPPrefix, hosting.ClassCloud, "AWS")
		if err != nil {
			return nil, "", fmt.Errorf("prefixes[%d].ip_prefix: %w", i, err)
		}
		out = append(out, l)
	}
	for i, p := range doc.IPv6Prefixes {
		l, err := cidrLine(p.IPv6Prefix, hosting.ClassCloud, "AWS")
		if err != nil {
			return nil, "", fmt.Errorf("ipv6_prefixes[%d].ipv6_prefix: %w", i, err)
		}
		out = append(out, l)
	}
	return out, fmt.Sprintf(", syncToken %s, createDate %s", doc.SyncToken, doc.CreateDate), nil
}

// parseGCPRanges reads https://www.gstatic.com/ipranges/cloud.json:
// {"syncToken","creationTime","prefixes":[{"ipv4Prefix"|"ipv6Prefix",
// "service","scope"}]}. Class cloud, provider "Google Cloud".
func parseGCPRanges(b []byte) ([]rangeLine, string, error) {
	var doc struct {
		SyncToken    string `json:"syncToken"`
		CreationTime string `json:"creationTime"`
		Prefixes     []struct {
			IPv4Prefix string `json:"ipv4Prefix"`
			IPv6Prefix string `json:"ipv6Prefix"`
			Scope      string `json:"scope"`
		} `json:"prefixes"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("not Google Cloud cloud.json: %w", err)
	}
	var out []rangeLine
	for i, p := range doc.Prefixes {
		s := p.IPv4Prefix
		if s == "" {
			s = p.IPv6Prefix
		}
		l, err := cidrLine(s, hosting.ClassCloud, "Google Cloud")
		if err != nil {
			return nil, "", fmt.Errorf("prefixes[%d]: %w", i, err)
		}
		out = append(out, l)
	}
	return out, fmt.Sprintf(", syncToken %s, creationTime %s", doc.SyncToken, doc.CreationTime), nil
}

// parseTorExits reads the Tor Project's bulk exit list: one address a line.
func parseTorExits(b []byte) ([]rangeLine, string, error) {
	var out []rangeLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, "", fmt.Errorf("line %d: not an IP address: %q", n, truncate(line, 60))
		}
		a = a.Unmap()
		out = append(out, rangeLine{netip.PrefixFrom(a, a.BitLen()).String(), hosting.ClassTor, "Tor exit"})
	}
	return out, "", sc.Err()
}

// parseASNList reads a datacenter ASN list: "AS<n>" or "<n>" a line, an
// optional "# name" after it; lines that are only a comment are skipped.
func parseASNList(b []byte, class string) ([]rangeLine, string, error) {
	var out []rangeLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		num, name, _ := strings.Cut(line, "#")
		num = strings.TrimSpace(num)
		num = strings.TrimPrefix(strings.TrimPrefix(num, "AS"), "as")
		asn, err := strconv.ParseUint(num, 10, 32)
		if err != nil || asn == 0 {
			return nil, "", fmt.Errorf("line %d: not an AS number: %q", n, truncate(line, 60))
		}
		name = strings.Join(strings.Fields(name), " ")
		out = append(out, rangeLine{"AS" + strconv.FormatUint(asn, 10), class, name})
	}
	return out, "", sc.Err()
}

func cidrLine(s, class, provider string) (rangeLine, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return rangeLine{}, fmt.Errorf("not a CIDR: %q", truncate(s, 60))
	}
	return rangeLine{p.Masked().String(), class, provider}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// writeAtomic writes b to a temporary file beside path and renames it over
// path, so a reader sees the old file or the whole new one.
func writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("replace %s", path), err)
	}
	return nil
}
