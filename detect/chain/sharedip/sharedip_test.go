package sharedip_test

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/chain/sharedip"
	"github.com/tokenwatch/tokenwatch/detect/detecttest"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

func detector(t *testing.T) *sharedip.Detector {
	t.Helper()
	var cfg map[string]yaml.Node
	if err := yaml.Unmarshal(sample, &cfg); err != nil {
		t.Fatal(err)
	}
	node := cfg[sharedip.ID]
	d, err := sharedip.New(node.Decode)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var t0 = time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC)

// sightings: integration i seen at ip after offset.
func sightings(uses ...any) []schemas.Event {
	var out []schemas.Event
	s := detect.NewRekeyer(detect.BySourceIP)
	for i := 0; i < len(uses); i += 3 {
		ev := schemas.Event{EventID: fmt.Sprintf("e%d", i/3), Source: "okta", Tenant: "acme", Time: schemas.NewTime(t0.Add(uses[i+2].(time.Duration))),
			Integration: schemas.Integration{ID: uses[i].(string)}, Action: schemas.Action{Name: "token", Category: "access"},
			Network: schemas.Network{IP: uses[i+1].(string)}}
		var sg schemas.Event
		if s.Rekey(&ev, &sg) {
			out = append(out, sg)
		}
	}
	return out
}

func TestSharedIP(t *testing.T) {
	d := detector(t)
	tests := []struct {
		name   string
		events []schemas.Event
		want   int
	}{
		{"three integrations from one host in minutes", sightings("crm", "45.76.1.1", 0*time.Minute, "hr", "45.76.1.1", 5*time.Minute, "drive-sync", "45.76.1.1", 9*time.Minute), 1},
		{"one integration calling a lot", sightings("crm", "45.76.1.1", 0*time.Minute, "crm", "45.76.1.1", 5*time.Minute, "crm", "45.76.1.1", 9*time.Minute), 0},
		{"three integrations, hours apart", sightings("crm", "45.76.1.1", 0*time.Minute, "hr", "45.76.1.1", 2*time.Hour, "drive-sync", "45.76.1.1", 4*time.Hour), 0},
		{"three integrations, three hosts", sightings("crm", "45.76.1.1", time.Duration(0), "hr", "45.76.1.2", time.Minute, "drive-sync", "45.76.1.3", 2*time.Minute), 0},
		{"a fourth integration in the same hour is the same incident", sightings("a", "9.9.9.9", time.Duration(0), "b", "9.9.9.9", time.Minute, "c", "9.9.9.9", 2*time.Minute, "d", "9.9.9.9", 3*time.Minute), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := detecttest.Run(t, d, tc.events)
			if len(fs) != tc.want {
				t.Fatalf("%d alerts, want %d: %+v", len(fs), tc.want, fs)
			}
			if tc.want == 1 && len(fs[0].EventIDs) < 3 {
				t.Errorf("evidence %v", fs[0].EventIDs)
			}
		})
	}
}

func TestRegisteredKeyedBySourceIP(t *testing.T) {
	spec, err := detect.Lookup(sharedip.ID)
	if err != nil {
		t.Fatal(err)
	}
	if spec.KeyedBy.Name != detect.BySourceIP.Name {
		t.Fatalf("keyed by %q, want %q", spec.KeyedBy.Name, detect.BySourceIP.Name)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	var cfg map[string]yaml.Node
	yaml.Unmarshal([]byte("chain.shared_ip: {min_integrations: 1}"), &cfg)
	node := cfg[sharedip.ID]
	if _, err := sharedip.New(node.Decode); err == nil {
		t.Fatal("min_integrations 1 accepted")
	}
}

// Records reach the source-IP stage from every events partition in no fixed
// order: any interleaving must raise the alert ids time order raises.
func TestArrivalOrderDoesNotChangeTheAlerts(t *testing.T) {
	d := detector(t)
	evs := sightings(
		"crm", "45.76.1.1", 0*time.Minute, "hr", "45.76.1.1", 50*time.Minute, "drive-sync", "45.76.1.1", 95*time.Minute,
		"crm", "45.76.1.1", 23*time.Hour+50*time.Minute, "hr", "45.76.1.1", 24*time.Hour+10*time.Minute, "mail", "45.76.1.1", 24*time.Hour+20*time.Minute,
		"a", "9.9.9.9", 5*time.Hour, "b", "9.9.9.9", 7*time.Hour, "c", "9.9.9.9", 9*time.Hour)
	ids := func(evs []schemas.Event) []string {
		e := engine.New([]detect.Detector{d})
		var out []string
		for i := range evs {
			for _, a := range e.Observe(&evs[i]) {
				out = append(out, a.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	want := ids(evs)
	if len(want) != 2 {
		t.Fatalf("time order raised %d alerts, want 2 (one per day at 45.76.1.1, none at 9.9.9.9)", len(want))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		shuffled := slices.Clone(evs)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := ids(shuffled); !slices.Equal(got, want) {
			t.Fatalf("order %d: alerts %v, time order %v", i, got, want)
		}
	}
}
