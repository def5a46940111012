package respond

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Recorder keeps the audit trail: the ClickHouse responses table, the
// tokenwatch.responses topic, a file. Record must be durable on return.
type Recorder interface {
	Record(ctx context.Context, rs []schemas.Response) error
}

// Store answers which responses were already carried out (status executed
// or already_done), so a restart does not send an action twice.
type Store interface {
	Completed(ctx context.Context, ids []string) (map[string]bool, error)
}

// Executor carries out planned actions: only revokes in enforce mode send
// anything. Every step is recorded before the next: planned, then
// executed, already_done or failed.
type Executor struct {
	Revokers map[string]Revoker
	Sender   *HTTPSender
	Store    Store      // nil: nothing was done before
	Audit    []Recorder // each gets every record
	Log      *slog.Logger
	Now      func() time.Time // wall clock of RecordedAt
	Metrics  *Metrics         // nil: not counted
}

// Execute records and, where enforced, sends each planned action. It
// returns every record it wrote; the error is a recording failure (the
// trail must not lose a step) — vendor failures are records, not errors.
func (e *Executor) Execute(ctx context.Context, planned []Planned) ([]schemas.Response, error) {
	ids := make([]string, len(planned))
	for i := range planned {
		ids[i] = planned[i].Response.ID
	}
	done := map[string]bool{}
	if e.Store != nil && len(ids) > 0 {
		var err error
		if done, err = e.Store.Completed(ctx, ids); err != nil {
			return nil, fmt.Errorf("respond: read completed actions: %w", err)
		}
	}
	var out []schemas.Response
	for _, p := range planned {
		r := p.Response
		if done[r.ID] {
			e.log().Debug("action already carried out", "response_id", r.ID, "incident_id", r.IncidentID)
			continue
		}
		if err := e.record(ctx, &r); err != nil {
			return out, err
		}
		out = append(out, r)
		if r.Status != schemas.ResponsePlanned || r.Action != schemas.ActionRevoke || r.Mode != schemas.ModeEnforce {
			continue
		}
		var more []string
		r.Status, r.Error, more = e.send(ctx, p)
		// A discovery's follow-up listings and the revokes they led to
		// join the requests on the record: the trail of what was sent.
		r.Requests = append(slices.Clip(r.Requests), more...)
		if err := e.record(ctx, &r); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// send carries out p's requests: executed, already_done (every request
// answered 404, or a discovery listed nothing to revoke), or failed with
// the error. A discovery request (Request.Discover) is replaced by the
// revokes its listing leads to; more are the requests sent beyond p's
// (the follow-up listings and those revokes, in order).
func (e *Executor) send(ctx context.Context, p Planned) (status, errText string, more []string) {
	rv, ok := e.Revokers[p.Target.Source]
	if !ok {
		return schemas.ResponseFailed, fmt.Sprintf("no revoker for source %q", p.Target.Source), nil
	}
	fail := func(err error) (string, string, []string) {
		e.log().Warn("revocation failed", "response_id", p.Response.ID, "source", p.Target.Source,
			"integration_id", p.Target.IntegrationID, "err", err)
		return schemas.ResponseFailed, err.Error(), more
	}
	status = schemas.ResponseAlreadyDone
	for _, q := range p.Requests {
		reqs := []Request{q}
		if q.Discover {
			listed, follow, err := e.discover(ctx, rv, p, q)
			for _, f := range follow {
				more = append(more, f.String())
			}
			if err != nil {
				return fail(err)
			}
			for _, l := range listed {
				more = append(more, l.String())
			}
			reqs = listed
		}
		for _, q := range reqs {
			err := e.Sender.Send(ctx, rv, q)
			switch {
			case err == nil:
				status = schemas.ResponseExecuted
			case errors.Is(err, ErrAlreadyDone):
			default:
				return fail(err)
			}
		}
	}
	e.log().Info("revoked", "response_id", p.Response.ID, "source", p.Target.Source, "integration_id", p.Target.IntegrationID,
		"principal", p.Target.Principal, "status", status)
	return status, "", more
}

// maxDiscovery bounds the listing requests of one discovery (pages and
// follow-up queries).
const maxDiscovery = 50

// discover sends the listing request first and those Expand asks for next
// (pages, follow-up queries), and returns the revokes Expand found and the
// follow-up listings sent. A listing answered 404 lists nothing; nothing
// listed is an error for a Scarce revoker.
func (e *Executor) discover(ctx context.Context, rv Revoker, p Planned, first Request) (revokes, follow []Request, err error) {
	d, ok := rv.(Discoverer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: a discovery request, but the %s revoker cannot read listings", first, p.Target.Source)
	}
	done := func() ([]Request, []Request, error) {
		if s, ok := rv.(Scarce); ok && len(revokes) == 0 {
			return nil, follow, s.NothingListed(p.Target)
		}
		return revokes, follow, nil
	}
	q := first
	for n := 0; ; n++ {
		if n == maxDiscovery {
			return nil, follow, fmt.Errorf("%s: the listing did not end after %d requests", first, maxDiscovery)
		}
		body, err := e.Sender.Fetch(ctx, rv, q)
		if errors.Is(err, ErrAlreadyDone) {
			return done()
		}
		if err != nil {
			return nil, follow, err
		}
		next, rs, err := d.Expand(p.Target, q, body)
		if err != nil {
			return nil, follow, fmt.Errorf("%s: %w", q, err)
		}
		e.log().Debug("discovered", "response_id", p.Response.ID, "request", q.String(), "revokes", len(rs), "more", next != nil)
		revokes = append(revokes, rs...)
		if next == nil {
			return done()
		}
		q = *next
		q.Discover = true
		follow = append(follow, q)
	}
}

func (e *Executor) record(ctx context.Context, r *schemas.Response) error {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	r.RecordedAt = schemas.NewTime(now())
	for _, a := range e.Audit {
		if err := a.Record(ctx, []schemas.Response{*r}); err != nil {
			return fmt.Errorf("respond: record %s %s of incident %s: %w", r.Action, r.Status, r.IncidentID, err)
		}
	}
	e.Metrics.count(r.Source, r.Action, r.Status)
	return nil
}

func (e *Executor) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// MemoryStore is a Store and Recorder held in memory: the executor's
// idempotency within one process, and tests.
type MemoryStore struct {
	mu      sync.Mutex
	Records []schemas.Response
}

// Record appends rs.
func (m *MemoryStore) Record(_ context.Context, rs []schemas.Response) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Records = append(m.Records, rs...)
	return nil
}

// All returns a copy of the records, oldest first.
func (m *MemoryStore) All() []schemas.Response {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]schemas.Response(nil), m.Records...)
}

// Completed reports the ids recorded executed or already_done.
func (m *MemoryStore) Completed(_ context.Context, ids []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]bool{}
	for _, r := range m.Records {
		if want[r.ID] && (r.Status == schemas.ResponseExecuted || r.Status == schemas.ResponseAlreadyDone) {
			out[r.ID] = true
		}
	}
	return out, nil
}

// Response returns the latest record of id (a Lookup).
func (m *MemoryStore) Response(_ context.Context, id string) (schemas.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.Records) - 1; i >= 0; i-- {
		if m.Records[i].ID == id {
			return m.Records[i], nil
		}
	}
	return schemas.Response{}, fmt.Errorf("no response %s", id)
}
