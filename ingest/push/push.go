// Package push receives audit records that vendors send rather than let us
// poll: `POST /ingest/{source}`, signed with a per-source secret (GitHub's
// X-Hub-Signature-256 or Slack's v0 signature with a replay window). It
// verifies, normalizes with the source's registered normalizer, drops
// redeliveries, and answers 2xx only after the Publisher made the events and
// dead letters durable, so a vendor that retries on non-2xx never loses a
// record. Nothing is produced for a request answered 400, 401, 404, 413 or
// 415.
//
// It must not import detect, enrich or deliver.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Publisher makes pushed records durable. Each call returns nil only once
// everything passed is acknowledged by Kafka; the handler answers 2xx after
// that and never before. *publish.Publisher satisfies it.
type Publisher interface {
	Events(ctx context.Context, evs []schemas.Event) error
	DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error
}

// SourceConfig is one push endpoint.
type SourceConfig struct {
	// Source is the registered normalizer id (ingest.NewNormalizer), e.g. "github".
	Source string `yaml:"source"`
	// Path is the {source} segment of the URL; defaults to Source. Set it to
	// receive one source for several tenants (e.g. github-acme, github-globex).
	Path string `yaml:"path"`
	// Tenant labels events whose record carries none.
	Tenant string `yaml:"tenant"`
	// Verify is the signature style: github or slack. Defaults to the source
	// name when that is one of them.
	Verify string `yaml:"verify"`
	// Secret is the shared signing secret ("env:NAME" or "file:PATH" in YAML).
	Secret secret.Secret `yaml:"secret"`
}

// Config is the `push:` block.
type Config struct {
	// MaxBodyBytes bounds a request body; larger bodies are answered 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReplayWindow is how old (or new) a Slack request timestamp may be.
	ReplayWindow time.Duration `yaml:"replay_window"`
	// DedupSize bounds each redelivery memory (delivery ids, event ids): an
	// LRU of that many keys, ~100 bytes each.
	DedupSize int            `yaml:"dedup_size"`
	Sources   []SourceConfig `yaml:"sources"`
}

// Defaults.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultDedupSize    = 100_000
)

// DefaultConfig has every default and no sources.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: DefaultMaxBodyBytes, ReplayWindow: DefaultReplayWindow, DedupSize: DefaultDedupSize}
}

// Validate checks the config; it does not check that sources are registered (New does).
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("push.max_body_bytes %d: must be positive", c.MaxBodyBytes))
	}
	if c.ReplayWindow <= 0 {
		errs = append(errs, fmt.Errorf("push.replay_window %s: must be positive", c.ReplayWindow))
	}
	if c.DedupSize < 1 {
		errs = append(errs, fmt.Errorf("push.dedup_size %d: must be positive", c.DedupSize))
	}
	paths := map[string]bool{}
	for i, s := range c.Sources {
		s = s.withDefaults()
		if s.Source == "" {
			errs = append(errs, fmt.Errorf("push.sources[%d].source: required", i))
		}
		if strings.Contains(s.Path, "/") {
			errs = append(errs, fmt.Errorf("push.sources[%d].path %q: must be one path segment", i, s.Path))
		}
		if paths[s.Path] {
			errs = append(errs, fmt.Errorf("push.sources[%d].path %q: duplicate", i, s.Path))
		}
		paths[s.Path] = true
		if _, err := NewVerifier(s.Verify, s.Secret, c.ReplayWindow); err != nil {
			errs = append(errs, fmt.Errorf("push.sources[%d] (%s): %w", i, s.Path, err))
		}
	}
	return errors.Join(errs...)
}

func (s SourceConfig) withDefaults() SourceConfig {
	if s.Path == "" {
		s.Path = s.Source
	}
	if s.Verify == "" && (s.Source == StyleGitHub || s.Source == StyleSlack) {
		s.Verify = s.Source
	}
	return s
}

