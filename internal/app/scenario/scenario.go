// Package scenario generates the bundled, seeded scenario: raw Google
// Workspace token activity (Reports API pages) for a population of benign
// integrations with daily and weekly rhythm, plus an injected attack, and the
// alerts tokenwatch is expected to raise. Same seed, same bytes: the committed
// files under testdata/scenarios are its output, and a test keeps them so.
package scenario

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Options shape the generated population.
type Options struct {
	Seed         uint64
	Start        time.Time
	Days         int
	Integrations int
	Customer     string
}

// DefaultOptions is the bundled demo scenario.
func DefaultOptions() Options {
	return Options{Seed: 20251026, Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Days: 21, Integrations: 20, Customer: "C03az79cb"}
}

// Attack describes the injected incident, for tests and docs.
type Attack struct {
	ClientID, AppName string
	Start             time.Time
	Country           string
	Events            int
}

// Expected is an alert the scenario must raise. With a Key (and so an ID) it
// names exactly one alert that must be raised; without, it allows any number
// of alerts of that detector for that integration.
type Expected struct {
	ID            string `json:"id,omitempty"`
	Detector      string `json:"detector"`
	IntegrationID string `json:"integration_id"`
	Tenant        string `json:"tenant"`
	Key           string `json:"key,omitempty"`
}

// Output is a generated scenario.
type Output struct {
	Pages    []byte // JSON lines, one Reports API response page per line, newest first
	Expected []Expected
	Attack   Attack
	Records  int
}

// home networks, matching enrich/geoip/gen's table.
var homes = []struct {
	country  string
	prefixes []string
	peakUTC  int // first business hour in UTC
}{
	{"US", []string{"52.4.0.0/16", "35.190.0.0/16", "20.1.0.0/16", "73.12.0.0/16"}, 14},
	{"GB", []string{"81.2.69.0/24", "18.130.0.0/16"}, 8},
	{"DE", []string{"91.64.0.0/16", "3.120.0.0/16"}, 7},
	{"JP", []string{"126.10.0.0/16"}, 0},
	{"FR", []string{"90.10.0.0/16"}, 8},
}

var apis = []struct{ api, method, bucket string }{
	{"gmail", "gmail.users.messages.get", "GMAIL"},
	{"gmail", "gmail.users.messages.list", "GMAIL"},
	{"gmail", "gmail.users.messages.send", "GMAIL"},
	{"drive", "drive.files.get", "DRIVE"},
	{"drive", "drive.files.list", "DRIVE"},
	{"drive", "drive.files.create", "DRIVE"},
	{"calendar", "calendar.events.list", "CALENDAR"},
	{"calendar", "calendar.events.insert", "CALENDAR"},
	{"admin", "directory.users.list", "GSUITE_ADMIN"},
	{"sheets", "sheets.spreadsheets.values.get", "OTHER"},
}

var scopeByAPI = map[string]string{
	"gmail": "https://www.googleapis.com/auth/gmail.readonly", "drive": "https://www.googleapis.com/auth/drive",
	"calendar": "https://www.googleapis.com/auth/calendar", "admin": "https://www.googleapis.com/auth/admin.directory.user.readonly",
	"sheets": "https://www.googleapis.com/auth/spreadsheets.readonly",
}

var appNames = []string{"Pipeline CRM Sync", "Acme Backup", "Calendly Bridge", "DocuFlow", "Zapline", "MailMerge Pro",
	"HR Onboarder", "Drive Archiver", "Expense Bot", "Signal Analytics", "Helpdesk Connector", "Contract Vault",
	"Slides Builder", "Lead Enricher", "Travel Desk", "Invoice Relay", "Recruit Sync", "Survey Hub", "Audit Mirror", "Team Pulse"}

type integ struct {
	clientID, name string
	home           []int // indexes into homes
	ips            []string
	apis           []int
	users          []string
	rate           float64 // events per business hour
	bytesMu        float64
}

type rec struct {
	t   time.Time
	raw map[string]any
}

