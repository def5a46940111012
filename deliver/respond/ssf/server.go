package ssf

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
)

// Paths of the endpoints, below the issuer.
const (
	PathMetadata      = "/.well-known/ssf-configuration"
	PathJWKS          = "/ssf/jwks.json"
	PathConfiguration = "/ssf/streams"
	PathStatus        = "/ssf/status"
	PathAddSubject    = "/ssf/subjects:add"
	PathRemoveSubject = "/ssf/subjects:remove"
	PathVerify        = "/ssf/verify"
	// PathPoll is the poll endpoint (RFC 8936), one per stream below it:
	// /ssf/poll/<stream_id>.
	PathPoll = "/ssf/poll"
)

// maxStreamsPerReceiver bounds the streams one receiver can create.
const maxStreamsPerReceiver = 10

// Handler serves the transmitter metadata, the JWKS and the management API
// (SSF 1.0 "Discovery" and "Management API"). The management endpoints take the receivers' bearer
// tokens (RFC 6750); a receiver sees only the streams of its audience.
//
// An issuer with a path (https://h/tenant1) has its metadata where SSF
// "Obtaining Transmitter Configuration Metadata" puts it,
// /.well-known/ssf-configuration/tenant1, and its endpoints below the
// issuer, /tenant1/ssf/….
func (t *Transmitter) Handler() http.Handler {
	u, _ := url.Parse(t.cfg.Issuer) // Validate parsed it
	p := u.EscapedPath()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathMetadata+p, t.metadata)
	mux.HandleFunc("GET "+p+PathJWKS, t.jwks)
	mux.HandleFunc("POST "+p+PathConfiguration, t.authed(t.createStream))
	mux.HandleFunc("GET "+p+PathConfiguration, t.authed(t.readStream))
	mux.HandleFunc("PATCH "+p+PathConfiguration, t.authed(t.updateStream(false)))
	mux.HandleFunc("PUT "+p+PathConfiguration, t.authed(t.updateStream(true)))
	mux.HandleFunc("DELETE "+p+PathConfiguration, t.authed(t.deleteStream))
	mux.HandleFunc("GET "+p+PathStatus, t.authed(t.readStatus))
	mux.HandleFunc("POST "+p+PathStatus, t.authed(t.updateStatus))
	mux.HandleFunc("POST "+p+PathAddSubject, t.authed(t.subject(true)))
	mux.HandleFunc("POST "+p+PathRemoveSubject, t.authed(t.subject(false)))
	mux.HandleFunc("POST "+p+PathVerify, t.authed(t.verify))
	mux.HandleFunc("POST "+p+PathPoll+"/{stream_id}", t.authed(t.poll))
	return mux
}

// jwksMaxAge is how long receivers may cache the JWKS.
const jwksMaxAge = 300 * time.Second

// jwks serves the public keys: the current one and the previous ones
// whose overlap has not ended. Receivers may cache it for a while; one that
// meets a kid it has not seen refetches it.
func (t *Transmitter) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(jwksMaxAge.Seconds())))
	_ = json.NewEncoder(w).Encode(t.keySet(t.Now()))
}

// metadata is the transmitter configuration metadata (SSF 1.0 "Transmitter Configuration Metadata").
func (t *Transmitter) metadata(w http.ResponseWriter, _ *http.Request) {
	iss := t.cfg.Issuer
	writeJSON(w, http.StatusOK, map[string]any{
		"spec_version":               "1_0",
		"issuer":                     iss,
		"jwks_uri":                   iss + PathJWKS,
		"delivery_methods_supported": []string{DeliveryPush, DeliveryPoll},
		"configuration_endpoint":     iss + PathConfiguration,
		"status_endpoint":            iss + PathStatus,
		"add_subject_endpoint":       iss + PathAddSubject,
		"remove_subject_endpoint":    iss + PathRemoveSubject,
		"verification_endpoint":      iss + PathVerify,
		"authorization_schemes":      []map[string]string{{"spec_urn": "urn:ietf:rfc:6750"}},
		"default_subjects":           t.cfg.DefaultSubjects,
	})
}

