package corpus

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"
)

// site is a network from enrich/geoip/gen's Networks table, so every address
// the corpus uses resolves in the test GeoIP databases.
type site struct {
	name, prefix, country string
	hosting               bool // hosting ASN (cloud) vs ISP
}

const (
	awsUS = iota
	gcpUS
	azureUS
	awsGB
	awsDE
	comcastUS
	aaGB
	vodafoneDE
	orangeFR
	softbankJP
	jioIN
	bredbandSE
	// attacker infrastructure only
	vultrUS
	torDE
	mtnNG
)

var sites = []site{
	awsUS:      {"aws-us-east", "52.0.0.0/11", "US", true},       // AS16509 Ashburn
	gcpUS:      {"gcp-us-central", "35.190.0.0/16", "US", true},  // AS15169 Council Bluffs
	azureUS:    {"azure-us-east", "20.0.0.0/11", "US", true},     // AS8075 Boydton
	awsGB:      {"aws-eu-west-2", "18.130.0.0/16", "GB", true},   // AS16509 London
	awsDE:      {"aws-eu-central-1", "3.120.0.0/14", "DE", true}, // AS16509 Frankfurt
	comcastUS:  {"comcast", "73.0.0.0/8", "US", false},           // AS7922 Chicago
	aaGB:       {"andrews-arnold", "81.2.69.0/24", "GB", false},  // AS20712 London
	vodafoneDE: {"vodafone-de", "91.64.0.0/14", "DE", false},     // AS3209 Berlin
	orangeFR:   {"orange-fr", "90.0.0.0/9", "FR", false},         // AS3215 Paris
	softbankJP: {"softbank", "126.0.0.0/8", "JP", false},         // AS17676 Tokyo
	jioIN:      {"jio", "49.32.0.0/12", "IN", false},             // AS55836 Mumbai
	bredbandSE: {"bredband2", "89.160.20.0/24", "SE", false},     // AS29518 Linköping
	vultrUS:    {"vultr", "45.76.0.0/16", "US", true},            // AS20473 Piscataway
	torDE:      {"tor-exits", "185.220.100.0/22", "DE", true},    // AS60729 (Tor exits)
	mtnNG:      {"mtn-nigeria", "102.89.0.0/16", "NG", false},    // AS29465 Lagos
}

// vendorRegions are where SaaS vendors run, with weights.
var vendorRegions = []struct{ site, weight int }{{awsUS, 35}, {gcpUS, 15}, {azureUS, 20}, {awsGB, 15}, {awsDE, 15}}

// tenants: the companies whose SaaS estates the corpus covers. Single-tenant
// sources (one file per source) are normalized with the label below; Google
// and GitHub records carry their tenant (customerId, org).
type tenant struct {
	name, googleCustomer, githubOrg string
	home                            int // ISP site most employees are at
	peakUTC                         int // first business hour, UTC
	others                          []int
}

var tenants = []tenant{
	{"acme", "C01acme7x", "acme-corp", comcastUS, 14, []int{aaGB, jioIN}},
	{"globex", "C02globex", "globex", aaGB, 8, []int{vodafoneDE, orangeFR, bredbandSE}},
	{"initech", "C03initch", "initech", softbankJP, 0, []int{comcastUS}},
}

var sourceTenant = map[string]string{
	"google_workspace": "", "github": "", // per record
	"okta": "initech", "slack": "acme", "microsoft": "globex", "salesforce": "acme",
}

func tenantByName(n string) tenant {
	for _, t := range tenants {
		if t.name == n {
			return t
		}
	}
	return tenants[0]
}

const (
	kindVendor    = iota // server-to-server from the vendor's cloud
	kindDelegated        // user-delegated client on people's devices
)

type user struct {
	id, email string
	region    int // index into integ.regions (vendor) — the region serving this user
	home      int // ISP site (delegated)
	trips     []trip
}

