// Package poll drives one Source for one tenant: it schedules passes over the
// vendor's audit log, re-reads a trailing overlap window for late events,
// drops what it already published, publishes the rest, and only then saves
// its cursor. It owns retries (rate limits honoured, other errors with
// exponential backoff and jitter) and nothing vendor-specific: paging and auth
// are the connector's, durability the Publisher's and the cursor.Store's.
//
// It must not import detect, enrich or deliver.
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Publisher is where a poller sends a page's outcome. Each call returns nil
// only once everything passed is durable (acknowledged by Kafka): the poller
// saves its cursor after that and never before. *publish.Publisher satisfies it.
type Publisher interface {
	Events(ctx context.Context, evs []schemas.Event) error
	DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error
}

// ErrCorruptCursor is returned when the stored cursor cannot be read back.
// Run stops on it: silently starting over would re-publish a whole lookback.
var ErrCorruptCursor = errors.New("stored poll cursor is unreadable")

// Poller polls one source for one tenant. Use it from one goroutine.
type Poller struct {
	// OnError, when set, is told of every failed poll cycle (metrics);
	// OnSuccess of every cycle that completed (readiness).
	OnError   func(error)
	OnSuccess func()

	src   ingest.Source
	cfg   Config
	store cursor.Store
	pub   Publisher
	log   *slog.Logger
	now   func() time.Time

	loaded bool
	st     state
}

// state is what the poller keeps, and stores as an ingest.Cursor:
//
//	Time        frontier: the newest event time published (never later than
//	            the wall clock); the next pass starts at frontier - overlap.
//	Token       "" between passes; during a pass, the connector's own cursor
//	            as JSON, so a restart resumes the listing after the last page
//	            that was published.
//	SeenAtTime  the dedup set of the overlap window (seenSet.encode), so a
//	            restarted poller does not publish again what the overlap
//	            re-reads.
type state struct {
	frontier time.Time
	pass     *ingest.Cursor
	seen     *seenSet
}

// New returns a poller of src. The cursor is loaded on the first poll.
func New(src ingest.Source, cfg Config, store cursor.Store, pub Publisher, log *slog.Logger) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || store == nil || pub == nil {
		return nil, errors.New("poll: source, cursor store and publisher are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "poll", "source", src.Name(), "tenant", cfg.Tenant)
	return &Poller{src: src, cfg: cfg, store: store, pub: pub, log: log, now: time.Now}, nil
}

// NewFromConfig builds the connector from cfg (see Config.NewSource) and its poller.
func NewFromConfig(cfg Config, store cursor.Store, pub Publisher, log *slog.Logger) (*Poller, error) {
	src, err := cfg.NewSource(nil)
	if err != nil {
		return nil, err
	}
	return New(src, cfg, store, pub, log)
}

// Run polls until ctx ends: a pass, then poll_interval, then the next pass. A
// pass cut short by max_pages_per_poll continues at once. A failed cycle is
// retried from the same cursor after an exponential backoff with jitter (at
// least the vendor's Retry-After); nothing is skipped. It returns nil when ctx
// ends and an error only when the stored cursor is unreadable.
func (p *Poller) Run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 2 * time.Second
	bo.MaxInterval = 5 * time.Minute
	bo.MaxElapsedTime = 0 // never give up: the cursor waits, the log is kept by the vendor
	p.log.Info("poller started", "poll_interval", p.cfg.PollInterval, "overlap", p.cfg.Overlap)
	for {
		err := p.PollOnce(ctx)
		if ctx.Err() != nil {
			p.log.Info("poller stopped")
			return nil
		}
		if errors.Is(err, ErrCorruptCursor) {
			return err
		}
		wait := p.cfg.PollInterval
		switch {
		case err != nil:
			if p.OnError != nil {
				p.OnError(err)
			}
			wait = bo.NextBackOff()
			var rl *ingest.RateLimitError
			if errors.As(err, &rl) && rl.RetryAfter > wait {
				wait = rl.RetryAfter
			}
			p.log.Warn("poll failed, retrying from the saved cursor", "err", err, "wait", wait)
		case p.st.pass != nil:
			bo.Reset()
			wait = 0
		default:
			bo.Reset()
		}
		if err == nil && p.OnSuccess != nil {
			p.OnSuccess()
		}
		if sleep(ctx, wait) != nil {
			p.log.Info("poller stopped")
			return nil
		}
	}
}