type handler func(w http.ResponseWriter, r *http.Request, rc *Receiver)

// authed refuses a request without a known receiver's bearer token (401,
// SSF 1.0 "Authorization").
func (t *Transmitter) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := t.receiver(r)
		if rc == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenwatch-ssf"`)
			writeError(w, http.StatusUnauthorized, "a receiver's bearer token is required (Authorization: Bearer …)")
			return
		}
		h(w, r, rc)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": http.StatusText(status), "description": msg})
}

// delivery is a stream's delivery object. authorization_header is taken,
// never shown.
type delivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// streamJSON is the stream configuration object (SSF 1.0 "Stream Configuration").
type streamJSON struct {
	StreamID                string   `json:"stream_id"`
	Iss                     string   `json:"iss"`
	Aud                     string   `json:"aud"`
	EventsSupported         []string `json:"events_supported"`
	EventsRequested         []string `json:"events_requested"`
	EventsDelivered         []string `json:"events_delivered"`
	Delivery                delivery `json:"delivery"`
	MinVerificationInterval int      `json:"min_verification_interval,omitempty"`
	Description             string   `json:"description,omitempty"`
}

func (t *Transmitter) view(s *stream) streamJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	return streamJSON{StreamID: s.id, Iss: t.cfg.Issuer, Aud: s.aud, EventsSupported: EventsSupported,
		EventsRequested: append([]string{}, s.requested...), EventsDelivered: s.delivered(),
		Delivery:                delivery{Method: s.deliveryMethod(), EndpointURL: t.endpointOf(s)},
		MinVerificationInterval: t.minVerificationSeconds(), Description: s.description}
}

// deliveryMethod is the stream's method, push unless set to poll (s.mu held).
func (s *stream) deliveryMethod() string {
	if s.method == DeliveryPoll {
		return DeliveryPoll
	}
	return DeliveryPush
}

// endpointOf is the delivery endpoint_url (s.mu held): the receiver's for
// push, the transmitter's poll endpoint for poll (SSF 1.0: for poll the
// transmitter supplies it).
func (t *Transmitter) endpointOf(s *stream) string {
	if s.method == DeliveryPoll {
		return t.pollURL(s.id)
	}
	return s.endpoint
}

// pollURL is the poll endpoint of stream id.
func (t *Transmitter) pollURL(id string) string {
	return t.cfg.Issuer + PathPoll + "/" + url.PathEscape(id)
}

// minVerificationSeconds is min_verification_interval as SSF has it, whole
// seconds, rounded up so a receiver keeping to it is never refused.
func (t *Transmitter) minVerificationSeconds() int {
	return int((t.cfg.MinVerificationInterval + time.Second - 1) / time.Second)
}

// streamRequest is what a receiver sends to create or update a stream;
// pointers tell a field left out from one emptied. The transmitter-supplied
// fields are taken only to be checked (SSF: 400 when one is not the
// transmitter's value).
type streamRequest struct {
	StreamID                string          `json:"stream_id"`
	Iss                     *string         `json:"iss"`
	Aud                     json.RawMessage `json:"aud"`
	EventsSupported         *[]string       `json:"events_supported"`
	EventsDelivered         *[]string       `json:"events_delivered"`
	MinVerificationInterval *int            `json:"min_verification_interval"`
	EventsRequested         *[]string       `json:"events_requested"`
	Delivery                *delivery       `json:"delivery"`
	Description             *string         `json:"description"`
}

// Bounds on what a receiver may store in a stream.
const (
	maxEventsRequested = 64
	maxURILength       = 2048
	maxDescription     = 1000 // runes; SSF lets the transmitter truncate it
	maxReason          = 500  // runes of a status reason
)

// truncate cuts s to n runes.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// decode reads the JSON body into v; false when it does not decode (the
// 400 is written).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a JSON object of this request")
		return false
	}
	return true
}

// named decodes the body into req and returns the receiver's stream whose
// id it holds at *id; nil when either fails (the error is written).
func (t *Transmitter) named(w http.ResponseWriter, r *http.Request, rc *Receiver, req any, id *string) *stream {
	if !decode(w, r, req) {
		return nil
	}
	return t.find(w, rc, *id)
}