// trip: the user flies on day depart (silent that day), is at dest until
// back (silent that day too), so any two fixes are ≥24h apart and no
// credential ever moves faster than a plane.
type trip struct{ depart, back, dest int }

func (u *user) where(day int) (site int, silent bool) {
	for _, tr := range u.trips {
		switch {
		case day == tr.depart || day == tr.back:
			return 0, true
		case day > tr.depart && day < tr.back:
			return tr.dest, false
		}
	}
	return u.home, false
}

type integ struct {
	src, tenant string
	id, name    string // Integration.ID after normalization, display name
	kind        int
	sub         string // source-specific flavour (github: app, oauth, pat; microsoft: apponly, delegated; okta: service, delegated)
	regions     []int  // vendor regions (sites)
	users       []*user
	ua          string
	uaSwitchDay int
	uaSwitch    string
	rate        float64 // events per business hour
	peakUTC     int
	batchHour   int // daily job hour (UTC), -1 none
	batchSize   int
	weeklyJob   bool // the batch job runs on Mondays only, bigger
	ops         []op
	scopes      []string
	bytesMu     float64
	first, last int // active days
	rotate      int // days between IP pool rotations within the vendor's network
	// noise
	expandDay    int // from this day odd users are served from expandTo (same cloud ASN, new country); -1 none
	expandTo     int
	failover     int // failover region (shares the credential), -1 none
	failoverProb float64
	activeActive bool // every call from any region (shares the credential)
	scopeDay     int  // benign vendor update asking for more scopes; -1 none
	failRate     float64
	// per-source details
	aux    map[string]string
	victim bool // a labelled scenario's integration

}

// op is one operation an integration performs, in the source's vocabulary.
type op struct {
	name, target, extra string
	write               bool
}

// act is one abstract record before rendering into a vendor's shape.
type act struct {
	t      time.Time
	in     *integ
	u      *user
	ip, ua string
	kind   int
	op     *op
	fail   bool
	bytes  int64
	rows   int64
	res    string // resource instance (repo, file, entity, graph object id)
	scopes []string
	prev   []string // scopes before a change
	cred   string
	region int // site index
	flag   string
}

const (
	actUse = iota
	actAuthorize
	actRevoke
	actScopes // scopes expanded (Slack) / consent update
	actSignIn // Microsoft service-principal sign-in
	actAdmin  // credential rotation and other app management
)

type gen struct {
	opt     Options
	r       *rand.Rand
	end     time.Time
	ints    []*integ
	acts    map[string][]act
	labels  []Label
	victims []*integ        // scenarios[i]'s integration
	sfNames map[string]bool // Salesforce connected app names given
}

func newGen(opt Options) *gen {
	return &gen{opt: opt, r: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x5851f42d4c957f2d)),
		end: opt.Start.AddDate(0, 0, opt.Days), acts: map[string][]act{}, sfNames: map[string]bool{}}
}

func (g *gen) day(d int) time.Time { return g.opt.Start.AddDate(0, 0, d) }

func (g *gen) emit(a act) { g.acts[a.in.src] = append(g.acts[a.in.src], a) }

// sourceShare is how the population splits across sources (per mille).
var sourceShare = []struct {
	src   string
	share int
}{{"google_workspace", 260}, {"github", 200}, {"microsoft", 180}, {"okta", 130}, {"slack", 120}, {"salesforce", 110}}

func (g *gen) population() {
	n := g.opt.Integrations - len(scenarios)
	counts := map[string]int{}
	left := n
	for _, s := range sourceShare[1:] {
		counts[s.src] = n * s.share / 1000
		left -= counts[s.src]
	}
	counts["google_workspace"] = left
	for _, s := range sourceShare {
		for i := 0; i < counts[s.src]; i++ {
			g.ints = append(g.ints, g.newInteg(s.src, ""))
		}
	}
	g.noise()
	for _, sc := range scenarios {
		in := sc.victim(g)
		in.victim = true
		g.victims = append(g.victims, in)
		g.ints = append(g.ints, in)
	}
}

