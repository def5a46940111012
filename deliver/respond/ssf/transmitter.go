// Package ssf is tokenwatch's Shared Signals transmitter (OpenID Shared
// Signals Framework 1.0): what the respond stage sees and does becomes
// Security Event Tokens (RFC 8417) for the receivers that asked for them —
// CAEP session-revoked and credential-change for an executed revocation,
// CAEP risk-level-change as an incident's risk moves, RISC
// credential-compromise for a credential seen used when it must not work.
// SETs are signed with the configured key (published at the JWKS endpoint)
// and pushed (RFC 8935) with retries, or polled by the receiver (RFC
// 8936); receivers discover the transmitter at
// /.well-known/ssf-configuration and manage their streams through the SSF
// management API. It imports no other stage; the respond stage hands it
// incidents and audit records.
package ssf

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Metrics are the transmitter's instruments.
type Metrics struct {
	// sets counts SETs by stream and result: delivered, retried (one per
	// failed attempt that will be retried), failed (refused as malformed by
	// the receiver, or not signed), dropped (disabled stream, hold limit).
	sets *prometheus.CounterVec
	// blockedStreams is 1 for a stream that is not delivering: the receiver
	// refuses it (held), or its head SET failed retry.max_attempts times in
	// a row (still retried).
	blockedStreams *prometheus.GaugeVec
}

// NewMetrics creates and registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{sets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_ssf_sets_total",
		Help: "Security Event Tokens pushed to or polled by SSF receivers, by stream and result (delivered, retried, failed, dropped)."},
		[]string{"stream", "result"}),
		blockedStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenwatch_ssf_stream_blocked",
			Help: "1 while an SSF stream is not delivering: its receiver refuses it (401, 403, invalid_key, …; SETs held) or its pushes keep failing (retried)."},
			[]string{"stream"})}
	reg.MustRegister(m.sets, m.blockedStreams)
	return m
}

func (m *Metrics) blocked(stream string, on bool) {
	if m != nil {
		v := 0.0
		if on {
			v = 1
		}
		m.blockedStreams.WithLabelValues(stream).Set(v)
	}
}

// forget removes a deleted stream's series: stream ids are random, so
// keeping them would grow the series without bound.
func (m *Metrics) forget(stream string) {
	if m != nil {
		m.sets.DeletePartialMatch(prometheus.Labels{"stream": stream})
		m.blockedStreams.DeleteLabelValues(stream)
	}
}

func (m *Metrics) count(stream, result string, n int) {
	if m != nil && n > 0 {
		m.sets.WithLabelValues(stream, result).Add(float64(n))
	}
}

// seenIncidents bounds the incident and integration pairs remembered.
const seenIncidents = 100000

// told is what receivers were told of one incident and integration.
type told struct {
	level       string
	compromised bool
}

// toldFlush is how often what was told of incidents is written to
// state_file, when it changed: incidents come often, streams rarely.
const toldFlush = 5 * time.Second

// Transmitter holds the streams and sends SETs over them. Incident and
// Record are the respond stage's hooks; Handler serves the SSF endpoints.
type Transmitter struct {
	cfg    Config
	signer *signer
	// retired are the previous keys still published until their overlap
	// ends (keySet).
	retired []retiredKey
	client  *http.Client // configured streams: the operator chose their endpoints
	// apiClient pushes for streams created through the API: its dialer
	// refuses private, link-local, loopback and unspecified addresses.
	apiClient *http.Client
	log       *slog.Logger
	metrics   *Metrics
	// Now is the wall clock: every SET's iat, and the time of verification
	// events; tests set it.
	Now func() time.Time

	mu      sync.Mutex
	streams map[string]*stream
	order   []string // stream ids, creation order
	// seen is what was told of each incident and integration, bounded so
	// the memory does not grow with every incident ever seen (one evicted
	// starts unknown again: no previous_level).
	seen *lru.Cache[string, told]
	ctx  context.Context // set by Start: workers of streams created later
	// flushing is the state_file flusher Start runs; Run waits for its
	// last write.
	flushing sync.WaitGroup
	// toldMu orders writes of the told file.
	toldMu sync.Mutex
	// toldDirty: seen changed since the told file was last written.
	toldDirty atomic.Bool
	// blockedProbe is how often a held stream tries its head SET again.
	blockedProbe time.Duration
	// pollWait bounds a long poll (pollWait; tests shorten it, under mu).
	pollWait time.Duration
	// saveMu orders writes of the state file.
	saveMu sync.Mutex
	// ob is the durable copy of the queues, <state_file>.queue (nil
	// without state_file).
	ob *outbox
	// changed are the statuses load set by itself, told by tellChanges.
	changed []statusChange
}

