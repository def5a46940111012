package ssf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/retryafter"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// Stream statuses (SSF 1.0 "Reading a Stream's Status").
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

var statuses = []string{StatusEnabled, StatusPaused, StatusDisabled}

// The delivery method URNs: push (RFC 8935), the transmitter POSTs each
// SET to the receiver; poll (RFC 8936), the receiver POSTs to the
// transmitter's poll endpoint for them.
const (
	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"
)

// stream is one event stream: its configuration, status, subject filter
// and the SETs waiting to be pushed, in order. One worker pushes them.
type stream struct {
	id     string
	aud    string
	static bool // from the config: its configuration is read-only
	// configStatus is a configured stream's streams[].status.
	configStatus string
	mu           sync.Mutex
	endpoint     string
	auth         secret.Secret
	requested    []string
	description  string
	status       string
	reason       string
	added        *subjectSet
	removed      *subjectSet
	lastVerify   time.Time
	queue        []pending
	// blocked is why the receiver refuses the stream ("" when it does not):
	// the worker sends nothing until unblock.
	blocked string
	// failures counts the head SET's transient failures in a row.
	failures int
	sending  bool          // the worker is pushing queue[0]
	wake     chan struct{} // cap 1: something to push, or the status changed
	stop     chan struct{} // closed when the stream is deleted
	// avail is closed (and replaced) when a SET is queued: it wakes the
	// long polls waiting on the stream.
	avail chan struct{}
	// method is DeliveryPush or DeliveryPoll ("" before a create sets it,
	// taken as push); s.mu guards it. A poll stream's worker sends
	// nothing: its receiver polls the queue (poll.go).
	method string
}

type pending struct {
	set, typ, jti string
	seq           uint64 // its number in the outbox (0 without one)
}

// control reports whether p tells the receiver of the stream itself (a
// stream-updated event): it goes out ahead of the stream's SETs and while
// the stream is paused or disabled (SSF 1.0: the transmitter "MUST send
// this event to the Receiver before stopping the stream").
func (p *pending) control() bool { return p.typ == EventStreamUpdated }

// leading is how many SETs at the head of q are control SETs.
func leading(q []pending) int {
	n := 0
	for n < len(q) && q[n].control() {
		n++
	}
	return n
}

func newStream(id, aud string, static bool) *stream {
	return &stream{id: id, aud: aud, static: static, status: StatusEnabled, added: newSubjectSet(), removed: newSubjectSet(),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), avail: make(chan struct{})}
}

