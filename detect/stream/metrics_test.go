package stream

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A failed reload sets the failing gauge the TokenwatchRulesReloadFailing
// alert reads, and the next good one clears it.
func TestReloadFailingGauge(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	steps := []struct {
		err                error
		failing, errs, oks float64
	}{
		{nil, 0, 0, 1},
		{errors.New("rules/x.yml:3: bad"), 1, 1, 1},
		{errors.New("rules/x.yml:4: still bad"), 1, 2, 1},
		{nil, 0, 2, 2},
	}
	for i, s := range steps {
		m.reloaded(s.err)
		if got := testutil.ToFloat64(m.rulesFailing); got != s.failing {
			t.Errorf("step %d: failing %v, want %v", i, got, s.failing)
		}
		if e, o := testutil.ToFloat64(m.ruleReloads.WithLabelValues("error")), testutil.ToFloat64(m.ruleReloads.WithLabelValues("ok")); e != s.errs || o != s.oks {
			t.Errorf("step %d: reloads error %v ok %v, want %v %v", i, e, o, s.errs, s.oks)
		}
	}
}
