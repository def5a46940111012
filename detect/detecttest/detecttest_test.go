package detecttest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// counter alerts on every third event of an integration; the variants below
// each break one rule of the contract.
type counter struct {
	flaw  string
	calls int // detector-held memory: the "leaky" flaw
}

type counterState struct {
	N      int `json:"n"`
	hidden int // not marshalled: the "forgetful" flaw
}

func (s *counterState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }
func (s *counterState) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

func (c *counter) ID() string             { return "test.counter" }
func (c *counter) NewState() detect.State { return &counterState{} }
func (c *counter) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*counterState)
	s.N++
	s.hidden++
	c.calls++
	n := s.N
	key := fmt.Sprint(n)
	switch c.flaw {
	case "forgetful":
		n = s.hidden
	case "wallclock":
		key += time.Now().Format("2006")
	case "leaky":
		key = fmt.Sprint(c.calls)
	case "mutating":
		ev.Action.Name = "changed"
	}
	if n%3 != 0 {
		return nil
	}
	return []detect.Finding{{Key: key, Title: "third", Severity: schemas.SeverityLow, EventIDs: []string{ev.EventID}, FirstSeen: ev.Time.Time, LastSeen: ev.Time.Time}}
}

func events() []schemas.Event {
	var out []schemas.Event
	for i := 0; i < 7; i++ {
		out = append(out, Event(fmt.Sprintf("e%d", i), time.Duration(i)*40*time.Minute))
	}
	return out
}

func TestRunAcceptsAConformingDetector(t *testing.T) {
	got := Run(t, &counter{}, events())
	if k := Keys(got); fmt.Sprint(k) != "[3 6]" {
		t.Errorf("keys = %v, want [3 6]", k)
	}
}

// TestRunCatchesBrokenDetectors runs each flawed detector through Run in a
// child process (a failing Run fails its test) and expects the failure.
func TestRunCatchesBrokenDetectors(t *testing.T) {
	for flaw, want := range map[string]string{
		"forgetful": "round-trip",
		"wallclock": "wall clock",
		"leaky":     "second replay differs",
		"mutating":  "modified event",
	} {
		t.Run(flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFlawedDetector$", "-test.v")
			cmd.Env = append(os.Environ(), "DETECTTEST_FLAW="+flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("Run passed a %s detector:\n%s", flaw, out)
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("failure does not mention %q:\n%s", want, out)
			}
		})
	}
}

// TestFlawedDetector is the child half of TestRunCatchesBrokenDetectors.
func TestFlawedDetector(t *testing.T) {
	flaw := os.Getenv("DETECTTEST_FLAW")
	if flaw == "" {
		t.Skip("child process of TestRunCatchesBrokenDetectors")
	}
	Run(t, &counter{flaw: flaw}, events())
}

// quiet is a Ticker: it reports an integration silent for two hours, once.
type quiet struct{}

type quietState struct {
	Last     int64 `json:"last"`
	Reported bool  `json:"reported"`
}

func (s *quietState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }
func (s *quietState) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

func (quiet) ID() string             { return "test.quiet" }
func (quiet) NewState() detect.State { return &quietState{} }
func (quiet) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*quietState)
	s.Last, s.Reported = ev.Time.UnixMilli(), false
	return nil
}
func (quiet) Tick(wm time.Time, st detect.State) []detect.Finding {
	s := st.(*quietState)
	if s.Reported || wm.Sub(time.UnixMilli(s.Last)) < 2*time.Hour {
		return nil
	}
	s.Reported = true
	return []detect.Finding{{Key: time.UnixMilli(s.Last).UTC().Format(time.RFC3339), FirstSeen: wm, LastSeen: wm}}
}

func TestRunFollowsEngineTicksAcrossIntegrations(t *testing.T) {
	a, b := Event("a1", 0), Event("b1", 30*time.Minute)
	b.Integration.ID = "app-2"
	later := Event("a2", 3*time.Hour+10*time.Minute)
	got := Run(t, quiet{}, []schemas.Event{a, b, later})
	// At the 03:00 tick app-1 (00:00) and app-2 (00:30) are both silent 2h+.
	if k := Keys(got); fmt.Sprint(k) != "[2026-10-05T00:00:00Z 2026-10-05T00:30:00Z]" {
		t.Errorf("keys = %v", k)
	}
}
