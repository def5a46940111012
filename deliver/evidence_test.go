package deliver

import "testing"

func TestEvidenceQuery(t *testing.T) {
	tests := []struct {
		name   string
		ids    []string
		maxLen int
		want   string
		n      int
	}{
		{"none", nil, 0, "", 0},
		{"two", []string{"e1", "e2"}, 0, "SELECT * FROM events WHERE event_id IN ('e1', 'e2') ORDER BY time_ms, event_id", 2},
		{"hostile id is a literal", []string{`x') OR 1=1 --\`}, 0, `SELECT * FROM events WHERE event_id IN ('x\') OR 1=1 --\\') ORDER BY time_ms, event_id`, 1},
		{"control characters escaped", []string{"a\nb\x01"}, 0, `SELECT * FROM events WHERE event_id IN ('a\nb\x01') ORDER BY time_ms, event_id`, 1},
		{"truncated to fit", []string{"e1", "e2", "e3"}, 80, "SELECT * FROM events WHERE event_id IN ('e1', 'e2') ORDER BY time_ms, event_id", 2},
		{"always at least one", []string{"e1", "e2"}, 10, "SELECT * FROM events WHERE event_id IN ('e1') ORDER BY time_ms, event_id", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := EvidenceQuery("events", tt.ids, tt.maxLen)
			if got != tt.want || n != tt.n {
				t.Errorf("got (%q, %d)\nwant (%q, %d)", got, n, tt.want, tt.n)
			}
		})
	}
}

func TestValidateTable(t *testing.T) {
	for name, ok := range map[string]bool{"events": true, "tw.events": true, "events; DROP": false, "": false, "a.b.c": false} {
		if err := ValidateTable(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}