// New validates cfg and builds the transmitter; nothing runs until Start
// (or Run).
func New(cfg Config, m *Metrics, log *slog.Logger) (*Transmitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sg, err := parseKey(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("respond.ssf.signing_key: %w", err)
	}
	sg.kid = cfg.KeyID
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{Timeout: cfg.Timeout, CheckRedirect: noRedirect}
	t := &Transmitter{cfg: cfg, signer: sg, client: client, apiClient: guardedClient(cfg.Timeout, cfg.AllowInsecureHTTP), log: log.With("component", "ssf"),
		metrics: m, Now: time.Now, streams: map[string]*stream{}, blockedProbe: 5 * time.Minute, pollWait: pollWait}
	t.seen, _ = lru.New[string, told](seenIncidents)
	for _, pk := range cfg.PreviousKeys {
		pub, method, err := publicKey(pk.Key) // Validate parsed it
		if err != nil {
			return nil, fmt.Errorf("respond.ssf.previous_keys %s: %w", pk.KeyID, err)
		}
		if !t.Now().Before(pk.Until) {
			t.log.Info("SSF previous key not published: its overlap has ended", "key_id", pk.KeyID, "until", pk.Until)
		}
		t.retired = append(t.retired, retiredKey{kid: pk.KeyID, jwk: jwkOf(pub, method.Alg(), pk.KeyID), until: pk.Until})
	}
	for _, sc := range cfg.Streams {
		s := newStream(sc.ID, sc.Audience, true)
		s.endpoint, s.auth, s.requested, s.description, s.status = sc.EndpointURL, sc.AuthorizationHeader, sc.EventsRequested, sc.Description, sc.Status
		s.configStatus, s.reason = sc.Status, truncate(sc.StatusReason, maxReason)
		s.method = sc.DeliveryMethod
		if len(s.requested) == 0 {
			s.requested = slices.Clone(EventsSupported) // the config's default: all
		}
		t.add(s)
	}
	if err := t.load(); err != nil {
		return nil, err
	}
	if err := t.loadOutbox(); err != nil {
		return nil, err
	}
	t.tellChanges()
	return t, nil
}

// statusChange is a stream status the transmitter set by itself: the
// receiver did not ask for it.
type statusChange struct {
	s             *stream
	from, to, why string
}

// tellChanges queues a stream-updated event on each stream whose status
// load changed (SSF 1.0 "Stream Updated Event": "If a Transmitter decides
// to change the status of an Event Stream from "enabled" to either "paused"
// or "disabled", then the Transmitter MUST send this event to the Receiver
// before stopping the stream", and upon re-enabling it). It goes ahead of
// the stream's SETs and past a pause or a disable. state_file is then
// saved, every start, so that it holds each configured stream's status
// (the next start compares the config with it) and does not tell a change
// again; a crash before that save tells it twice, never not at all.
func (t *Transmitter) tellChanges() {
	for _, c := range t.changed {
		e := streamUpdated(c.s.id, c.to, c.why, t.Now())
		t.send(c.s, &e)
		t.log.Info("SSF stream status changed by the transmitter; stream-updated queued for its receiver", "stream_id", c.s.id,
			"from", c.from, "status", c.to, "reason", c.why)
	}
	// The queued events on disk before the state that says they were told:
	// a crash between the two then tells a change twice, never not at all.
	if len(t.changed) > 0 {
		t.ob.sync()
	}
	t.changed = nil
	t.save()
}

func (t *Transmitter) add(s *stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(s)
}

// addLocked adds s and starts its worker once the transmitter runs (t.mu held).
func (t *Transmitter) addLocked(s *stream) {
	t.streams[s.id] = s
	t.order = append(t.order, s.id)
	if t.ctx != nil {
		go t.work(t.ctx, s)
	}
}

// addUnder adds s unless its receiver already has maxStreamsPerReceiver
// streams: counted and added under one lock, so two concurrent creates
// cannot both pass the count. It returns the count when full.
func (t *Transmitter) addUnder(s *stream) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, o := range t.streams {
		if o.aud == s.aud {
			n++
		}
	}
	if n >= maxStreamsPerReceiver {
		return n, false
	}
	t.addLocked(s)
	return n, true
}

func (t *Transmitter) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.streams[id]; ok {
		close(s.stop)
		t.ob.deleted(id)
		t.metrics.forget(id)
		delete(t.streams, id)
		for i, o := range t.order {
			if o == id {
				t.order = append(t.order[:i], t.order[i+1:]...)
				break
			}
		}
	}
}

// list returns the streams in creation order.
func (t *Transmitter) list() []*stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*stream, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.streams[id])
	}
	return out
}