// noise assigns the rarer benign behaviours to a few integrations each.
func (g *gen) noise() {
	pick := func(n int, ok func(*integ) bool, set func(*integ)) {
		for _, in := range g.ints {
			if n == 0 {
				return
			}
			if ok(in) && in.expandDay < 0 && in.failover < 0 && !in.activeActive && in.uaSwitchDay < 0 && in.scopeDay < 0 {
				set(in)
				n--
			}
		}
	}
	onAWSUS := func(in *integ) bool {
		return in.kind == kindVendor && len(in.regions) == 1 && in.regions[0] == awsUS && in.first == 0 && in.last == g.opt.Days-1
	}
	// Vendors opening a region in a new country on the same cloud (same ASN).
	pick(2, func(in *integ) bool { return in.src == "google_workspace" && onAWSUS(in) && len(in.users) > 1 },
		func(in *integ) { in.expandDay, in.expandTo = 24+g.r.IntN(6), awsGB })
	pick(1, func(in *integ) bool { return in.src == "salesforce" && onAWSUS(in) },
		func(in *integ) { in.expandDay, in.expandTo = 26, awsDE; in.users = append(in.users, g.newUser(in, 1)) })
	// Multi-region service principals sharing one client secret.
	pick(1, func(in *integ) bool { return in.sub == "apponly" && onAWSUS(in) }, func(in *integ) {
		in.activeActive = true
		in.regions = append(in.regions, awsDE)
	})
	pick(3, func(in *integ) bool { return in.sub == "apponly" && onAWSUS(in) }, func(in *integ) {
		in.failover, in.failoverProb = awsGB, 0.08
	})
	// Vendors switching HTTP client library.
	pick(1, func(in *integ) bool { return in.sub == "app" && in.first == 0 }, func(in *integ) {
		in.uaSwitchDay, in.uaSwitch = 27, "Go-http-client/2.0"
	})
	pick(1, func(in *integ) bool { return in.sub == "service" && in.first == 0 }, func(in *integ) {
		in.uaSwitchDay, in.uaSwitch = 29, "okhttp/4.12.0"
	})
	// A vendor update asking for more scopes.
	pick(1, func(in *integ) bool { return in.src == "slack" && in.first == 0 }, func(in *integ) { in.scopeDay = 22 })
}

func (g *gen) newUser(in *integ, k int) *user {
	t := tenantByName(in.tenant)
	u := &user{home: t.home}
	if g.r.IntN(5) == 0 && len(t.others) > 0 {
		u.home = t.others[g.r.IntN(len(t.others))]
	}
	roles := []string{"sales", "ops", "hr", "fin", "eng", "it", "legal", "support"}
	u.email = fmt.Sprintf("%s.%s%d@%s.example", roles[g.r.IntN(len(roles))], shortID(g.r, 4), k, t.name)
	u.id = u.email
	if len(in.regions) > 0 {
		u.region = k % len(in.regions)
	}
	return u
}

