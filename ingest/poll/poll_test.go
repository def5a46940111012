package poll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	_ "github.com/tokenwatch/tokenwatch/ingest/googleworkspace"
)

// pollerConfig is the YAML an operator would write for the fake, page size 3.
func pollerConfig(t *testing.T, f *fakeGoogle, extra string) Config {
	t.Helper()
	doc := fmt.Sprintf(`
source: google_workspace
tenant: acme
base_url: %s
overlap: 1h
initial_lookback: 24h
retry_max_elapsed: 20s
%s
config:
  token: %s
  max_results: 3
`, f.srv.URL, extra, f.token)
	var c Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func newPoller(t *testing.T, cfg Config, store cursor.Store, pub Publisher, log *slog.Logger) *Poller {
	t.Helper()
	p, err := NewFromConfig(cfg, store, pub, log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pollToEnd runs cycles until the pass in progress is finished.
func pollToEnd(t *testing.T, p *Poller) {
	t.Helper()
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("pass never finished")
		}
		if err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if p.st.pass == nil {
			return
		}
	}
}

func TestPollerResumesAfterPublisherFailureWithoutGapOrDuplicate(t *testing.T) {
	f := newFakeGoogle(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	f.add(seq("r", 10, now.Add(-5*time.Minute))...) // 4 pages of 3, 3, 3, 1
	cfg := pollerConfig(t, f, "")
	store := cursor.NewMemory()
	pub := &recorder{fail: func(call int) error {
		if call == 2 {
			return errors.New("kafka: not enough replicas")
		}
		return nil
	}}

	// First process: page 1 published and saved, page 2 refused.
	p1 := newPoller(t, cfg, store, pub, nil)
	if err := p1.PollOnce(context.Background()); err == nil {
		t.Fatal("PollOnce succeeded though the publisher refused page 2")
	}
	if got := len(pub.ids()); got != 3 {
		t.Fatalf("after the failure %d events are published, want page 1's 3", got)
	}
	saved, ok, _ := store.Load(context.Background(), "google_workspace", "acme")
	if !ok || saved.Token == "" {
		t.Fatalf("cursor after page 1 not saved mid-pass: %+v", saved)
	}

	// Restart: a new poller on the same store finishes the pass, then polls
	// again (overlap re-read), then a third process polls once more.
	pub.fail = nil
	p2 := newPoller(t, cfg, store, pub, nil)
	pollToEnd(t, p2)
	if err := p2.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	p3 := newPoller(t, cfg, store, pub, nil)
	if err := p3.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, pub.ids(), f.servedIDs())
	if len(f.servedIDs()) != 10 {
		t.Fatalf("server served %d of 10 records", len(f.servedIDs()))
	}
}

func TestPollerResumesAfterCancelMidPageWithoutGapOrDuplicate(t *testing.T) {
	f := newFakeGoogle(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	f.add(seq("c", 8, now.Add(-2*time.Minute))...)
	cfg := pollerConfig(t, f, "")
	store := cursor.NewMemory()
	pub := &recorder{}

	ctx, cancel := context.WithCancel(context.Background())
	f.onRequest = func(rctx context.Context, n int) {
		if n == 2 { // the poller dies while page 2 is in flight
			cancel()
			<-rctx.Done()
		}
	}
	p1 := newPoller(t, cfg, store, pub, nil)
	if err := p1.PollOnce(ctx); err == nil {
		t.Fatal("PollOnce survived its cancellation")
	}
	if got := len(pub.ids()); got != 3 {
		t.Fatalf("%d events published before the kill, want 3", got)
	}
	f.onRequest = nil
	p2 := newPoller(t, cfg, store, pub, nil)
	pollToEnd(t, p2)
	if err := p2.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, pub.ids(), f.servedIDs())
	if len(f.servedIDs()) != 8 {
		t.Fatalf("server served %d of 8 records", len(f.servedIDs()))
	}
}

func TestPollerPicksUpLateRecordInsideOverlapExactlyOnce(t *testing.T) {
	f := newFakeGoogle(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	f.add(seq("on-time", 5, now.Add(-time.Minute))...)
	cfg := pollerConfig(t, f, "")
	store := cursor.NewMemory()
	pub := &recorder{}
	p := newPoller(t, cfg, store, pub, nil)
	pollToEnd(t, p)
	if got := len(pub.ids()); got != 5 {
		t.Fatalf("first pass published %d, want 5", got)
	}

	// Google now shows a record that happened 40 minutes ago, older than
	// everything the poller has read: a resume at the last event time would
	// never see it. And one 3 hours old: later than the 1h overlap, out of
	// contract, so it must not be expected.
	late := fakeRecord{at: now.Add(-40 * time.Minute), uq: "late-40m"}
	tooLate := fakeRecord{at: now.Add(-3 * time.Hour), uq: "late-3h"}
	f.add(late, tooLate)
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A restarted poller re-reads the window too, and must not repeat it.
	p2 := newPoller(t, cfg, store, pub, nil)
	if err := p2.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, id := range pub.ids() {
		switch id {
		case late.eventID():
			n++
		case tooLate.eventID():
			t.Errorf("a record later than the overlap was published: the window is wider than configured")
		}
	}
	if n != 1 {
		t.Fatalf("late record published %d times, want exactly 1", n)
	}
	if got := len(pub.ids()); got != 6 {
		t.Fatalf("%d events published in all, want 6", got)
	}
}

func TestPollerWaitsRetryAfterOn429(t *testing.T) {
	f := newFakeGoogle(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	f.add(seq("rl", 7, now.Add(-time.Minute))...)
	f.limited[2] = true // the request for page 2
	cfg := pollerConfig(t, f, "")
	pub := &recorder{}
	p := newPoller(t, cfg, cursor.NewMemory(), pub, nil)
	pollToEnd(t, p)

	reqs := f.log()
	var limited *fakeRequest
	for i := range reqs {
		if reqs[i].status == 429 {
			limited = &reqs[i]
			if i+1 >= len(reqs) {
				t.Fatal("no request after the 429")
			}
			next := reqs[i+1]
			if wait := next.received.Sub(limited.answered); wait < time.Second {
				t.Fatalf("next request %s after the 429 with Retry-After: 1, want ≥ 1s", wait)
			}
			if next.query != limited.query {
				t.Errorf("retry asked %q, want the same page %q", next.query, limited.query)
			}
		}
	}
	if limited == nil {
		t.Fatal("the fake never answered 429")
	}
	assertExactlyOnce(t, pub.ids(), f.servedIDs())
}

func TestPollerRejectedCredentialsSaveNothingAndAreNeverLogged(t *testing.T) {
	f := newFakeGoogle(t)
	f.add(seq("a", 2, time.Now().Add(-time.Minute))...)
	cfg := pollerConfig(t, f, "")
	cfg.RetryMaxElapsed = time.Second
	f.token = "the-server-wants-another-token"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := cursor.NewMemory()
	p := newPoller(t, cfg, store, &recorder{}, log)
	err := p.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("PollOnce with a rejected token: %v", err)
	}
	if store.Saves() != 0 {
		t.Fatal("a cursor was saved though nothing was read")
	}
	all := logs.String() + err.Error() + fmt.Sprintf("%+v %v", cfg, cfg)
	if strings.Contains(all, "ya29.test-token-do-not-log") {
		t.Fatalf("the credential leaked into logs or errors:\n%s", all)
	}
	if !strings.Contains(logs.String(), "fetch failed, retrying") {
		t.Fatalf("no retry logged:\n%s", logs.String())
	}
}

func TestRunPollsUntilCancelled(t *testing.T) {
	f := newFakeGoogle(t)
	f.add(seq("run", 4, time.Now().Add(-time.Minute))...)
	cfg := pollerConfig(t, f, "poll_interval: 1s")
	pub := &recorder{}
	p := newPoller(t, cfg, cursor.NewMemory(), pub, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = p.Run(ctx) })
	deadline := time.Now().Add(10 * time.Second)
	for len(pub.ids()) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	f.add(fakeRecord{at: time.Now().Add(-10 * time.Second), uq: "run-new"})
	for len(pub.ids()) < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	assertExactlyOnce(t, pub.ids(), f.servedIDs())
	if len(pub.ids()) != 5 {
		t.Fatalf("Run published %d events, want 5", len(pub.ids()))
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("source: okta\ntenant: acme\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Overlap != DefaultOverlap || c.PollInterval != DefaultPollInterval || c.MaxPagesPerPoll != DefaultMaxPagesPerPoll {
		t.Fatalf("defaults not applied: %+v", c)
	}
	for _, tc := range []struct{ doc, want string }{
		{"tenant: a", "source: required"},
		{"source: okta", "tenant: required"},
		{"source: okta\ntenant: a\npoll_interval: 10ms", "poll_interval"},
		{"source: okta\ntenant: a\noverlap: -1h", "overlap"},
		{"source: okta\ntenant: a\nmax_pages_per_poll: 0", "max_pages_per_poll"},
		{"source: okta\ntenant: a\nbase_url: ftp://x", "base_url"},
	} {
		var c Config
		err := yaml.Unmarshal([]byte(tc.doc), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want one naming %s", tc.doc, err, tc.want)
		}
	}
	c = DefaultConfig()
	c.Source, c.Tenant = "no_such_source", "a"
	if _, err := c.NewSource(nil); err == nil || !strings.Contains(err.Error(), "unknown source") {
		t.Fatalf("unknown source: %v", err)
	}
}

func TestSeenSetRoundTripsPrunesAndCaps(t *testing.T) {
	t0 := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	s := newSeenSet(100)
	for i := range 50 {
		s.add(hashID("event", "acme", fmt.Sprint(i)), t0.Add(time.Duration(i)*time.Minute))
	}
	back, err := decodeSeenSet(s.encode(), 100)
	if err != nil || back.len() != 50 || !back.has(hashID("event", "acme", "49")) {
		t.Fatalf("round trip: %v len %d", err, back.len())
	}
	back.prune(t0.Add(30 * time.Minute))
	if back.len() != 20 || back.has(hashID("event", "acme", "29")) || !back.has(hashID("event", "acme", "30")) {
		t.Fatalf("prune kept %d", back.len())
	}
	small := newSeenSet(10)
	for i := range 25 {
		small.add(hashID("event", "acme", fmt.Sprint(i)), t0.Add(time.Duration(i)*time.Minute))
	}
	if small.len() > 10 || !small.has(hashID("event", "acme", "24")) || small.has(hashID("event", "acme", "0")) {
		t.Fatalf("cap: len %d", small.len())
	}
	if _, err := decodeSeenSet([]string{"nonsense"}, 10); err == nil {
		t.Fatal("a corrupt entry decoded")
	}
}