// Generate builds the scenario for opt.
func Generate(opt Options) (*Output, error) {
	r := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	var ints []integ
	for i := 0; i < opt.Integrations; i++ {
		in := integ{
			clientID: fmt.Sprintf("%012d-%s.apps.googleusercontent.com", 123456789012+int64(i)*7919, shortID(r)),
			name:     appNames[i%len(appNames)],
			rate:     1 + r.Float64()*9,
			bytesMu:  8 + r.Float64()*2.5,
		}
		if i == 0 {
			in.clientID = "123456789012-abc.apps.googleusercontent.com"
		}
		in.home = []int{r.IntN(len(homes))}
		if r.IntN(3) == 0 {
			if h2 := r.IntN(len(homes)); h2 != in.home[0] {
				in.home = append(in.home, h2)
			}
		}
		if i == 0 {
			in.home = []int{0} // the attacked app lives in the US
		}
		// A vendor runs each integration from one region per home country: two
		// addresses of one network there.
		for _, h := range in.home {
			prefix := homes[h].prefixes[r.IntN(len(homes[h].prefixes))]
			in.ips = append(in.ips, randomIP(r, prefix), randomIP(r, prefix))
		}
		n := 2 + r.IntN(3)
		perm := r.Perm(len(apis))
		in.apis = perm[:n]
		if i == 0 {
			in.apis = []int{0, 1, 3, 4} // CRM sync reads mail and drive
		}
		for u := 0; u < 2+r.IntN(6); u++ {
			in.users = append(in.users, fmt.Sprintf("%s%d@example.com", []string{"sales", "ops", "hr", "fin", "eng", "it"}[r.IntN(6)], u))
		}
		ints = append(ints, in)
	}
	var recs []rec
	end := opt.Start.AddDate(0, 0, opt.Days)
	for _, in := range ints {
		// Day one: each user authorizes the app from each home address, so the
		// home countries are learned first thing.
		for k, ip := range in.ips {
			k := k / 2 // one user per home region authorizes from both addresses
			t := opt.Start.Add(time.Duration(9+k)*time.Hour + time.Duration(r.IntN(3600))*time.Second)
			var scopes []string
			for _, a := range in.apis {
				scopes = append(scopes, scopeByAPI[apis[a].api])
			}
			recs = append(recs, rec{t, activity(r, opt.Customer, t, in.users[k%len(in.users)], ip, "authorize", []param{
				{"client_id", in.clientID}, {"app_name", in.name}, {"client_type", "WEB"}}, dedupe(scopes))})
		}
		for h := opt.Start; h.Before(end); h = h.Add(time.Hour) {
			home := homes[in.home[r.IntN(len(in.home))]]
			local := (h.Hour() - home.peakUTC + 24) % 24
			rate := in.rate * 0.08
			if local < 9 {
				rate = in.rate * (0.6 + 0.4*math.Sin(float64(local)/9*math.Pi))
			}
			if wd := h.Weekday(); wd == time.Saturday || wd == time.Sunday {
				rate *= 0.25
			}
			for n := poisson(r, rate); n > 0; n-- {
				t := h.Add(time.Duration(r.Int64N(int64(time.Hour))))
				t = t.Truncate(time.Millisecond)
				a := apis[in.apis[r.IntN(len(in.apis))]]
				// Each user's data is served from the user's home region.
				u := r.IntN(len(in.users))
				hi := u % len(in.home)
				ip := in.ips[2*hi+r.IntN(2)]
				recs = append(recs, rec{t, activity(r, opt.Customer, t, in.users[u], ip, "activity", []param{
					{"api_name", a.api}, {"method_name", a.method}, {"client_id", in.clientID},
					{"num_response_bytes", int64(math.Exp(in.bytesMu + r.NormFloat64()*0.6))},
					{"product_bucket", a.bucket}, {"app_name", in.name}, {"client_type", "WEB"}}, nil)})
			}
		}
	}
	// The attack: a vendor's OAuth client used from Lagos at 02:13 UTC on day 20,
	// bulk-reading mail and drive (the Salesloft-Drift pattern).
	att := Attack{ClientID: ints[0].clientID, AppName: ints[0].name, Start: opt.Start.AddDate(0, 0, 19).Add(2*time.Hour + 13*time.Minute + 7*time.Second + 412*time.Millisecond), Country: "NG", Events: 640}
	attackIPs := []string{"102.89.0.1", "102.89.14.77", "102.89.201.9"}
	for k := 0; k < att.Events; k++ {
		t := att.Start.Add(time.Duration(k) * 3 * time.Second)
		a := apis[[]int{0, 3, 4}[r.IntN(3)]]
		recs = append(recs, rec{t, activity(r, opt.Customer, t, ints[0].users[r.IntN(len(ints[0].users))], attackIPs[k%len(attackIPs)], "activity", []param{
			{"api_name", a.api}, {"method_name", a.method}, {"client_id", att.ClientID},
			{"num_response_bytes", int64(40000 + r.IntN(400000))}, {"product_bucket", a.bucket}, {"app_name", att.AppName}, {"client_type", "WEB"}}, nil)})
	}
	// Newest first, as the Reports API lists them.
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].t.After(recs[j].t) })
	var buf bytes.Buffer
	const pageSize = 1000
	for i := 0; i < len(recs); i += pageSize {
		j := min(i+pageSize, len(recs))
		items := make([]map[string]any, 0, j-i)
		for _, rc := range recs[i:j] {
			items = append(items, rc.raw)
		}
		page := map[string]any{"kind": "admin#reports#activities", "items": items}
		if j < len(recs) {
			page["nextPageToken"] = fmt.Sprintf("A:%d:%s", recs[j].t.UnixMilli(), shortID(r))
		}
		b, err := json.Marshal(page)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	hour := att.Start.Truncate(time.Hour).Format("2006-01-02T15Z")
	exp := []Expected{
		{Detector: "geo.new_country", IntegrationID: att.ClientID, Tenant: opt.Customer, Key: att.Country},
		{Detector: "geo.new_asn", IntegrationID: att.ClientID, Tenant: opt.Customer, Key: "AS29465"},
		{Detector: "volume.spike", IntegrationID: att.ClientID, Tenant: opt.Customer, Key: hour},
		// Each user grant replayed from Lagos soon after its last use in the US;
		// how many depends on the users drawn, so any key is expected.
		{Detector: "geo.impossible_travel", IntegrationID: att.ClientID, Tenant: opt.Customer},
	}
	for i := range exp {
		if exp[i].Key != "" {
			exp[i].ID = schemas.AlertID(exp[i].Detector, exp[i].Tenant, exp[i].IntegrationID, exp[i].Key)
		}
	}
	return &Output{Pages: buf.Bytes(), Expected: exp, Attack: att, Records: len(recs)}, nil
}