func (g *gen) newInteg(src, sub string) *integ {
	r := g.r
	in := &integ{src: src, tenant: sourceTenant[src], batchHour: -1, expandDay: -1, failover: -1, uaSwitchDay: -1, scopeDay: -1,
		last: g.opt.Days - 1, rotate: 5 + r.IntN(10), aux: map[string]string{}}
	if in.tenant == "" {
		in.tenant = tenants[r.IntN(len(tenants))].name
	}
	t := tenantByName(in.tenant)
	in.peakUTC = t.peakUTC
	in.kind = kindVendor
	switch src {
	case "google_workspace", "microsoft", "okta":
		if r.IntN(10) < 3 {
			in.kind = kindDelegated
		}
	}
	in.sub = sub
	if in.sub == "" {
		in.sub = defaultSub(src, in.kind, r)
	}
	if in.sub == "delegated" {
		in.kind = kindDelegated
	}
	if in.kind == kindVendor {
		in.regions = []int{pickRegion(r)}
		// Per-user grants (Google, GitHub OAuth) may be served from the
		// region holding each user's data; an app-level credential (a
		// client secret, an installation) is used from one region.
		if perUser := src == "google_workspace" || in.sub == "oauth"; perUser && r.IntN(5) == 0 {
			if s := pickRegion(r); sites[s].country != sites[in.regions[0]].country {
				in.regions = append(in.regions, s)
			}
		}
	}
	in.rate = math.Min(20, math.Max(0.15, math.Exp(math.Log(1.2)+r.NormFloat64()*0.8)))
	in.bytesMu = 8 + r.Float64()*2.5
	in.failRate = 0.002 + r.Float64()*0.006
	if in.kind == kindVendor && r.IntN(100) < 18 {
		in.batchHour = r.IntN(24)
		in.batchSize = 20 + r.IntN(90)
		if r.IntN(5) == 0 {
			in.weeklyJob, in.batchSize = true, 120+r.IntN(150)
		}
	}
	switch p := r.IntN(100); {
	case p < 8:
		in.first = 1 + r.IntN(20) // onboarded during the corpus
	case p < 12:
		in.last = g.opt.Days - 2 - r.IntN(12) // decommissioned
	}
	nu := 2 + r.IntN(6)
	if in.kind == kindDelegated {
		nu = 3 + r.IntN(10)
	}
	for k := 0; k < nu; k++ {
		in.users = append(in.users, g.newUser(in, k))
	}
	if in.kind == kindDelegated {
		for _, u := range in.users {
			if r.IntN(10) == 0 {
				dest := []int{comcastUS, aaGB, vodafoneDE, orangeFR, softbankJP, jioIN, bredbandSE}[r.IntN(7)]
				if sites[dest].country != sites[u.home].country {
					d := 8 + r.IntN(g.opt.Days-16)
					u.trips = append(u.trips, trip{depart: d, back: d + 4 + r.IntN(4), dest: dest})
				}
			}
		}
	}
	setupSource(g, in)
	return in
}

func defaultSub(src string, kind int, r *rand.Rand) string {
	switch src {
	case "github":
		return []string{"app", "app", "app", "oauth", "oauth", "pat"}[r.IntN(6)]
	case "microsoft":
		if kind == kindDelegated {
			return "delegated"
		}
		return "apponly"
	case "okta":
		if kind == kindDelegated {
			return "delegated"
		}
		return "service"
	}
	return ""
}

func pickRegion(r *rand.Rand) int {
	total := 0
	for _, v := range vendorRegions {
		total += v.weight
	}
	n := r.IntN(total)
	for _, v := range vendorRegions {
		if n < v.weight {
			return v.site
		}
		n -= v.weight
	}
	return awsUS
}

// benign generates every integration's normal activity.
func (g *gen) benign() {
	for _, in := range g.ints {
		g.lifecycleStart(in)
		for d := in.first; d <= in.last; d++ {
			g.dayOf(in, d)
		}
	}
}

