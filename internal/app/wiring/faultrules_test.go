package wiring_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"gopkg.in/yaml.v3"
)

// The fault suite scrapes each role's /metrics as Prometheus would
// (deploy/prometheus/prometheus.yml: job "tokenwatch", a role label; up 0 and
// staleness markers when a scrape fails) and evaluates the shipped rules of
// deploy/prometheus/alerts.yml on what it scraped with Prometheus's own PromQL
// engine, at every scrape instant. The rules' `for:` durations are minutes
// and the suite's faults seconds, so "fires" here means the rule's
// expression holds; each rule's longest span is logged.

// promStore holds the scraped series and serves them to the PromQL engine.
type promStore struct {
	mu     sync.Mutex
	series map[string]*promSeries // by labels.String()
	last   map[string][]string    // role → series keys of its last successful scrape
	times  map[int64]bool         // every scrape instant (ms)
}

type promSeries struct {
	lset labels.Labels
	ts   []int64
	vs   []float64
}

func newPromStore() *promStore {
	return &promStore{series: map[string]*promSeries{}, last: map[string][]string{}, times: map[int64]bool{}}
}

// scrape fetches one role's /metrics and records it at the time it returns.
func (s *promStore) scrape(role, url string) {
	var fams map[string]*dto.MetricFamily
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err == nil {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = p.TextToMetricFamilies(resp.Body)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := time.Now().UnixMilli()
	s.times[t] = true
	target := labels.FromStrings("job", "tokenwatch", "role", role, "instance", role)
	if err != nil {
		// What Prometheus does for a failed scrape: up 0, and every series of
		// the last scrape marked stale so it stops answering queries.
		for _, k := range s.last[role] {
			s.add(s.series[k].lset, t, math.Float64frombits(value.StaleNaN))
		}
		s.last[role] = nil
		s.add(labels.NewBuilder(target).Set("__name__", "up").Labels(), t, 0)
		return
	}
	s.add(labels.NewBuilder(target).Set("__name__", "up").Labels(), t, 1)
	var keys []string
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			b := labels.NewBuilder(target)
			for _, lp := range m.GetLabel() {
				b.Set(lp.GetName(), lp.GetValue())
			}
			put := func(name string, v float64, extra ...string) {
				bb := labels.NewBuilder(b.Labels()).Set("__name__", name)
				for i := 0; i+1 < len(extra); i += 2 {
					bb.Set(extra[i], extra[i+1])
				}
				l := bb.Labels()
				s.add(l, t, v)
				keys = append(keys, l.String())
			}
			switch {
			case m.Counter != nil:
				put(name, m.Counter.GetValue())
			case m.Gauge != nil:
				put(name, m.Gauge.GetValue())
			case m.Untyped != nil:
				put(name, m.Untyped.GetValue())
			case m.Histogram != nil:
				for _, bk := range m.Histogram.GetBucket() {
					put(name+"_bucket", float64(bk.GetCumulativeCount()), "le", fmt.Sprint(bk.GetUpperBound()))
				}
				put(name+"_bucket", float64(m.Histogram.GetSampleCount()), "le", "+Inf")
				put(name+"_sum", m.Histogram.GetSampleSum())
				put(name+"_count", float64(m.Histogram.GetSampleCount()))
			case m.Summary != nil:
				for _, q := range m.Summary.GetQuantile() {
					put(name, q.GetValue(), "quantile", fmt.Sprint(q.GetQuantile()))
				}
				put(name+"_sum", m.Summary.GetSampleSum())
				put(name+"_count", float64(m.Summary.GetSampleCount()))
			}
		}
	}
	s.last[role] = keys
}

func (s *promStore) add(l labels.Labels, t int64, v float64) {
	k := l.String()
	ps := s.series[k]
	if ps == nil {
		ps = &promSeries{lset: l}
		s.series[k] = ps
	}
	if n := len(ps.ts); n > 0 && ps.ts[n-1] >= t {
		return // one sample per millisecond and series, in order
	}
	ps.ts, ps.vs = append(ps.ts, t), append(ps.vs, v)
}

