package program_test

import (
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	_ "github.com/tokenwatch/tokenwatch/detect/all"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func node(t *testing.T, s string) yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return *n.Content[0]
}

func TestBuildGroupsDetectorsByKeying(t *testing.T) {
	p, err := program.Build(program.Config{}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var registered []string
	for _, s := range detect.Specs() {
		registered = append(registered, s.ID)
	}
	if got := p.DetectorIDs(); !slices.Equal(got, registered) {
		t.Fatalf("enabled %v, registered %v", got, registered)
	}
	if len(p.Stages) != 2 || p.Stages[0].Name() != "detect" || p.Stages[1].Name() != "detect-source_ip" {
		t.Fatalf("stages %v", p.Stages)
	}
	if ids := detectorIDs(p.Stages[1]); !slices.Equal(ids, []string{"chain.shared_ip"}) {
		t.Fatalf("source-IP stage runs %v", ids)
	}
	if slices.Contains(detectorIDs(p.Stages[0]), "chain.shared_ip") {
		t.Fatal("chain.shared_ip also runs on integration-keyed events")
	}
	want := []string{schemas.TopicState, "tokenwatch.rekey.source_ip", "tokenwatch.state.source_ip"}
	if got := p.Topics(); !slices.Equal(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}
	if p.Stages[1].Input() != "tokenwatch.rekey.source_ip" || p.Stages[0].Input() != schemas.TopicEvents {
		t.Fatalf("inputs %s, %s", p.Stages[0].Input(), p.Stages[1].Input())
	}
}

func detectorIDs(s program.Stage) []string {
	var out []string
	for _, d := range s.Detectors {
		out = append(out, d.ID())
	}
	return out
}

func TestBuildHonoursEnabledFalseAndRejectsUnknownIDs(t *testing.T) {
	all, err := program.Build(program.Config{}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	off, err := program.Build(program.Config{Detectors: map[string]yaml.Node{
		"volume.spike": node(t, "enabled: false"), "chain.shared_ip": node(t, "enabled: false")}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(off.DetectorIDs()), len(all.DetectorIDs())-2; got != want {
		t.Fatalf("disabling two detectors: %d left, want %d", got, want)
	}
	if slices.Contains(off.DetectorIDs(), "volume.spike") || len(off.Stages) != 1 {
		t.Fatalf("disabled detectors still run: %v in %d stages", off.DetectorIDs(), len(off.Stages))
	}
	if _, err := program.Build(program.Config{Detectors: map[string]yaml.Node{"geo.nope": {}}}, program.Options{}); err == nil {
		t.Fatal("unknown detector id accepted")
	}
	if _, err := program.Build(program.Config{Detectors: map[string]yaml.Node{"chain.shared_ip": node(t, "min_integrations: 1")}}, program.Options{}); err == nil {
		t.Fatal("a detector's invalid config accepted")
	}
	if _, err := program.Build(program.Config{GeoIP: geoip.Config{City: "/nonexistent.mmdb"}}, program.Options{}); err == nil {
		t.Fatal("a missing GeoIP database accepted")
	}
}

// Replay runs re-keyed records through their stage: three integrations
// from one IP raise chain.shared_ip on the IP's key.
func TestReplayRunsTheReKeyedStage(t *testing.T) {
	p, err := program.Build(program.Config{}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := schemas.NewTime(mustTime(t, "2026-10-20T02:00:00Z"))
	var evs []schemas.Event
	for i, app := range []string{"crm", "hr", "drive"} {
		evs = append(evs, schemas.Event{EventID: app, Source: "okta", Tenant: "acme", Time: schemas.NewTime(base.Add(timeMinutes(i))),
			Integration: schemas.Integration{ID: app}, Action: schemas.Action{Name: "token", Category: "access"},
			Network: schemas.Network{IP: "45.76.10.20"}})
	}
	var got []string
	for _, a := range p.Run(evs) {
		got = append(got, a.Detector+" "+a.IntegrationID)
		// A Go detector's alert carries its Spec's metadata.
		if a.Detector == "chain.shared_ip" && (a.Status != "test" || !slices.Contains(a.Techniques, "T1078.004")) {
			t.Fatalf("chain.shared_ip alert without its metadata: %q %v", a.Status, a.Techniques)
		}
	}
	if !slices.Contains(got, "chain.shared_ip ip:45.76.10.20") {
		t.Fatalf("alerts %v", got)
	}
}