// Handler serves POST /ingest/{source}.
type Handler struct {
	cfg    Config
	routes map[string]route
	pub    Publisher
	log    *slog.Logger
	now    func() time.Time

	deliveries *lru.Cache[string, struct{}] // acknowledged delivery ids
	events     *lru.Cache[string, struct{}] // acknowledged source/tenant/event_id
	mu         sync.Mutex
	inflight   map[string]bool // delivery ids being handled right now
}

type route struct {
	source string
	norm   ingest.Normalizer
	verify Verifier
}

// New validates cfg and builds the handler; every source must have a
// registered normalizer (link the connectors with ingest/all).
func New(cfg Config, pub Publisher, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("push: publisher required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, routes: map[string]route{}, pub: pub, log: log.With("component", "push"),
		now: time.Now, inflight: map[string]bool{}}
	for _, s := range cfg.Sources {
		s = s.withDefaults()
		n, err := ingest.NewNormalizer(s.Source, s.Tenant)
		if err != nil {
			return nil, fmt.Errorf("push.sources %s: %w", s.Path, err)
		}
		v, _ := NewVerifier(s.Verify, s.Secret, cfg.ReplayWindow) // checked by Validate
		h.routes[s.Path] = route{source: s.Source, norm: n, verify: v}
	}
	h.deliveries, _ = lru.New[string, struct{}](cfg.DedupSize)
	h.events, _ = lru.New[string, struct{}](cfg.DedupSize)
	return h, nil
}

// Pattern is the ServeMux pattern the handler expects.
const Pattern = "POST /ingest/{source}"

// Register mounts the handler on mux at Pattern.
func (h *Handler) Register(mux *http.ServeMux) { mux.Handle(Pattern, h) }