// PollOnce runs one cycle: it resumes the pass in progress or starts one at
// frontier - overlap, and reads pages until the vendor says Done or
// max_pages_per_poll is reached. Each page is normalized, stripped of what
// was already published, published, and only after the publisher returned
// nil is the cursor saved. An error leaves the saved cursor where the last
// published page put it.
func (p *Poller) PollOnce(ctx context.Context) error {
	if err := p.load(ctx); err != nil {
		return err
	}
	wall := p.now()
	cur := ingest.Cursor{Time: p.st.frontier.Add(-p.cfg.Overlap)}
	if p.st.pass != nil {
		cur = *p.st.pass
	}
	input := fmt.Sprintf("poll %s/%s", p.src.Name(), p.cfg.Tenant)
	for n := 1; n <= p.cfg.MaxPagesPerPoll; n++ {
		page, err := p.fetch(ctx, cur)
		if err != nil {
			if ctx.Err() == nil && cur.Token != "" {
				// The continuation may have expired at the vendor. Restart the
				// pass from its start next time: the dedup set makes the re-read
				// cost requests, not duplicates.
				restart := ingest.Cursor{Time: cur.Time, SeenAtTime: cur.SeenAtTime}
				p.st.pass = &restart
			}
			return fmt.Errorf("poll %s/%s page %d: %w", p.src.Name(), p.cfg.Tenant, n, err)
		}
		recs := make([]ingest.RawRecord, len(page.Records))
		for i, r := range page.Records {
			recs[i] = ingest.RawRecord{Data: r, Pos: fmt.Sprintf("page %d item %d", n, i)}
		}
		b := ingest.NormalizeRecords(p.src, input, recs)
		evs, evKeys, dead, deadKeys := p.fresh(b)
		next := p.st // copy; seen is shared and only grows
		if err := p.pub.Events(ctx, evs); err != nil {
			return fmt.Errorf("poll %s/%s page %d: publish %d events: %w", p.src.Name(), p.cfg.Tenant, n, len(evs), err)
		}
		// Published: from now on these events are never published again by
		// this process, even if the dead letters or the cursor save fail.
		for i, h := range evKeys {
			next.seen.add(h, evs[i].Time.Time)
			if t := evs[i].Time.Time; t.After(next.frontier) {
				next.frontier = t
			}
		}
		if err := p.pub.DeadLetters(ctx, dead); err != nil {
			return fmt.Errorf("poll %s/%s page %d: publish %d dead letters: %w", p.src.Name(), p.cfg.Tenant, n, len(dead), err)
		}
		for _, h := range deadKeys {
			// A dead record has no trustworthy time; keep its key until the
			// window has moved a full overlap past now, when the vendor can no
			// longer return it.
			next.seen.add(h, wall)
		}
		if page.Next.Time.After(next.frontier) {
			next.frontier = page.Next.Time
		}
		if next.frontier.After(wall) {
			// A record stamped in the future must not drag the window past
			// records still to come.
			next.frontier = wall
		}
		if page.Done {
			next.pass = nil
			next.seen.prune(next.frontier.Add(-p.cfg.Overlap))
		} else {
			pn := page.Next
			next.pass = &pn
		}
		if err := p.save(ctx, next); err != nil {
			// The in-memory dedup set already holds this page, so this process
			// will not publish it twice; a restart before the next save may.
			return fmt.Errorf("poll %s/%s page %d: %w", p.src.Name(), p.cfg.Tenant, n, err)
		}
		p.st = next
		p.log.Debug("page", "page", n, "records", len(page.Records), "events", len(evs),
			"duplicates", len(b.Events)-len(evs), "dead_letters", len(dead), "cursor", p.st.frontier, "done", page.Done)
		if next.seen.evicted > 0 {
			p.log.Warn("dedup set over max_seen: the oldest entries were dropped, an overlap re-read may duplicate them",
				"dropped", next.seen.evicted, "max_seen", p.cfg.MaxSeen)
			next.seen.evicted = 0
		}
		if page.Done {
			return nil
		}
		cur = page.Next
	}
	return nil
}