// lifecycleStart: the grants that start an integration's history. Google
// and Okta grants are per user (Google's from the vendor's servers, as the
// bundled demo scenario models them; Okta's from wherever the user is); the
// others are one tenant-wide install or admin consent from an admin's
// browser. Salesforce ApiEvent and GitHub PATs log no grant. Slack apps
// present from day 0 were installed before the corpus window: Slack logs no
// token id, so the connector derives one per (app, workspace), and an
// install from an admin's browser followed by the vendor's calls reads as
// one credential in two places (geo.impossible_travel); the apps onboarded
// during the corpus show that once each.
func (g *gen) lifecycleStart(in *integ) {
	if in.src == "salesforce" || in.sub == "pat" {
		return
	}
	if in.src == "slack" && in.first == 0 {
		return // installed before the corpus starts (see the comment above)
	}
	base := g.day(in.first).Add(time.Duration(in.peakUTC)*time.Hour + 30*time.Minute)
	for k, u := range in.users {
		t := base.Add(time.Duration(k)*7*time.Minute + time.Duration(g.r.IntN(300))*time.Second)
		a := act{t: t, in: in, u: u, kind: actAuthorize, ua: browserUA, scopes: in.scopes}
		switch {
		case in.src == "google_workspace" && in.kind == kindVendor:
			a.region = in.regions[u.region]
			a.ip, a.ua = g.vendorIP(in, a.region, in.first), in.ua
		case in.src == "google_workspace" || in.src == "okta":
			a.region, _ = u.where(in.first)
			a.ip, a.ua = g.userIP(u, a.region, in.first), in.uaOn(in.first)
			if in.kind == kindVendor {
				a.region = in.regions[u.region]
				a.ip = g.vendorIP(in, a.region, in.first)
			}
		default:
			a.region = tenantByName(in.tenant).home
			a.ip = g.adminIP(in, in.first)
		}
		g.emit(a)
		if in.src != "google_workspace" && in.src != "okta" {
			break
		}
	}
}

func (g *gen) adminIP(in *integ, d int) string {
	return hashIP(sites[tenantByName(in.tenant).home].prefix, in.tenant, "admin", fmt.Sprint(d/7))
}

const browserUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15"

func (g *gen) dayOf(in *integ, d int) {
	r := g.r
	day := g.day(d)
	failDay := in.failover >= 0 && d >= 1 && r.Float64() < in.failoverProb
	failFrom, failTo := -1, -1
	if failDay {
		failFrom = 6 + r.IntN(12)
		failTo = failFrom + 2 + r.IntN(4)
	}
	signedIn := map[int64]bool{}
	for h := 0; h < 24; h++ {
		hour := day.Add(time.Duration(h) * time.Hour)
		local := (h - in.peakUTC + 24) % 24
		rate := in.rate * 0.08
		if local < 9 {
			rate = in.rate * (0.6 + 0.4*math.Sin(float64(local)/9*math.Pi))
		}
		if wd := hour.Weekday(); wd == time.Saturday || wd == time.Sunday {
			rate *= 0.25
		}
		n := poisson(r, rate)
		if h == in.batchHour && (!in.weeklyJob || hour.Weekday() == time.Monday) {
			n += in.batchSize
		}
		for ; n > 0; n-- {
			t := hour.Add(time.Duration(r.Int64N(int64(time.Hour)))).Truncate(time.Millisecond)
			u := in.users[r.IntN(len(in.users))]
			a := act{t: t, in: in, u: u, kind: actUse}
			if in.kind == kindDelegated {
				s, silent := u.where(d)
				if silent {
					continue
				}
				a.region, a.ip, a.ua = s, g.userIP(u, s, d), in.uaOn(d)
			} else {
				reg := in.regions[u.region]
				switch {
				case in.activeActive:
					reg = in.regions[r.IntN(len(in.regions))]
				case failDay && h >= failFrom && h < failTo:
					reg = in.failover
				case in.expandDay >= 0 && d >= in.expandDay && indexOf(in.users, u)%2 == 1:
					reg = in.expandTo
				}
				a.region, a.ip, a.ua = reg, g.vendorIP(in, reg, d), in.uaOn(d)
			}
			a.op = &in.ops[r.IntN(len(in.ops))]
			a.bytes = int64(math.Exp(in.bytesMu + r.NormFloat64()*0.6))
			a.rows = int64(math.Exp(2 + r.Float64()*4))
			a.fail = r.Float64() < in.failRate
			if in.sub == "apponly" && !signedIn[hour.Unix()*100+int64(a.region)] {
				signedIn[hour.Unix()*100+int64(a.region)] = true
				s := a
				s.kind, s.t = actSignIn, hour.Add(time.Duration(r.IntN(90))*time.Second)
				g.emit(s)
			}
			g.emit(a)
		}
	}
	g.dailyLifecycle(in, d)
}

