package all

import (
	"slices"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver"
)

func TestEverySinkIsLinkedIn(t *testing.T) {
	kinds := deliver.Kinds()
	for _, k := range []string{"slack", "splunk_hec", "pagerduty", "syslog", "webhook"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("sink kind %q not registered (have %v): add its blank import to all.go", k, kinds)
		}
	}
}