// fresh drops what was already published (or appears twice in the batch) and
// returns the dedup keys of what is left.
func (p *Poller) fresh(b ingest.Batch) (evs []schemas.Event, evKeys []uint64, dead []schemas.DeadLetter, deadKeys []uint64) {
	inBatch := map[uint64]bool{}
	for _, ev := range b.Events {
		h := hashID("event", ev.Tenant, ev.EventID)
		if inBatch[h] || p.st.seen.has(h) {
			continue
		}
		inBatch[h] = true
		evs, evKeys = append(evs, ev), append(evKeys, h)
	}
	for _, dl := range b.Dead {
		h := hashID("dead", p.cfg.Tenant, dl.Record)
		if inBatch[h] || p.st.seen.has(h) {
			continue
		}
		inBatch[h] = true
		dead, deadKeys = append(dead, dl), append(deadKeys, h)
	}
	return evs, evKeys, dead, deadKeys
}

// fetch reads one page, retrying: a *ingest.RateLimitError waits the vendor's
// Retry-After (plus up to 10% jitter, never less), other errors back off
// exponentially with jitter, until retry_max_elapsed has passed.
func (p *Poller) fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = time.Second
	bo.MaxInterval = time.Minute
	bo.RandomizationFactor = 0.5
	bo.MaxElapsedTime = p.cfg.RetryMaxElapsed
	start := time.Now()
	for attempt := 1; ; attempt++ {
		page, err := p.src.Fetch(ctx, cur)
		if err == nil {
			return page, nil
		}
		if ctx.Err() != nil {
			return ingest.Page{}, err
		}
		var rl *ingest.RateLimitError
		var wait time.Duration
		if errors.As(err, &rl) && rl.RetryAfter > 0 {
			wait = rl.RetryAfter + time.Duration(rand.Int64N(int64(rl.RetryAfter)/10+1))
			if time.Since(start)+wait > p.cfg.RetryMaxElapsed {
				return ingest.Page{}, err
			}
		} else if wait = bo.NextBackOff(); wait == backoff.Stop {
			return ingest.Page{}, err
		}
		p.log.Warn("fetch failed, retrying", "attempt", attempt, "err", err, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return ingest.Page{}, err
		}
	}
}

func (p *Poller) load(ctx context.Context) error {
	if p.loaded {
		return nil
	}
	c, ok, err := p.store.Load(ctx, p.src.Name(), p.cfg.Tenant)
	if err != nil {
		return fmt.Errorf("poll %s/%s: load cursor: %w", p.src.Name(), p.cfg.Tenant, err)
	}
	if !ok {
		start := p.now().Add(-p.cfg.InitialLookback)
		// The first pass starts at the lookback itself, not lookback + overlap.
		p.st = state{frontier: start, pass: &ingest.Cursor{Time: start}, seen: newSeenSet(p.cfg.MaxSeen)}
		p.log.Info("no stored cursor, starting at the initial lookback", "start", start)
	} else {
		st, err := decodeState(c, p.cfg.MaxSeen)
		if err != nil {
			return fmt.Errorf("poll %s/%s: %w: %w", p.src.Name(), p.cfg.Tenant, ErrCorruptCursor, err)
		}
		p.st = st
		p.log.Info("resuming from stored cursor", "cursor", st.frontier, "in_pass", st.pass != nil, "seen", st.seen.len())
	}
	p.loaded = true
	return nil
}

func (p *Poller) save(ctx context.Context, st state) error {
	c, err := encodeState(st)
	if err != nil {
		return err
	}
	// The page is published: the save must not be lost to a shutdown that
	// cancelled ctx a moment later, or the restart would publish it again.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.store.Save(sctx, p.src.Name(), p.cfg.Tenant, c); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	return nil
}

func encodeState(st state) (ingest.Cursor, error) {
	c := ingest.Cursor{Time: st.frontier, SeenAtTime: st.seen.encode()}
	if st.pass != nil {
		b, err := json.Marshal(st.pass)
		if err != nil {
			return c, fmt.Errorf("encode pass cursor: %w", err)
		}
		c.Token = string(b)
	}
	return c, nil
}

func decodeState(c ingest.Cursor, maxSeen int) (state, error) {
	seen, err := decodeSeenSet(c.SeenAtTime, maxSeen)
	if err != nil {
		return state{}, err
	}
	st := state{frontier: c.Time, seen: seen}
	if c.Token != "" {
		var pass ingest.Cursor
		if err := json.Unmarshal([]byte(c.Token), &pass); err != nil {
			return state{}, fmt.Errorf("pass cursor: %w", err)
		}
		st.pass = &pass
	}
	return st, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
