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

// DeliveryPush is the push delivery method URN (RFC 8935), the only one
// this transmitter offers.
const DeliveryPush = "urn:ietf:rfc:8935"

// stream is one event stream: its configuration, status, subject filter
// and the SETs waiting to be pushed, in order. One worker pushes them.
type stream struct {
	id          string
	aud         string
	static      bool // from the config: its configuration is read-only
	mu          sync.Mutex
	endpoint    string
	auth        secret.Secret
	requested   []string
	description string
	status      string
	reason      string
	added       *subjectSet
	removed     *subjectSet
	lastVerify  time.Time
	queue       []pending
	sending     bool          // the worker is pushing queue[0]
	wake        chan struct{} // cap 1: something to push, or the status changed
	stop        chan struct{} // closed when the stream is deleted
}

type pending struct {
	set, typ, jti string
}

func newStream(id, aud string, static bool) *stream {
	return &stream{id: id, aud: aud, static: static, status: StatusEnabled, added: newSubjectSet(), removed: newSubjectSet(),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
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

// push delivers one SET (RFC 8935 §2): POST, Content-Type
// application/secevent+jwt, Accept application/json. 202 is success; a 400
// carries an error code (§2.4) that retrying the same SET cannot fix, nor
// can 401/403 with the same credential; 429, 5xx and transport errors are
// retried.
func (t *Transmitter) push(ctx context.Context, client *http.Client, endpoint string, auth secret.Secret, set string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader([]byte(set)))
	if err != nil {
		return &deliver.PermanentError{Err: fmt.Errorf("push to %s: %w", deliver.SafeURL(endpoint), errors.New("bad request"))}
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tokenwatch-ssf")
	if !auth.IsZero() {
		req.Header.Set("Authorization", auth.Reveal())
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push: %w", deliver.TransportError(err, auth))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	where := deliver.SafeURL(endpoint)
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		// RFC 8935 says 202; 200 and 204 are taken as the same.
		return nil
	case resp.StatusCode == http.StatusBadRequest:
		var e struct {
			Err         string `json:"err"`
			Description string `json:"description"`
		}
		_ = json.Unmarshal(body, &e)
		if len(e.Description) > 200 {
			e.Description = e.Description[:200]
		}
		return &deliver.PermanentError{Err: &PushError{Status: resp.StatusCode, Code: e.Err,
			Description: secret.Redact(e.Description, auth), Endpoint: where}}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		err := &PushError{Status: resp.StatusCode, Endpoint: where}
		if d := retryafter.Parse(resp.Header.Get("Retry-After")); d > 0 {
			return &deliver.RetryAfterError{Err: err, After: d}
		}
		return err
	}
	return &deliver.PermanentError{Err: &PushError{Status: resp.StatusCode, Endpoint: where}}
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
// the stream's status becomes enabled"). A SET that fails for good is
// dead-lettered: counted and logged, and the next one goes.
func (t *Transmitter) work(ctx context.Context, s *stream) {
	for {
		s.mu.Lock()
		var next *pending
		if s.status == StatusEnabled && len(s.queue) > 0 {
			next, s.sending = &s.queue[0], true
		}
		endpoint, auth := s.endpoint, s.auth
		s.mu.Unlock()
		if next == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-s.wake:
				continue
			}
		}
		p := *next
		client := t.client
		if !s.static {
			client = t.apiClient
		}
		attempts, err := deliver.Retry(ctx, t.cfg.Retry, func() error { return t.push(ctx, client, endpoint, auth, p.set) })
		if ctx.Err() != nil {
			return // shutting down: the SET stays queued
		}
		s.mu.Lock()
		if len(s.queue) > 0 && s.queue[0].jti == p.jti {
			s.queue = s.queue[1:]
		}
		s.sending = false
		s.mu.Unlock()
		t.metrics.count(s.id, "retried", attempts-1)
		if err != nil {
			t.metrics.count(s.id, "failed", 1)
			t.log.Warn("SET dead-lettered", "stream_id", s.id, "event", p.typ, "jti", p.jti, "attempts", attempts, "err", err)
			continue
		}
		t.metrics.count(s.id, "delivered", 1)
		t.log.Debug("SET delivered", "stream_id", s.id, "event", p.typ, "jti", p.jti, "attempts", attempts)
	}
}

// clear drops what the stream holds but the SET being pushed (s.mu held);
// it returns how many.
func (s *stream) clear() int {
	keep := 0
	if s.sending && len(s.queue) > 0 {
		keep = 1
	}
	n := len(s.queue) - keep
	s.queue = s.queue[:keep]
	return n
}

// enqueue adds a signed SET; disabled streams drop it (SSF 1.0: "will not
// hold any events"), a full queue drops its oldest.
func (t *Transmitter) enqueue(s *stream, p pending) {
	s.mu.Lock()
	if s.status == StatusDisabled {
		s.mu.Unlock()
		t.metrics.count(s.id, "dropped", 1)
		return
	}
	s.queue = append(s.queue, p)
	dropped := 0
	if over := len(s.queue) - t.cfg.HoldLimit; over > 0 {
		s.queue, dropped = s.queue[over:], over
	}
	s.mu.Unlock()
	if dropped > 0 {
		t.metrics.count(s.id, "dropped", dropped)
		t.log.Warn("SETs dropped: stream hold limit reached", "stream_id", s.id, "dropped", dropped, "hold_limit", t.cfg.HoldLimit)
	}
	s.poke()
}