type param struct {
	name  string
	value any
}

func activity(r *rand.Rand, customer string, t time.Time, email, ip, event string, ps []param, scopes []string) map[string]any {
	var params []map[string]any
	for _, p := range ps {
		switch v := p.value.(type) {
		case int64:
			params = append(params, map[string]any{"name": p.name, "intValue": fmt.Sprint(v)})
		default:
			params = append(params, map[string]any{"name": p.name, "value": v})
		}
	}
	if len(scopes) > 0 {
		params = append(params, map[string]any{"name": "scope", "multiValue": scopes})
	}
	return map[string]any{
		"kind": "admin#reports#activity",
		"id": map[string]any{"time": t.UTC().Format("2006-01-02T15:04:05.000Z"), "uniqueQualifier": fmt.Sprint(-r.Int64()),
			"applicationName": "token", "customerId": customer},
		"etag":      fmt.Sprintf("\"%s/%s\"", shortID(r), shortID(r)),
		"actor":     map[string]any{"callerType": "USER", "email": email, "profileId": profileID(email)},
		"ipAddress": ip,
		"events":    []map[string]any{{"type": "auth", "name": event, "parameters": params}},
	}
}

func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func randomIP(r *rand.Rand, prefix string) string {
	p := netip.MustParsePrefix(prefix)
	a := p.Addr().As4()
	host := uint32(r.Uint32()) & (1<<(32-p.Bits()) - 1)
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	if v&0xff == 0 || v&0xff == 255 {
		v = v&^0xff | 10
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

func shortID(r *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Gzip compresses b reproducibly (no name, no mtime in the header).
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Files in a scenario directory.
const (
	PagesFile    = "token_activity.jsonl.gz"
	ExpectedFile = "expected_alerts.jsonl"
)

// profileID is a stable 21-digit Google profile id per email.
func profileID(email string) string {
	h := fnv.New64a()
	h.Write([]byte(email))
	return fmt.Sprintf("1%020d", h.Sum64())
}

// Match checks alerts against the expectations: every keyed expectation was
// raised, and every alert is expected (no false positive). It returns the
// problems found, empty when the alerts match.
func Match(expected []Expected, alerts []schemas.Alert) []string {
	var problems []string
	byID := map[string]bool{}
	for _, a := range alerts {
		byID[a.ID] = true
	}
	for _, e := range expected {
		if e.ID != "" && !byID[e.ID] {
			problems = append(problems, fmt.Sprintf("missing %s alert for %s (key %s, id %s)", e.Detector, e.IntegrationID, e.Key, e.ID))
		}
	}
	for _, a := range alerts {
		ok := false
		for _, e := range expected {
			if e.ID == a.ID || (e.ID == "" && e.Detector == a.Detector && e.IntegrationID == a.IntegrationID && e.Tenant == a.Tenant) {
				ok = true
				break
			}
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected %s alert %s for %s: %s", a.Detector, a.ID, a.IntegrationID, a.Title))
		}
	}
	return problems
}

// ReadExpected parses an expected_alerts.jsonl file's bytes.
func ReadExpected(b []byte) ([]Expected, error) {
	var out []Expected
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var e Expected
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("expected alerts: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