// dailyLifecycle: the occasional grant, revoke, secret rotation and vendor
// update of a living integration.
func (g *gen) dailyLifecycle(in *integ, d int) {
	r := g.r
	t := g.day(d).Add(time.Duration(in.peakUTC+2)%24*time.Hour + time.Duration(r.IntN(3600))*time.Second)
	site := tenantByName(in.tenant).home
	adminIP := g.adminIP(in, d)
	switch {
	case d == in.scopeDay:
		extra := []string{"reactions:write", "users:read.email"}
		g.emit(act{t: t, in: in, u: in.users[0], kind: actScopes, ip: adminIP, ua: browserUA, scopes: extra, prev: in.scopes, region: site})
		in.scopes = append(in.scopes, extra...)
	case in.src == "microsoft" && in.sub == "apponly" && d > in.first && d%30 == int(hashN(in.id)%30):
		// client secret rotation: a new key id from now on
		g.emit(act{t: t, in: in, u: in.users[0], kind: actAdmin, ip: adminIP, ua: browserUA, region: site, op: &op{name: "Update application – Certificates and secrets management"}})
	case in.src == "google_workspace" && d > in.first && r.IntN(40) == 0:
		// a user's grant revoked and re-granted (token reset), within seconds
		u := in.users[r.IntN(len(in.users))]
		s, silent := u.where(d)
		if silent {
			return
		}
		ip := g.userIP(u, s, d)
		if in.kind == kindVendor {
			s = in.regions[u.region]
			ip = g.vendorIP(in, s, d)
		}
		g.emit(act{t: t, in: in, u: u, kind: actRevoke, ip: ip, region: s})
		g.emit(act{t: t.Add(20 * time.Second), in: in, u: u, kind: actAuthorize, ip: ip, scopes: in.scopes, region: s})
	}
}

func (in *integ) uaOn(d int) string {
	if in.uaSwitchDay >= 0 && d >= in.uaSwitchDay {
		return in.uaSwitch
	}
	return in.ua
}

// keyID is the Microsoft client secret in use on day d (rotated monthly).
func (in *integ) keyID(d int) string {
	epoch := (d + 30 - int(hashN(in.id)%30)) / 30
	return guidFrom(in.id, "key", fmt.Sprint(epoch))
}

// vendorIP is one of the vendor's few egress addresses in region reg; the
// pool moves within the region's network every in.rotate days.
func (g *gen) vendorIP(in *integ, reg, d int) string {
	return hashIP(sites[reg].prefix, in.id, fmt.Sprint(reg), fmt.Sprint(d/in.rotate), fmt.Sprint(g.r.IntN(3)))
}

// userIP is the user's address at site on day d (a home line re-leased weekly).
func (g *gen) userIP(u *user, s, d int) string {
	return hashIP(sites[s].prefix, u.id, fmt.Sprint(d/7))
}

func indexOf(us []*user, u *user) int {
	for i, v := range us {
		if v == u {
			return i
		}
	}
	return -1
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

func hashN(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// hashIP derives a stable host address inside prefix from parts.
func hashIP(prefix string, parts ...string) string {
	p := netip.MustParsePrefix(prefix)
	a := p.Addr().As4()
	base := binary.BigEndian.Uint32(a[:])
	host := uint32(hashN(parts...)) & (1<<(32-p.Bits()) - 1)
	v := base | host
	if v&0xff == 0 || v&0xff == 255 {
		v = v&^0xff | 10
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b).String()
}

func guidFrom(parts ...string) string {
	a, b := hashN(parts...), hashN(append(parts, "2")...)
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0xfff, b&0xffffffffffff)
}

func (g *gen) guid() string {
	a, b := g.r.Uint64(), g.r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&0xffffffffffff)
}

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func shortID(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[r.IntN(len(alnum))]
	}
	return string(b)
}

func b62(r *rand.Rand, n int) string {
	const s = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = s[r.IntN(len(s))]
	}
	return string(b)
}
