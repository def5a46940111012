package ssf

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Poll delivery (RFC 8936). A poll stream's SETs wait in its queue (and the
// outbox) until its receiver acknowledges them: each poll returns the
// oldest unacknowledged ones, the same again until they are acknowledged
// (ack) or reported in error (setErrs), which completes them.

const (
	// maxPollEvents bounds the SETs one poll answer carries, and is what a
	// poll without maxEvents gets.
	maxPollEvents = 100
	// maxPollAcks bounds the ack and setErrs entries of one poll.
	maxPollAcks = 1000
	// pollWait is how long a long poll (returnImmediately false) waits for
	// a SET: under the listener's 30 s write timeout.
	pollWait = 25 * time.Second
)

// pollRequest is RFC 8936 §2.1's request. A missing maxEvents is
// maxPollEvents; a missing returnImmediately is false (a long poll).
type pollRequest struct {
	MaxEvents         *int                `json:"maxEvents"`
	ReturnImmediately bool                `json:"returnImmediately"`
	Ack               []string            `json:"ack"`
	SetErrs           map[string]setError `json:"setErrs"`
}

// setError is a receiver's error report on one SET (RFC 8936 §2.4, the
// error codes of RFC 8935 §2.3).
type setError struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// pollResponse is RFC 8936 §2.5's answer.
type pollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable"`
}

// poll serves a receiver's poll of one of its poll streams: it completes
// what the request acknowledges or reports in error, then answers with up
// to maxEvents unacknowledged SETs, waiting up to pollWait for one unless
// returnImmediately (or maxEvents is 0: an acknowledgement only). A stream
// that is not the receiver's is 403 (whether or not it exists); a push
// stream is 400. A paused or disabled stream holds its SETs: the answer
// has only its stream-updated events.
func (t *Transmitter) poll(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	id := r.PathValue("stream_id")
	t.mu.Lock()
	s := t.streams[id]
	t.mu.Unlock()
	if s == nil || s.aud != rc.Audience {
		writeError(w, http.StatusForbidden, "no stream "+id+" for this receiver")
		return
	}
	var req pollRequest
	if !decode(w, r, &req) {
		return
	}
	limit := maxPollEvents
	if req.MaxEvents != nil {
		if *req.MaxEvents < 0 {
			writeError(w, http.StatusBadRequest, "maxEvents: must not be negative")
			return
		}
		limit = min(*req.MaxEvents, maxPollEvents)
	}
	if len(req.Ack)+len(req.SetErrs) > maxPollAcks {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ack and setErrs: at most %d in one poll", maxPollAcks))
		return
	}
	s.mu.Lock()
	if s.method != DeliveryPoll {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "stream "+id+" delivers by push ("+DeliveryPush+"), not poll")
		return
	}
	acked, errored := t.complete(s, &req)
	s.mu.Unlock()
	t.metrics.count(s.id, "delivered", len(acked))
	t.metrics.count(s.id, "failed", len(errored))
	for _, p := range acked {
		t.log.Debug("SET delivered", "stream_id", s.id, "event", p.typ, "jti", p.jti, "method", "poll")
	}
	for _, p := range errored {
		e := req.SetErrs[p.jti]
		t.log.Warn("SET refused by the receiver and dropped", "stream_id", s.id, "event", p.typ, "jti", p.jti,
			"err", truncate(e.Err, 64), "description", truncate(e.Description, 200))
	}

	wait := !req.ReturnImmediately && limit > 0
	var deadline <-chan time.Time
	for {
		s.mu.Lock()
		var out pollResponse
		if s.method == DeliveryPoll {
			// Paused or disabled, only the control SETs at the head go
			// (a stream-updated event tells why nothing else does).
			ready := len(s.queue)
			if s.status != StatusEnabled {
				ready = leading(s.queue)
			}
			n := min(limit, ready)
			out.Sets = make(map[string]string, n)
			for i := range s.queue[:n] {
				t.refresh(s, &s.queue[i])
				out.Sets[s.queue[i].jti] = s.queue[i].set
			}
			out.MoreAvailable = ready > n
		}
		avail := s.avail
		s.mu.Unlock()
		if out.Sets == nil {
			out.Sets = map[string]string{}
		}
		if len(out.Sets) > 0 || !wait {
			writePoll(w, &out)
			return
		}
		if deadline == nil {
			t.mu.Lock()
			d := t.pollWait
			t.mu.Unlock()
			tm := time.NewTimer(d)
			defer tm.Stop()
			deadline = tm.C
		}
		select {
		case <-avail: // a SET was queued
		case <-deadline:
			wait = false
		case <-r.Context().Done():
			return
		case <-s.stop:
			wait = false
		case <-t.done():
			wait = false
		}
	}
}

func writePoll(w http.ResponseWriter, out *pollResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

// complete takes the SETs the request acknowledges or reports in error out
// of the queue and journals them done (s.mu held). Either completes a SET
// (RFC 8936 §2.4: a SET reported in error is not sent again). jtis not
// queued (already completed, or never sent) are ignored.
func (t *Transmitter) complete(s *stream, req *pollRequest) (acked, errored []pending) {
	if len(req.Ack) == 0 && len(req.SetErrs) == 0 {
		return nil, nil
	}
	ack := make(map[string]bool, len(req.Ack))
	for _, j := range req.Ack {
		ack[j] = true
	}
	keep := s.queue[:0:0]
	for _, p := range s.queue {
		switch _, bad := req.SetErrs[p.jti]; {
		case ack[p.jti]:
			acked = append(acked, p)
		case bad:
			errored = append(errored, p)
		default:
			keep = append(keep, p)
		}
	}
	s.queue = keep
	t.ob.done(append(seqs(acked), seqs(errored)...)...)
	return acked, errored
}

// done is closed when the transmitter stops (never before Start).
func (t *Transmitter) done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		return nil
	}
	return t.ctx.Done()
}
