package correlate_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/schemas"
)

var t0 = time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC)

var known = []string{"geo.new_country", "geo.new_asn", "lifecycle.new_user_agent", "geo.impossible_travel",
	"lifecycle.use_after_revoke", "volume.spike", "chain.shared_ip", "inventory.expired",
	"inventory.review_overdue"}

func newCorrelator(t *testing.T) *correlate.Correlator {
	t.Helper()
	c, err := correlate.New(correlate.DefaultConfig(), known)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// step is one moment of a key's life: an event raising some alerts, or a
// tick of the watermark.
type step struct {
	at     time.Duration
	alerts []string // detectors, all high
	tick   bool
}

func event(at time.Duration) *schemas.Event {
	return &schemas.Event{EventID: "e", Source: "google_workspace", Tenant: "acme", Time: schemas.NewTime(t0.Add(at)),
		Integration: schemas.Integration{ID: "crm", Name: "Pipeline CRM Sync"}, Principal: schemas.Principal{ID: "ops@acme.test"},
		Resource: schemas.Resource{Type: "file", ID: "f1"}, Bytes: 1000, Network: schemas.Network{IP: "102.89.0.1"}}
}

func alert(det string, at time.Duration) schemas.Alert {
	return schemas.Alert{ID: det + "@" + at.String(), Detector: det, Severity: schemas.SeverityHigh, Tenant: "acme", IntegrationID: "crm",
		Title: det + " fired", FirstSeen: schemas.NewTime(t0.Add(at))}
}

// run plays steps through one key's state, round-tripping the state through
// its JSON between steps as a checkpoint would, and returns the versions.
func run(t *testing.T, c *correlate.Correlator, steps []step) []schemas.Incident {
	t.Helper()
	st := c.NewState()
	var out []schemas.Incident
	for _, s := range steps {
		if s.tick {
			out = append(out, c.Tick("acme", "crm", t0.Add(s.at), st)...)
		} else {
			var as []schemas.Alert
			for _, d := range s.alerts {
				as = append(as, alert(d, s.at))
			}
			out = append(out, c.Observe("acme", "crm", event(s.at), as, t0.Add(s.at), st)...)
		}
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		fresh := c.NewState()
		if err := fresh.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		st = fresh
	}
	return out
}

func TestIncidentsOpenGrowAndResolve(t *testing.T) {
	c := newCorrelator(t)
	tests := []struct {
		name  string
		steps []step
		// want: "id-index:version:status" per version produced, the id
		// index counting distinct incidents in order.
		want []string
	}{
		{"a lone novelty stays a signal", []step{{at: 0, alerts: []string{"geo.new_country"}}}, nil},
		{"a traveller's new country and network stay signals", []step{{at: 0, alerts: []string{"geo.new_country", "geo.new_asn"}}}, nil},
		{"three detectors on one event open an incident", []step{{at: 0, alerts: []string{"geo.new_country", "geo.new_asn", "lifecycle.new_user_agent"}}},
			[]string{"0:1:open"}},
		{"a high-confidence signal opens one at once", []step{{at: 0, alerts: []string{"lifecycle.use_after_revoke"}}}, []string{"0:1:open"}},
		{"an overdue review is hygiene: alone, even repeated, it stays a signal", []step{
			{at: 0, alerts: []string{"inventory.review_overdue"}}, {at: time.Hour, alerts: []string{"inventory.review_overdue"}}}, nil},
		{"signals spread over hours add up", []step{
			{at: 0, alerts: []string{"geo.new_country"}}, {at: time.Hour, alerts: []string{"geo.new_asn"}},
			{at: 3 * time.Hour, alerts: []string{"volume.spike"}}}, []string{"0:1:open"}},
		{"signals days apart do not", []step{
			{at: 0, alerts: []string{"geo.new_country"}}, {at: 4 * 24 * time.Hour, alerts: []string{"geo.new_asn"}},
			{at: 8 * 24 * time.Hour, alerts: []string{"volume.spike"}}}, nil},
		{"one detector repeating is one story", []step{
			{at: 0, alerts: []string{"geo.impossible_travel"}}, {at: time.Minute, alerts: []string{"geo.impossible_travel"}},
			{at: 2 * time.Minute, alerts: []string{"geo.impossible_travel"}}, {at: 3 * time.Minute, alerts: []string{"geo.impossible_travel"}}}, nil},
		{"later signals join the open incident, quiet resolves it, a new story is a new incident", []step{
			{at: 0, alerts: []string{"lifecycle.use_after_revoke"}},
			{at: time.Hour, alerts: []string{"geo.new_country"}},
			{at: 2 * time.Hour, tick: true},
			{at: 2*time.Hour + 72*time.Hour, tick: true},
			{at: 100 * time.Hour, alerts: []string{"lifecycle.use_after_revoke"}},
		}, []string{"0:1:open", "0:2:open", "0:3:resolved", "1:1:open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, c, tt.steps)
			ids := map[string]int{}
			var desc []string
			for _, inc := range got {
				if _, ok := ids[inc.ID]; !ok {
					ids[inc.ID] = len(ids)
				}
				desc = append(desc, strings.Join([]string{itoa(ids[inc.ID]), itoa(inc.Version), inc.Status}, ":"))
			}
			if !reflect.DeepEqual(desc, tt.want) {
				t.Fatalf("versions %v, want %v", desc, tt.want)
			}
		})
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestIncidentTellsTheStory(t *testing.T) {
	c := newCorrelator(t)
	got := run(t, c, []step{
		{at: 0, alerts: []string{"geo.new_country"}},
		{at: time.Minute, alerts: []string{"geo.new_asn", "lifecycle.new_user_agent"}},
	})
	if len(got) != 1 {
		t.Fatalf("%d versions", len(got))
	}
	inc := got[0]
	if inc.ID != schemas.IncidentID("acme", "crm", "geo.new_country@0s") {
		t.Errorf("id %s is not derived from the first signal", inc.ID)
	}
	if len(inc.Timeline) != 3 || inc.Timeline[0].Detector != "geo.new_country" || inc.RiskScore < 100 {
		t.Errorf("timeline %+v, risk %v", inc.Timeline, inc.RiskScore)
	}
	if inc.IntegrationID != "crm" || !reflect.DeepEqual(inc.IntegrationIDs, []string{"crm"}) || inc.Severity != schemas.SeverityHigh {
		t.Errorf("integration %s %v severity %s", inc.IntegrationID, inc.IntegrationIDs, inc.Severity)
	}
	if inc.Blast.Events != 2 || inc.Blast.Bytes != 2000 || len(inc.Blast.Resources) != 1 || inc.Blast.Principals[0] != "ops@acme.test" {
		t.Errorf("blast radius %+v", inc.Blast)
	}
	if !strings.Contains(inc.Title, "Pipeline CRM Sync") || !strings.Contains(inc.Summary, "not in the catalog") ||
		len(inc.Next) < 2 || !strings.Contains(inc.Next[0], "/admin/directory/v1/users/") {
		t.Errorf("title %q summary %q next %q", inc.Title, inc.Summary, inc.Next)
	}
}

// The incident carries its detectors' metadata: the ATT&CK techniques of
// every signal, each once and sorted, and each detector's runbook once among
// the next steps, before the pivot query.
func TestIncidentCarriesRuleMetadata(t *testing.T) {
	c := newCorrelator(t)
	meta := map[string]schemas.Alert{
		"geo.new_country":          {Techniques: []string{"T1550.001", "T1078.004"}, Runbook: "Ask where the new country comes from."},
		"geo.new_asn":              {Techniques: []string{"T1078.004"}, Runbook: "Look the network up."},
		"lifecycle.new_user_agent": {Techniques: []string{"T1550.001"}},
	}
	st := c.NewState()
	var got []schemas.Incident
	for i, d := range []string{"geo.new_country", "geo.new_asn", "lifecycle.new_user_agent", "geo.new_asn"} {
		at := time.Duration(i) * time.Minute
		a := alert(d, at)
		a.Techniques, a.Runbook = meta[d].Techniques, meta[d].Runbook
		got = append(got, c.Observe("acme", "crm", event(at), []schemas.Alert{a}, t0.Add(at), st)...)
	}
	if len(got) == 0 {
		t.Fatal("no incident")
	}
	inc := got[len(got)-1]
	if !reflect.DeepEqual(inc.Techniques, []string{"T1078.004", "T1550.001"}) {
		t.Errorf("techniques %v", inc.Techniques)
	}
	var runbooks []string
	for _, n := range inc.Next {
		if strings.HasPrefix(n, "geo.") {
			runbooks = append(runbooks, n)
		}
	}
	want := []string{"geo.new_country: Ask where the new country comes from.", "geo.new_asn: Look the network up."}
	if !reflect.DeepEqual(runbooks, want) || !strings.HasPrefix(inc.Next[len(inc.Next)-1], "SELECT") {
		t.Errorf("next %q: want the runbooks %q once each, the pivot query last", inc.Next, want)
	}
	if inc.Timeline[0].Runbook == "" || len(inc.Timeline[0].Techniques) != 2 {
		t.Errorf("signal %+v lacks its detector's metadata", inc.Timeline[0])
	}
}

// A source-IP group names the integrations seen at the IP.
func TestSourceIPGroupNamesItsIntegrations(t *testing.T) {
	cfg := correlate.DefaultConfig()
	cfg.Immediate = append(cfg.Immediate, "chain.shared_ip")
	c, err := correlate.New(cfg, known)
	if err != nil {
		t.Fatal(err)
	}
	a := schemas.Alert{ID: "sip", Detector: "chain.shared_ip", Severity: schemas.SeverityHigh, Tenant: "acme", IntegrationID: "ip:45.76.1.1",
		FirstSeen: schemas.NewTime(t0), Observed: json.RawMessage(`{"ip":"45.76.1.1","integrations":["hr","crm","drive"]}`)}
	st := c.NewState()
	got := c.Observe("acme", detect.IPKeyPrefix+"45.76.1.1", nil, []schemas.Alert{a}, t0, st)
	if len(got) != 1 || got[0].IntegrationID != "crm" || !reflect.DeepEqual(got[0].IntegrationIDs, []string{"crm", "drive", "hr"}) {
		t.Fatalf("%+v", got)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	for name, mut := range map[string]func(*correlate.Config){
		"no threshold":          func(c *correlate.Config) { c.Threshold = 0 },
		"negative weight":       func(c *correlate.Config) { c.Weights = map[string]float64{"geo.new_asn": -1} },
		"weight of no detector": func(c *correlate.Config) { c.Weights = map[string]float64{"geo.nope": 10} },
		"immediate unknown":     func(c *correlate.Config) { c.Immediate = []string{"geo.nope"} },
		"no quiet":              func(c *correlate.Config) { c.Quiet = 0 },
		"empty sensitive scope": func(c *correlate.Config) { c.SensitiveScopes = []string{""} },
	} {
		cfg := correlate.DefaultConfig()
		mut(&cfg)
		if _, err := correlate.New(cfg, known); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// book is a fixed set of analyst decisions.
type book map[string]schemas.Decision

func (b book) Decision(id string) (schemas.Decision, bool) { d, ok := b[id]; return d, ok }

func (b book) Suppressed(tenant, key string, t time.Time) bool {
	for _, d := range b {
		if d.Action == schemas.DecisionSuppress && d.Tenant == tenant && d.Key == key && d.Until != nil && t.Before(d.Until.Time) {
			return true
		}
	}
	return false
}

func TestAnalystDecisionsAreHonoured(t *testing.T) {
	open := func(c *correlate.Correlator, st detect.State, at time.Duration) []schemas.Incident {
		return c.Observe("acme", "crm", event(at), []schemas.Alert{alert("lifecycle.use_after_revoke", at)}, t0.Add(at), st)
	}
	t.Run("acknowledged", func(t *testing.T) {
		c, b := newCorrelator(t), book{}
		c.SetDecisions(b)
		st := c.NewState()
		first := open(c, st, 0)[0]
		b[first.ID] = schemas.Decision{IncidentID: first.ID, Action: schemas.DecisionAcknowledge}
		got := c.Observe("acme", "crm", event(time.Hour), []schemas.Alert{alert("geo.new_country", time.Hour)}, t0.Add(time.Hour), st)
		if len(got) != 1 || got[0].ID != first.ID || got[0].Status != schemas.IncidentAcknowledged || got[0].Version != 2 {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("resolved closes on the next tick; later signals are a new story", func(t *testing.T) {
		c, b := newCorrelator(t), book{}
		c.SetDecisions(b)
		st := c.NewState()
		first := open(c, st, 0)[0]
		b[first.ID] = schemas.Decision{IncidentID: first.ID, Action: schemas.DecisionResolve}
		closed := c.Tick("acme", "crm", t0.Add(time.Hour), st)
		if len(closed) != 1 || closed[0].Status != schemas.IncidentResolved || closed[0].Version != 2 {
			t.Fatalf("%+v", closed)
		}
		again := open(c, st, 2*time.Hour)
		if len(again) != 1 || again[0].ID == first.ID || again[0].Version != 1 {
			t.Fatalf("%+v", again)
		}
	})
	t.Run("suppressed opens nothing until it ends", func(t *testing.T) {
		c, b := newCorrelator(t), book{}
		c.SetDecisions(b)
		st := c.NewState()
		first := open(c, st, 0)[0]
		until := schemas.NewTime(t0.Add(48 * time.Hour))
		b[first.ID] = schemas.Decision{IncidentID: first.ID, Tenant: "acme", Key: "crm", Action: schemas.DecisionSuppress, Until: &until}
		got := open(c, st, time.Hour)
		if len(got) != 1 || got[0].ID != first.ID || got[0].Status != schemas.IncidentSuppressed {
			t.Fatalf("the suppressed incident was not closed as suppressed: %+v", got)
		}
		if got := open(c, st, 24*time.Hour); len(got) != 0 {
			t.Fatalf("a suppressed key opened %+v", got)
		}
		if got := open(c, st, 49*time.Hour); len(got) != 1 || got[0].Status != schemas.IncidentOpen {
			t.Fatalf("after the suppression: %+v", got)
		}
	})
}

// A shadow alert is no signal: use after revoke opens an incident at once,
// and its shadow twin opens none, even beside a live signal too weak alone.
func TestShadowAlertsAreNoSignals(t *testing.T) {
	c := newCorrelator(t)
	for _, tc := range []struct {
		name   string
		shadow []bool // per alert: use_after_revoke, geo.new_asn
		want   int    // incident versions
		alerts int    // alerts in the incident
	}{
		{"live", []bool{false, false}, 2, 2}, // opens, then the second signal joins
		{"immediate one shadow", []bool{true, false}, 0, 0},
		{"weak one shadow", []bool{false, true}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := []schemas.Alert{alert("lifecycle.use_after_revoke", 0), alert("geo.new_asn", 0)}
			for i := range as {
				as[i].Shadow = tc.shadow[i]
			}
			incs := c.Observe("acme", "crm", event(0), as, t0, c.NewState())
			if len(incs) != tc.want {
				t.Fatalf("%d incident versions, want %d", len(incs), tc.want)
			}
			if tc.want > 0 && len(incs[len(incs)-1].AlertIDs) != tc.alerts {
				t.Fatalf("incident alerts %v, want %d", incs[len(incs)-1].AlertIDs, tc.alerts)
			}
		})
	}
}

// Three distinct behavioural detectors within the breadth window open an
// incident even when their risk sums below the threshold (three low-severity
// Sigma rules, say); repeats of one detector, catalog posture findings, or the
// same three spread over hours do not.
func TestBreadthOpensOnDistinctDetectors(t *testing.T) {
	low := func(det string, at time.Duration) schemas.Alert {
		a := alert(det, at)
		a.Severity = schemas.SeverityLow
		return a
	}
	type sig struct {
		det string
		at  time.Duration
	}
	for _, tc := range []struct {
		name    string
		breadth int
		sigs    []sig
		opensAt time.Duration // -1: no incident
	}{
		{"three within the window", 3, []sig{{"geo.new_country", 0}, {"geo.new_asn", 10 * time.Minute}, {"lifecycle.new_user_agent", 30 * time.Minute}}, 30 * time.Minute},
		{"off", 0, []sig{{"geo.new_country", 0}, {"geo.new_asn", 10 * time.Minute}, {"lifecycle.new_user_agent", 30 * time.Minute}}, -1},
		{"spread over hours", 3, []sig{{"geo.new_country", 0}, {"geo.new_asn", 2 * time.Hour}, {"lifecycle.new_user_agent", 4 * time.Hour}}, -1},
		{"one detector repeated", 3, []sig{{"geo.new_asn", 0}, {"geo.new_asn", time.Minute}, {"geo.new_asn", 2 * time.Minute}}, -1},
		{"posture does not count", 3, []sig{{"inventory.review_overdue", 0}, {"geo.new_asn", time.Minute}, {"lifecycle.new_user_agent", 2 * time.Minute}}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := correlate.DefaultConfig()
			cfg.Breadth = tc.breadth
			c, err := correlate.New(cfg, known)
			if err != nil {
				t.Fatal(err)
			}
			st := c.NewState()
			var opened []time.Duration
			for _, s := range tc.sigs {
				for _, inc := range c.Observe("acme", "crm", event(s.at), []schemas.Alert{low(s.det, s.at)}, t0.Add(s.at), st) {
					if inc.Version == 1 {
						opened = append(opened, s.at)
						if inc.RiskScore >= cfg.Threshold {
							t.Fatalf("risk %.1f: the case does not test breadth (it crosses the threshold)", inc.RiskScore)
						}
					}
				}
			}
			switch {
			case tc.opensAt < 0 && len(opened) > 0:
				t.Fatalf("opened at %v, want no incident", opened)
			case tc.opensAt >= 0 && (len(opened) != 1 || opened[0] != tc.opensAt):
				t.Fatalf("opened at %v, want once at %v", opened, tc.opensAt)
			}
		})
	}
	bad := correlate.DefaultConfig()
	bad.Breadth = 1
	if _, err := correlate.New(bad, known); err == nil || !strings.Contains(err.Error(), "detect.correlate.breadth") {
		t.Fatalf("breadth 1: %v, want an error naming the field", err)
	}
}