// Result is the body of a 200 answer.
type Result struct {
	Events      int  `json:"events"`
	DeadLetters int  `json:"dead_letters"`
	Duplicates  int  `json:"duplicates"`
	Redelivery  bool `json:"redelivery,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	path := r.PathValue("source")
	if path == "" { // mounted without a pattern
		path = strings.TrimPrefix(r.URL.Path, "/ingest/")
	}
	rt, ok := h.routes[path]
	if !ok {
		h.fail(w, http.StatusNotFound, "unknown source")
		return
	}
	log := h.log.With("source", rt.source, "path", path)
	form, err := bodyKind(r.Header.Get("Content-Type"))
	if err != nil {
		log.Warn("push rejected", "status", http.StatusUnsupportedMediaType, "reason", err.Error(), "remote", r.RemoteAddr)
		h.fail(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	tooLarge := func() {
		// Logged: a vendor whose deliveries outgrew the limit loses them
		// until max_body_bytes is raised.
		log.Warn("push rejected", "status", http.StatusRequestEntityTooLarge, "reason", "body over ingest.push.max_body_bytes",
			"max_body_bytes", h.cfg.MaxBodyBytes, "content_length", r.ContentLength, "remote", r.RemoteAddr)
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body too large (limit %d bytes)", h.cfg.MaxBodyBytes))
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		tooLarge()
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge()
			return
		}
		h.fail(w, http.StatusBadRequest, "could not read body")
		return
	}
	delivery, err := rt.verify.Verify(r.Header, body, h.now())
	if err != nil {
		log.Warn("push rejected", "status", http.StatusUnauthorized, "reason", err.Error(), "remote", r.RemoteAddr)
		h.fail(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if delivery != "" {
		switch h.claim(path + "/" + delivery) {
		case claimDone:
			h.reply(w, Result{Redelivery: true})
			return
		case claimBusy:
			w.Header().Set("Retry-After", "1")
			h.fail(w, http.StatusServiceUnavailable, "delivery in progress")
			return
		}
		defer h.release(path + "/" + delivery)
	}
	// Signed bytes are the raw body, form or not (GitHub signs what it sends).
	doc := body
	if form {
		if doc, err = formPayload(body); err != nil {
			log.Warn("push rejected", "status", http.StatusBadRequest, "reason", err.Error())
			h.fail(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	recs, err := parse(doc)
	if err != nil {
		log.Warn("push rejected", "status", http.StatusBadRequest, "reason", err.Error())
		h.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	b := ingest.NormalizeRecords(rt.norm, "push "+path, recs)
	var fresh []schemas.Event
	var keys []string
	inBatch := map[string]bool{}
	for _, ev := range b.Events {
		k := rt.source + "/" + ev.Tenant + "/" + ev.EventID
		if inBatch[k] || h.events.Contains(k) {
			continue
		}
		inBatch[k] = true
		fresh, keys = append(fresh, ev), append(keys, k)
	}
	if err := h.pub.Events(r.Context(), fresh); err != nil {
		log.Error("push not acknowledged: publish events failed", "err", err, "events", len(fresh))
		h.fail(w, http.StatusInternalServerError, "not stored, retry")
		return
	}
	for _, k := range keys {
		h.events.Add(k, struct{}{})
	}
	if err := h.pub.DeadLetters(r.Context(), b.Dead); err != nil {
		log.Error("push not acknowledged: publish dead letters failed", "err", err, "dead_letters", len(b.Dead))
		h.fail(w, http.StatusInternalServerError, "not stored, retry")
		return
	}
	if delivery != "" {
		h.deliveries.Add(path+"/"+delivery, struct{}{})
	}
	log.Debug("push stored", "events", len(fresh), "dead_letters", len(b.Dead), "duplicates", len(b.Events)-len(fresh))
	h.reply(w, Result{Events: len(fresh), DeadLetters: len(b.Dead), Duplicates: len(b.Events) - len(fresh)})
}

// parse reads one record, an array of records, or a vendor page. Anything
// that is not one JSON document of objects is malformed (400): a signed but
// garbled body is the sender's bug, and answering 4xx tells it so without
// producing anything.
func parse(body []byte) ([]ingest.RawRecord, error) {
	trimmed := bytes.TrimSpace(ingest.TrimBOM(body))
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return nil, errors.New("malformed: body is not one JSON document")
	}
	recs, err := ingest.ReadRecords(bytes.NewReader(trimmed))
	if err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if len(recs) == 0 {
		return nil, errors.New("malformed: no records")
	}
	for _, r := range recs {
		if r.Err != nil {
			return nil, fmt.Errorf("malformed: %s: %v", r.Pos, r.Err)
		}
	}
	return recs, nil
}

// bodyKind accepts JSON (application/json, any application/*+json, or no
// Content-Type at all) and form-encoded bodies (GitHub's "application/x-www-
// form-urlencoded" webhook content type, the record in its payload field);
// form reports the latter. Anything else is answered 415 with the reason.
func bodyKind(contentType string) (form bool, err error) {
	if contentType == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, fmt.Errorf("unsupported Content-Type %.60q: not a media type; send application/json", contentType)
	}
	switch {
	case mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return false, nil
	case mt == "application/x-www-form-urlencoded":
		return true, nil
	}
	return false, fmt.Errorf("unsupported Content-Type %q: send application/json (or GitHub's application/x-www-form-urlencoded with a payload field)", mt)
}

// formPayload is the JSON document in the payload field of a form body.
func formPayload(body []byte) ([]byte, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("malformed: form body does not parse")
	}
	p, ok := v["payload"]
	if !ok || len(p) != 1 {
		return nil, errors.New("malformed: form body without exactly one payload field (send JSON with Content-Type: application/json)")
	}
	return []byte(p[0]), nil
}

type claimResult int

const (
	claimNew claimResult = iota
	claimDone
	claimBusy
)

// claim marks a delivery as being handled, unless it was already stored or
// another request is handling it now (a vendor retrying a slow request).
func (h *Handler) claim(key string) claimResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.deliveries.Contains(key) {
		return claimDone
	}
	if h.inflight[key] {
		return claimBusy
	}
	h.inflight[key] = true
	return claimNew
}

func (h *Handler) release(key string) {
	h.mu.Lock()
	delete(h.inflight, key)
	h.mu.Unlock()
}

func (h *Handler) reply(w http.ResponseWriter, res Result) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func (h *Handler) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
