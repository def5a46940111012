package spike

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
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

// spikeAt is after the 7-day learning period.
const spikeAt = 8*day + 10*time.Hour

// hourly has perHour events of size bytes every hour for days.
func hourly(days, perHour int, bytes int64) []schemas.Event {
	var out []schemas.Event
	for h := 0; h < days*24; h++ {
		for i := 0; i < perHour; i++ {
			ev := detecttest.Event(fmt.Sprintf("h%d-%d", h, i), time.Duration(h)*time.Hour+time.Duration(i)*time.Second)
			ev.Bytes = bytes
			out = append(out, ev)
		}
	}
	return out
}

// burst is n events of size bytes from at on.
func burst(at time.Duration, n int, bytes int64) []schemas.Event {
	var out []schemas.Event
	for i := 0; i < n; i++ {
		ev := detecttest.Event(fmt.Sprintf("b%d", i), at+time.Duration(i)*time.Second)
		ev.Bytes = bytes
		out = append(out, ev)
	}
	return out
}

func TestSpike(t *testing.T) {
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"event burst far above the hour's baseline alerts once",
			append(hourly(8, 2, 1000), burst(spikeAt, 150, 1000)...), []string{"2026-10-13T10Z"}},
		{"byte burst alerts on bytes",
			append(hourly(8, 2, 1000), burst(spikeAt, 3, 30<<20)...), []string{"2026-10-13T10Z"}},
		{"below the absolute floors stays quiet",
			append(hourly(8, 2, 1000), burst(spikeAt, 90, 1000)...), nil},
		{"during learning stays quiet",
			append(hourly(2, 2, 1000), burst(2*day+10*time.Hour, 150, 1000)...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
		})
	}
}

func TestSpikeStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	for _, ev := range hourly(1, 3, 10) {
		d.Observe(&ev, st)
	}
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := d.NewState()
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := back.MarshalBinary(); string(b) != string(b2) {
		t.Fatalf("round trip changed state:\n%s\n%s", b, b2)
	}
	if m, _, n := back.(*State).EventsP.At(detecttest.T0); m != 3 || n != 1 {
		t.Errorf("restored profile for 00:00 = mean %v n %d, want 3, 1", m, n)
	}
}

// The state keeps its open hour in 32 bits and its JSON in wireState's
// order: a state written by the code before (testdata/state-cd05efa.json,
// cd05efa, thirty hours of 0–3 events) reads back and writes the same
// bytes, and the same events fed now write them too.
func TestStateJSONAsBefore(t *testing.T) {
	golden, err := os.ReadFile("testdata/state-cd05efa.json")
	if err != nil {
		t.Fatal(err)
	}
	d := newDetector(t)
	fed := d.NewState()
	for h := 0; h < 30; h++ {
		for i := 0; i < h%4; i++ {
			ev := detecttest.Event(fmt.Sprintf("g%d-%d", h, i), time.Duration(h)*time.Hour+time.Duration(i)*time.Minute)
			ev.Bytes = int64(1000 * (h + i))
			d.Observe(&ev, fed)
		}
	}
	back := d.NewState()
	if err := back.UnmarshalBinary(golden); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]detect.State{"fed": fed, "read back": back} {
		b, err := st.MarshalBinary()
		if err != nil || string(b) != string(golden) {
			t.Errorf("%s: wrote (%v)\n%s\nwant\n%s", name, err, b, golden)
		}
	}
	if err := back.UnmarshalBinary([]byte(`{"hour":3000000000}`)); err == nil {
		t.Error("an hour past 32 bits read without an error")
	}
}