// Start runs the streams' push workers until ctx ends, and with state_file
// writes what was told of incidents beside it every toldFlush (and once at
// the end).
func (t *Transmitter) Start(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ctx = ctx
	for _, id := range t.order {
		go t.work(ctx, t.streams[id])
	}
	if t.ob != nil {
		// The outbox: fsynced every outboxSync when it changed, and
		// closed at the end.
		t.flushing.Add(1)
		go func() {
			defer t.flushing.Done()
			tick := time.NewTicker(outboxSync)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					t.ob.close()
					return
				case <-tick.C:
					t.ob.sync()
				}
			}
		}()
	}
	if t.cfg.StateFile != "" {
		t.flushing.Add(1)
		go func() {
			defer t.flushing.Done()
			tick := time.NewTicker(toldFlush)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					if t.toldDirty.Swap(false) {
						t.saveTold()
					}
					return
				case <-tick.C:
					if t.toldDirty.Swap(false) {
						t.saveTold()
					}
				}
			}
		}()
	}
}

// Run starts the workers and serves the SSF endpoints on the configured
// listen address until ctx ends.
func (t *Transmitter) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", t.cfg.Listen)
	if err != nil {
		return fmt.Errorf("respond.ssf.listen: %w", err)
	}
	t.Start(ctx)
	// Bodies are small (64 KiB at most) and answers immediate but a long
	// poll's (at most pollWait, 25 s): a client holding a connection
	// longer is not a receiver.
	srv := &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	t.log.Info("SSF transmitter listening", "addr", ln.Addr().String(), "issuer", t.cfg.Issuer, "streams", len(t.list()))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ssf: %w", err)
	}
	t.flushing.Wait() // shut down: the last state_file write is done
	return nil
}

// Incident turns an incident version into risk-level-change (when the
// level moved since the last version seen) and credential-compromise (once
// per incident and integration) events. Call it with versions in the order
// they were produced. What was told is kept in state_file when there is
// one (written every toldFlush), so a restart keeps previous_level and
// does not tell a compromise twice; without it, or for a pair evicted from
// the bounded memory, the first version seen again carries no
// previous_level (and, its claims differing, its own jti).
func (t *Transmitter) Incident(inc schemas.Incident) {
	var evs []event
	t.mu.Lock()
	for _, integration := range integrations(&inc) {
		k := inc.ID + "\x00" + integration
		mem, _ := t.seen.Get(k)
		// A first sight at LOW is no change to tell (LOW is where an
		// integration with no incident stands).
		if now := level(&inc); mem.level != now && (mem.level != "" || now != "LOW") {
			evs = append(evs, riskChange(&inc, integration, mem.level))
			mem.level = now
		} else if mem.level == "" {
			mem.level = now
		}
		if !mem.compromised && t.cfg.Compromise.compromised(&inc) {
			evs = append(evs, compromise(&inc, integration, t.cfg.CredentialType))
			mem.compromised = true
		}
		t.seen.Add(k, mem)
	}
	t.mu.Unlock()
	t.toldDirty.Store(true)
	t.emit(evs)
}

// Record takes the respond stage's audit records (it is one of its
// recorders): executed revocations become session-revoked and
// credential-change. It only queues, so it never holds the stage up; the
// queue is journaled beside state_file (outbox.go) when there is one.
func (t *Transmitter) Record(_ context.Context, rs []schemas.Response) error {
	for i := range rs {
		t.emit(fromResponse(&rs[i], t.cfg.CredentialType))
	}
	return nil
}

// emit signs each event for every stream that wants it and queues it.
func (t *Transmitter) emit(evs []event) {
	if len(evs) == 0 {
		return
	}
	all := t.cfg.DefaultSubjects == "ALL"
	subs := make([]members, len(evs))
	for i := range evs {
		subs[i], _ = complexMembers(evs[i].subject) // always complex: built by subject()
	}
	for _, s := range t.list() {
		for i := range evs {
			s.mu.Lock()
			want := s.wants(evs[i].typ, subs[i], all)
			s.mu.Unlock()
			if want {
				t.send(s, &evs[i])
			}
		}
	}
}

// send signs e for s, iat now, and queues it.
func (t *Transmitter) send(s *stream, e *event) {
	set, err := t.signer.sign(jwt.MapClaims(e.claims(t.cfg.Issuer, s.aud, t.Now())))
	if err != nil {
		t.metrics.count(s.id, "failed", 1)
		t.log.Error("SET not signed", "stream_id", s.id, "event", e.typ, "err", err)
		return
	}
	t.enqueue(s, pending{set: set, typ: e.typ, jti: e.jti(t.cfg.Issuer, s.aud)})
}

// receiver is the receiver a bearer token belongs to, nil for none.
func (t *Transmitter) receiver(r *http.Request) *Receiver {
	// The scheme is case-insensitive (RFC 9110 §11.1).
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimLeft(tok, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil
	}
	for i := range t.cfg.Receivers {
		if subtle.ConstantTimeCompare([]byte(t.cfg.Receivers[i].Token.Reveal()), []byte(tok)) == 1 {
			return &t.cfg.Receivers[i]
		}
	}
	return nil
}

func newStreamID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