// apply checks req and sets it on s (s.mu held). replace: a receiver-
// supplied field left out is emptied (PUT); otherwise kept (PATCH, POST).
// delivery is one property (SSF "Updating a Stream's Configuration"): when
// present it replaces the old one whole, authorization_header included, so
// a push secret never follows a changed endpoint_url.
func (t *Transmitter) apply(s *stream, req *streamRequest, replace bool) (int, error) {
	bad := func(format string, args ...any) (int, error) {
		return http.StatusBadRequest, fmt.Errorf(format, args...)
	}
	if req.Iss != nil && *req.Iss != t.cfg.Issuer {
		return bad("iss %q is not this transmitter's (%s)", *req.Iss, t.cfg.Issuer)
	}
	if len(req.Aud) > 0 {
		var one string
		var many []string
		if json.Unmarshal(req.Aud, &one) != nil && (json.Unmarshal(req.Aud, &many) != nil || len(many) != 1) {
			return bad("aud: want the stream's audience %q", s.aud)
		} else if len(many) == 1 {
			one = many[0]
		}
		if one != s.aud {
			return bad("aud %q is not the stream's (%s); it cannot be changed", one, s.aud)
		}
	}
	if req.EventsSupported != nil && !sameSet(*req.EventsSupported, EventsSupported) {
		return bad("events_supported is the transmitter's (%v)", EventsSupported)
	}
	if req.MinVerificationInterval != nil && *req.MinVerificationInterval != t.minVerificationSeconds() {
		return bad("min_verification_interval is the transmitter's (%d)", t.minVerificationSeconds())
	}
	if req.Delivery == nil && (replace || s.method == "") {
		return bad("delivery: required, with method %s and endpoint_url, or method %s", DeliveryPush, DeliveryPoll)
	}
	if d := req.Delivery; d != nil {
		switch d.Method {
		case DeliveryPush:
			if err := validate.HTTPURL("delivery.endpoint_url", d.EndpointURL); err != nil {
				return http.StatusBadRequest, err
			}
		case DeliveryPoll:
			// The transmitter supplies a poll stream's endpoint_url; one
			// sent back must be it. The receiver authenticates with its
			// bearer token: there is no header to keep.
			if d.EndpointURL != "" && d.EndpointURL != t.pollURL(s.id) {
				return bad("delivery.endpoint_url: the transmitter supplies it for %s (%s)", DeliveryPoll, t.pollURL(s.id))
			}
			if d.AuthorizationHeader != "" {
				return bad("delivery.authorization_header: not used by %s (the receiver polls with its bearer token)", DeliveryPoll)
			}
		default:
			return bad("delivery.method %q: want %s (push) or %s (poll)", d.Method, DeliveryPush, DeliveryPoll)
		}
	}
	requested := s.requested
	if req.EventsRequested != nil {
		// Kept as sent and echoed so; URIs not understood are ignored
		// (SSF: the transmitter MUST ignore them), not refused.
		if len(*req.EventsRequested) > maxEventsRequested {
			return bad("events_requested: at most %d", maxEventsRequested)
		}
		for _, e := range *req.EventsRequested {
			if len(e) > maxURILength {
				return bad("events_requested: a URI longer than %d", maxURILength)
			}
		}
		requested = slices.Clone(*req.EventsRequested)
	} else if replace {
		requested = nil
	}
	if req.EventsDelivered != nil {
		after := &stream{requested: requested}
		if want := after.delivered(); !sameSet(*req.EventsDelivered, want) {
			return bad("events_delivered is the transmitter's (%v)", want)
		}
	}
	if d := req.Delivery; d != nil {
		s.method, s.endpoint, s.auth = d.Method, d.EndpointURL, secret.New(d.AuthorizationHeader)
		if d.Method == DeliveryPoll {
			s.endpoint, s.auth = "", secret.Secret{}
		}
	}
	s.requested = requested
	if req.Description != nil {
		s.description = truncate(*req.Description, maxDescription)
	} else if replace {
		s.description = ""
	}
	return 0, nil
}