func (s *stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// delivered are the events the stream carries: supported ∩ requested (SSF
// 1.0 "Stream Configuration"), in the order of EventsSupported. Nothing is
// requested, nothing is delivered; URIs this transmitter does not know are
// ignored.
func (s *stream) delivered() []string {
	out := []string{}
	for _, e := range EventsSupported {
		if slices.Contains(s.requested, e) {
			out = append(out, e)
		}
	}
	return out
}

// wants reports whether the stream carries an event of type typ about
// the subject whose members are ev, under the transmitter's
// default_subjects (ALL: unless a removed subject matches; NONE: only if an
// added one does).
func (s *stream) wants(typ string, ev members, all bool) bool {
	if !slices.Contains(s.delivered(), typ) {
		return false
	}
	if all {
		return !s.removed.matches(ev)
	}
	return s.added.matches(ev)
}

// outcome is how a push ended, and what the worker does next.
type outcome int

const (
	outDelivered     outcome = iota // delivered: the next SET goes
	outTransient                    // 429, 5xx, network: the same SET again, after a backoff, without limit
	outRefusedSET                   // this SET is bad (invalid_request, 413): dropped and counted, the next goes
	outRefusedStream                // the receiver refuses the stream (401, 403, invalid_key, …): held until fixed
)

// streamCodes are the RFC 8935 §2.4 codes that say nothing about the SET
// and everything about the stream's key, issuer, audience or credential:
// every later SET would be refused the same way.
var streamCodes = []string{"invalid_key", "invalid_issuer", "invalid_audience", "authentication_failed", "access_denied"}

// push delivers one SET (RFC 8935 §2): POST, Content-Type
// application/secevent+jwt, Accept application/json. 202 is success. The
// outcome says whether the same SET may fare better (transient), whether
// this SET alone is at fault (outRefusedSET) or the stream is (outRefusedStream).
// after is the receiver's Retry-After.
func (t *Transmitter) push(ctx context.Context, client *http.Client, endpoint string, auth secret.Secret, set string) (o outcome, after time.Duration, err error) {
	where := deliver.SafeURL(endpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader([]byte(set)))
	if err != nil {
		return outRefusedStream, 0, fmt.Errorf("push to %s: %w", where, errors.New("bad request"))
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tokenwatch-ssf")
	if !auth.IsZero() {
		req.Header.Set("Authorization", auth.Reveal())
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errForbiddenAddr) {
			return outRefusedStream, 0, fmt.Errorf("push: %w", deliver.TransportError(err, auth))
		}
		return outTransient, 0, fmt.Errorf("push: %w", deliver.TransportError(err, auth))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	pe := &PushError{Status: resp.StatusCode, Endpoint: where}
	switch code := resp.StatusCode; {
	case code == http.StatusAccepted || code == http.StatusOK || code == http.StatusNoContent:
		// RFC 8935 says 202; 200 and 204 are taken as the same.
		return outDelivered, 0, nil
	case code == http.StatusBadRequest:
		var e struct {
			Err         string `json:"err"`
			Description string `json:"description"`
		}
		_ = json.Unmarshal(body, &e)
		pe.Code, pe.Description = truncate(e.Err, 64), secret.Redact(truncate(e.Description, 200), auth)
		if slices.Contains(streamCodes, e.Err) {
			return outRefusedStream, 0, pe
		}
		return outRefusedSET, 0, pe // invalid_request, or no code: this SET
	case code == http.StatusTooManyRequests || code >= 500:
		return outTransient, retryafter.Parse(resp.Header.Get("Retry-After")), pe
	case code == http.StatusRequestEntityTooLarge:
		return outRefusedSET, 0, pe
	}
	// 401, 403, 404, other 4xx, 3xx (not followed): the endpoint or its
	// credential is wrong, for every SET alike.
	return outRefusedStream, 0, pe
}

// PushError is a receiver's refusal of a SET: the HTTP status and, for a
// 400, the RFC 8935 §2.4 error code (invalid_request, invalid_key,
// invalid_issuer, invalid_audience, authentication_failed, access_denied).
type PushError struct {
	Status      int
	Code        string
	Description string
	Endpoint    string // scheme://host only
}

func (e *PushError) Error() string {
	msg := fmt.Sprintf("push to %s: HTTP %d", e.Endpoint, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// work pushes the stream's SETs in order while it is enabled; paused, they
// are held (SSF 1.0: "will hold any events … and SHOULD transmit them when
// the stream's status becomes enabled"). These are security signals, so
// none is given up on while the receiver is away: a transient failure
// retries the same SET with backoff for as long as it takes (the queue is
// bounded by hold_limit, oldest dropped and counted), and a receiver that
// refuses the stream itself (401, 403, invalid_key, …) holds it — nothing
// is sent, SETs queue — until its configuration or status is set, a
// verification is asked for, or a probe every blockedProbe succeeds. Only a
// SET the receiver calls malformed is dropped. The worker ends when ctx
// ends or the stream is deleted (its push is cancelled too).
func (t *Transmitter) work(parent context.Context, s *stream) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	defer func() {
		select {
		case <-s.stop: // deleted: a count made after remove forgot it goes too
			t.metrics.forget(s.id)
		default:
		}
	}()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = t.cfg.Retry.InitialInterval, t.cfg.Retry.MaxInterval, 0
	b.Reset()
	client := t.client
	if !s.static {
		client = t.apiClient
	}
	for {
		s.mu.Lock()
		var p pending
		ready := len(s.queue) > 0 && s.method != DeliveryPoll && (s.status == StatusEnabled || s.queue[0].control())
		held := ready && s.blocked != ""
		if ready && !held {
			t.refresh(s, &s.queue[0])
			p, s.sending = s.queue[0], true
		}
		endpoint, auth := s.endpoint, s.auth
		s.mu.Unlock()
		if !ready || held {
			var probe <-chan time.Time
			tm := time.NewTimer(t.blockedProbe)
			if held {
				probe = tm.C
			}
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-s.wake:
			case <-probe:
				s.unblock()
			}
			tm.Stop()
			continue
		}
		o, after, err := t.push(ctx, client, endpoint, auth, p.set)
		if ctx.Err() != nil {
			return // shutting down or deleted: the SET stays queued
		}
		s.mu.Lock()
		s.sending = false
		if o == outDelivered || o == outRefusedSET {
			// Unless hold_limit dropped it (and journaled that) meanwhile.
			if len(s.queue) > 0 && s.queue[0].jti == p.jti && s.queue[0].seq == p.seq {
				s.queue = s.queue[1:]
				t.ob.done(p.seq)
			}
		}
		wasBlocked := s.blocked != "" || s.failures >= t.cfg.Retry.MaxAttempts
		switch o {
		case outDelivered, outRefusedSET:
			s.failures, s.blocked = 0, ""
		case outTransient:
			s.failures++
		case outRefusedStream:
			s.blocked = err.Error()
		}
		failures := s.failures
		s.mu.Unlock()
		switch o {
		case outDelivered:
			b.Reset()
			t.metrics.count(s.id, "delivered", 1)
			t.metrics.blocked(s.id, false)
			if wasBlocked {
				t.log.Info("SSF stream delivering again", "stream_id", s.id)
			}
			t.log.Debug("SET delivered", "stream_id", s.id, "event", p.typ, "jti", p.jti)
		case outRefusedSET:
			b.Reset()
			t.metrics.count(s.id, "failed", 1)
			t.metrics.blocked(s.id, false)
			t.log.Warn("SET refused by the receiver and dropped", "stream_id", s.id, "event", p.typ, "jti", p.jti, "err", err)
		case outRefusedStream:
			t.metrics.blocked(s.id, true)
			t.log.Error("SSF stream held: the receiver refuses it; SETs queue until its configuration or status is set, a verification is asked for, or a probe passes",
				"stream_id", s.id, "event", p.typ, "jti", p.jti, "probe", t.blockedProbe, "err", err)
		case outTransient:
			t.metrics.count(s.id, "retried", 1)
			if failures == t.cfg.Retry.MaxAttempts {
				t.metrics.blocked(s.id, true)
				t.log.Error("SSF stream failing; its SETs are held and retried", "stream_id", s.id, "attempts", failures, "err", err)
			}
			wait := b.NextBackOff()
			if after > wait {
				wait = min(after, time.Hour)
			}
			tm := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
		}
	}
}

// unblock lets a held stream try its head SET again (its configuration or
// status was set, a verification was asked for, or the probe is due).
func (s *stream) unblock() {
	s.mu.Lock()
	s.blocked = ""
	s.mu.Unlock()
	s.poke()
}

// clear drops what the stream holds but the SET being pushed, and journals
// it (s.mu held); it returns how many.
func (t *Transmitter) clear(s *stream) int {
	keep := 0
	if s.sending && len(s.queue) > 0 {
		keep = 1
	}
	t.ob.done(seqs(s.queue[keep:])...)
	n := len(s.queue) - keep
	s.queue = s.queue[:keep]
	return n
}

func seqs(ps []pending) []uint64 {
	out := make([]uint64, 0, len(ps))
	for _, p := range ps {
		if p.seq != 0 {
			out = append(out, p.seq)
		}
	}
	return out
}

// enqueue adds a signed SET and journals it in the outbox; disabled streams
// drop it (SSF 1.0: "will not hold any events"), a full queue drops its
// oldest (journaled as done). A control SET goes ahead of the stream's
// SETs (after the one being pushed and the control SETs before it), is
// kept by a disabled stream and is not dropped for hold_limit.
func (t *Transmitter) enqueue(s *stream, p pending) {
	s.mu.Lock()
	if s.status == StatusDisabled && !p.control() {
		s.mu.Unlock()
		t.metrics.count(s.id, "dropped", 1)
		return
	}
	t.ob.append(s.id, &p)
	if p.control() {
		at := 0
		if s.sending && len(s.queue) > 0 {
			at = 1
		}
		at += leading(s.queue[at:])
		s.queue = slices.Insert(s.queue, at, p)
	} else {
		s.queue = append(s.queue, p)
	}
	dropped := 0
	if over := len(s.queue) - t.cfg.HoldLimit; over > 0 {
		dropped = t.dropOldest(s, over)
	}
	close(s.avail)
	s.avail = make(chan struct{})
	s.mu.Unlock()
	if dropped > 0 {
		t.metrics.count(s.id, "dropped", dropped)
		t.log.Warn("SETs dropped: stream hold limit reached", "stream_id", s.id, "dropped", dropped, "hold_limit", t.cfg.HoldLimit)
	}
	s.poke()
}

// dropOldest drops up to n of the oldest SETs but control SETs, journaled
// as done (s.mu held); it returns how many.
func (t *Transmitter) dropOldest(s *stream, n int) int {
	if !slices.ContainsFunc(s.queue[:n], func(p pending) bool { return p.control() }) {
		t.ob.done(seqs(s.queue[:n])...)
		s.queue = s.queue[n:]
		return n
	}
	keep := s.queue[:0:0]
	var gone []pending
	for _, p := range s.queue {
		if len(gone) < n && !p.control() {
			gone = append(gone, p)
			continue
		}
		keep = append(keep, p)
	}
	t.ob.done(seqs(gone)...)
	s.queue = keep
	return len(gone)
}