// run scrapes every role every interval until ctx ends.
func (s *promStore) run(ctx context.Context, urls map[string]string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		for role, u := range urls {
			s.scrape(role, u)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// instants are the scrape times, in order.
func (s *promStore) instants() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int64, 0, len(s.times))
	for t := range s.times {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Querier makes promStore a storage.Queryable.
func (s *promStore) Querier(mint, maxt int64) (storage.Querier, error) {
	return promQuerier{s: s, mint: mint, maxt: maxt}, nil
}

type promQuerier struct {
	s          *promStore
	mint, maxt int64
}

func (q promQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	var out []storage.Series
	keys := make([]string, 0, len(q.s.series))
	for k := range q.s.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
next:
	for _, k := range keys {
		ps := q.s.series[k]
		for _, m := range ms {
			if !m.Matches(ps.lset.Get(m.Name)) {
				continue next
			}
		}
		var smp []chunks.Sample
		for i, t := range ps.ts {
			if t >= q.mint && t <= q.maxt {
				smp = append(smp, fsample{t: t, f: ps.vs[i]})
			}
		}
		if len(smp) > 0 {
			out = append(out, storage.NewListSeries(ps.lset, smp))
		}
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &seriesList{s: out, i: -1}
}

func (promQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (promQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (promQuerier) Close() error { return nil }

type seriesList struct {
	s []storage.Series
	i int
}

func (l *seriesList) Next() bool                        { l.i++; return l.i < len(l.s) }
func (l *seriesList) At() storage.Series                { return l.s[l.i] }
func (l *seriesList) Err() error                        { return nil }
func (l *seriesList) Warnings() annotations.Annotations { return nil }

type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }

// shippedRules reads alert name → expression from deploy/prometheus/alerts.yml.
func shippedRules(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// firing is, per rule, the instants (ms) at which its expression returned
// something, and the label sets it returned.
type firing struct {
	at     []int64
	labels map[string]labels.Labels
}

// evalRules evaluates every expression at every scrape instant.
func evalRules(t *testing.T, s *promStore, rules map[string]string) map[string]*firing {
	t.Helper()
	ng := promql.NewEngine(promql.EngineOpts{MaxSamples: 5_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	out := map[string]*firing{}
	ctx := context.Background()
	for name, expr := range rules {
		f := &firing{labels: map[string]labels.Labels{}}
		out[name] = f
		for _, ts := range s.instants() {
			q, err := ng.NewInstantQuery(ctx, s, nil, expr, time.UnixMilli(ts))
			if err != nil {
				t.Fatalf("alerts.yml %s: %v", name, err)
			}
			res := q.Exec(ctx)
			if res.Err != nil {
				t.Fatalf("alerts.yml %s at %d: %v", name, ts, res.Err)
			}
			v, err := res.Vector()
			if err != nil {
				t.Fatalf("alerts.yml %s: %v", name, err)
			}
			if len(v) > 0 {
				f.at = append(f.at, ts)
				for _, smp := range v {
					f.labels[smp.Metric.String()] = smp.Metric
				}
			}
			q.Close()
		}
	}
	return out
}

// during reports whether the rule held at an instant in [from, to].
func (f *firing) during(from, to time.Time) bool {
	for _, ts := range f.at {
		if ts >= from.UnixMilli() && ts <= to.UnixMilli() {
			return true
		}
	}
	return false
}

// longest is the longest run of consecutive instants at which the rule held.
func (f *firing) longest(instants []int64) time.Duration {
	held := map[int64]bool{}
	for _, ts := range f.at {
		held[ts] = true
	}
	var best time.Duration
	start := int64(-1)
	for _, ts := range instants {
		switch {
		case held[ts] && start < 0:
			start = ts
		case !held[ts]:
			start = -1
		}
		if start >= 0 {
			best = max(best, time.Duration(ts-start)*time.Millisecond)
		}
	}
	return best
}

// named reports whether the rule held for a series with label name=value.
func (f *firing) named(name, value string) bool {
	for _, l := range f.labels {
		if l.Get(name) == value {
			return true
		}
	}
	return false
}

func (f *firing) summary() string {
	var ls []string
	for l := range f.labels {
		ls = append(ls, l)
	}
	sort.Strings(ls)
	return strings.Join(ls, " ")
}