func (t *Transmitter) createStream(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	var req streamRequest
	if !decode(w, r, &req) {
		return
	}
	if req.StreamID != "" {
		writeError(w, http.StatusBadRequest, "stream_id: the transmitter assigns it")
		return
	}
	if !t.endpointOK(w, r, &req) {
		return
	}
	s := newStream(newStreamID(), rc.Audience, false)
	if code, err := t.apply(s, &req, false); err != nil {
		writeError(w, code, err.Error())
		return
	}
	if n, ok := t.addUnder(s); !ok {
		writeError(w, http.StatusConflict, fmt.Sprintf("this receiver has %d streams, the most it may have", n))
		return
	}
	t.save()
	t.log.Info("SSF stream created", "stream_id", s.id, "aud", s.aud, "method", s.deliveryMethod(), "endpoint", deliver.SafeURL(t.endpointOf(s)))
	writeJSON(w, http.StatusCreated, t.view(s))
}

// endpointOK checks a push endpoint the request sets (checkEndpoint),
// before any stream lock is taken: it resolves the host. It writes the 400.
func (t *Transmitter) endpointOK(w http.ResponseWriter, r *http.Request, req *streamRequest) bool {
	if d := req.Delivery; d != nil && d.Method == DeliveryPush {
		if err := t.checkEndpoint(r.Context(), d.EndpointURL); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return false
		}
	}
	return true
}

// find returns the receiver's stream named by id; it writes the error.
func (t *Transmitter) find(w http.ResponseWriter, rc *Receiver, id string) *stream {
	if id == "" {
		writeError(w, http.StatusBadRequest, "stream_id: required")
		return nil
	}
	t.mu.Lock()
	s := t.streams[id]
	t.mu.Unlock()
	if s == nil || s.aud != rc.Audience {
		writeError(w, http.StatusNotFound, "no stream "+id+" for this receiver")
		return nil
	}
	return s
}

func (t *Transmitter) readStream(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	id := r.URL.Query().Get("stream_id")
	if id == "" {
		out := []streamJSON{}
		for _, s := range t.list() {
			if s.aud == rc.Audience {
				out = append(out, t.view(s))
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	if s := t.find(w, rc, id); s != nil {
		writeJSON(w, http.StatusOK, t.view(s))
	}
}

func (t *Transmitter) updateStream(replace bool) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *Receiver) {
		var req streamRequest
		s := t.named(w, r, rc, &req, &req.StreamID)
		if s == nil {
			return
		}
		if s.static {
			writeError(w, http.StatusForbidden, "stream "+s.id+" is configured in respond.ssf.streams: change it there")
			return
		}
		if !t.endpointOK(w, r, &req) {
			return
		}
		s.mu.Lock()
		code, err := t.apply(s, &req, replace)
		poll := s.method == DeliveryPoll
		if poll {
			s.failures = 0 // nothing is pushed any more: nothing is failing
		}
		s.mu.Unlock()
		if err != nil {
			writeError(w, code, err.Error())
			return
		}
		if poll {
			t.metrics.blocked(s.id, false)
		}
		s.unblock() // a held stream tries again with what the receiver set
		t.save()
		writeJSON(w, http.StatusOK, t.view(s))
	}
}

func (t *Transmitter) deleteStream(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	s := t.find(w, rc, r.URL.Query().Get("stream_id"))
	if s == nil {
		return
	}
	if s.static {
		writeError(w, http.StatusForbidden, "stream "+s.id+" is configured in respond.ssf.streams: remove it there")
		return
	}
	t.remove(s.id)
	t.save()
	t.log.Info("SSF stream deleted", "stream_id", s.id, "aud", s.aud)
	w.WriteHeader(http.StatusNoContent)
}

type statusJSON struct {
	StreamID string         `json:"stream_id"`
	Status   string         `json:"status"`
	Reason   string         `json:"reason,omitempty"`
	Subject  map[string]any `json:"subject,omitempty"`
}

func (t *Transmitter) readStatus(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	s := t.find(w, rc, r.URL.Query().Get("stream_id"))
	switch {
	case s == nil:
	case r.URL.Query().Get("subject") != "":
		writeError(w, http.StatusBadRequest, "subject: status per subject is not kept; the status is the stream's")
	default:
		s.mu.Lock()
		st := statusJSON{StreamID: s.id, Status: s.status, Reason: s.reason}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, st)
	}
}

