package newcountry

import (
	_ "embed"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/detecttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

func newDetector(t *testing.T) detect.Detector {
	t.Helper()
	d, err := New(detecttest.Config(t, sample, ID))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const day = 24 * time.Hour

func from(id string, at time.Duration, country string) schemas.Event {
	ev := detecttest.Event(id, at)
	if country != "" {
		ev.Geo = &schemas.Geo{Country: country, City: "Somewhere", ASN: 64500, ASOrg: "EXAMPLE"}
	}
	return ev
}

// approvedIn attaches a catalog entry approving countries.
func approvedIn(ev schemas.Event, countries ...string) schemas.Event {
	ev.Inventory = &schemas.Inventory{Catalogued: true, ApprovedCountries: countries}
	return ev
}

func TestNewCountry(t *testing.T) {
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"new country after learning alerts once", []schemas.Event{
			from("e1", 0, "DE"), from("e2", 8*day, "RU"), from("e3", 9*day, "RU"),
		}, []string{"RU"}},
		{"countries seen while learning are baseline", []schemas.Event{
			from("e1", 0, "DE"), from("e2", 3*day, "FR"), from("e3", 9*day, "FR"),
		}, nil},
		{"approved countries never alert", []schemas.Event{
			from("e1", 0, "DE"), from("e2", 8*day, "IE"),
		}, nil},
		{"countries the catalog approves for the integration never alert", []schemas.Event{
			from("e1", 0, "DE"), approvedIn(from("e2", 8*day, "PL"), "fr", "PL"), from("e3", 9*day, "PL"),
		}, nil},
		{"another integration's approval does not count", []schemas.Event{
			from("e1", 0, "DE"), approvedIn(from("e2", 8*day, "RU"), "PL"),
		}, []string{"RU"}},
		{"events without geo are skipped", []schemas.Event{
			from("e1", 0, "DE"), from("e2", 8*day, ""),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			detecttest.ExpectKeys(t, newDetector(t), tc.events, tc.want, schemas.SeverityHigh)
		})
	}
}

func TestNewCountryStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	e1 := from("e1", 0, "DE")
	d.Observe(&e1, st)
	back := detecttest.RoundTrip(t, d, st)
	e2 := from("e2", 30*day, "DE")
	if fs := d.Observe(&e2, back); len(fs) != 0 {
		t.Errorf("restored state forgot DE: %v", fs)
	}
}