// updateStatus enables, pauses or disables a stream. Disabling drops what
// was held (SSF 1.0: a disabled stream holds nothing); enabling sends what
// a pause held.
func (t *Transmitter) updateStatus(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	var req statusJSON
	s := t.named(w, r, rc, &req, &req.StreamID)
	if s == nil {
		return
	}
	if req.Subject != nil {
		writeError(w, http.StatusBadRequest, "subject: status per subject is not kept; use the add and remove subject endpoints")
		return
	}
	if !slices.Contains(statuses, req.Status) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want enabled, paused or disabled", req.Status))
		return
	}
	s.mu.Lock()
	req.Reason = truncate(req.Reason, maxReason)
	s.status, s.reason = req.Status, req.Reason
	dropped := 0
	if req.Status == StatusDisabled {
		dropped = t.clear(s)
	}
	s.mu.Unlock()
	t.save()
	t.metrics.count(s.id, "dropped", dropped)
	s.unblock()
	t.log.Info("SSF stream status", "stream_id", s.id, "status", req.Status, "reason", req.Reason, "dropped", dropped)
	writeJSON(w, http.StatusOK, statusJSON{StreamID: s.id, Status: req.Status, Reason: req.Reason})
}

// subject adds or removes a subject (SSF 1.0 "Subjects"): under
// default_subjects ALL, a removed subject's events stop; under NONE only
// added subjects' events go. Subjects are kept whole and matched as SSF
// "Subject Matching" says: a subject {tenant T1, user alice} matches
// alice's events in T1, never in T2.
func (t *Transmitter) subject(add bool) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *Receiver) {
		var req struct {
			StreamID string         `json:"stream_id"`
			Subject  map[string]any `json:"subject"`
			Verified *bool          `json:"verified"`
		}
		s := t.named(w, r, rc, &req, &req.StreamID)
		if s == nil {
			return
		}
		if f, _ := req.Subject["format"].(string); f == "" {
			writeError(w, http.StatusBadRequest, "subject: required, a subject identifier with a format (RFC 9493)")
			return
		}
		m, err := complexMembers(req.Subject)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.mu.Lock()
		into, from := s.added, s.removed
		if !add {
			into, from = s.removed, s.added
		}
		full := !into.has(m) && !from.has(m) && s.added.len()+s.removed.len() >= maxSubjectsPerStream
		if !full {
			into.put(m)
			from.del(m)
		}
		s.mu.Unlock()
		if full {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("this stream has %d subjects, the most it may have", maxSubjectsPerStream))
			return
		}
		t.save()
		if add {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// verify queues a verification event on the stream (SSF 1.0 "Triggering a
// Verification Event"): 204 once queued, 429 sooner than
// min_verification_interval after the last.
func (t *Transmitter) verify(w http.ResponseWriter, r *http.Request, rc *Receiver) {
	var req struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	s := t.named(w, r, rc, &req, &req.StreamID)
	if s == nil {
		return
	}
	now := t.Now()
	s.mu.Lock()
	disabled := s.status == StatusDisabled
	wait := t.cfg.MinVerificationInterval - now.Sub(s.lastVerify)
	soon := !disabled && !s.lastVerify.IsZero() && wait > 0
	if !soon && !disabled {
		s.lastVerify = now
	}
	s.mu.Unlock()
	if disabled {
		// A disabled stream sends nothing: a 204 would promise an event
		// that never comes.
		writeError(w, http.StatusBadRequest, "stream "+s.id+" is disabled: enable it to verify it")
		return
	}
	if soon {
		// What is left of the interval, in whole seconds rounded up.
		w.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "verification requested again within min_verification_interval")
		return
	}
	e := verification(s.id, req.State, now)
	t.send(s, &e)
	s.unblock() // the receiver says it is ready: a held stream tries again
	w.WriteHeader(http.StatusNoContent)
}
