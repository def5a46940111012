// Package webhook sends alerts and incidents as signed JSON to any HTTP
// receiver: one POST per alert or incident version, with headers that let the receiver verify origin and reject
// replays:
//
//	X-Tokenwatch-Timestamp: 1761531187            (Unix seconds)
//	X-Tokenwatch-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// See README.md for the few lines a receiver needs.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/retryafter"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind in config.
const Kind = "webhook"

func init() {
	deliver.Register(Kind, func(name string, decode func(any) error) (deliver.Sink, error) {
		cfg := DefaultConfig()
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return New(name, cfg)
	})
}

// Header names.
const (
	HeaderTimestamp = "X-Tokenwatch-Timestamp"
	HeaderSignature = "X-Tokenwatch-Signature"
	// HeaderKind is "alert" or "incident".
	HeaderKind = "X-Tokenwatch-Kind"
	// HeaderIncidentVersion is the incident version an incident POST carries.
	HeaderIncidentVersion = "X-Tokenwatch-Incident-Version"
)

// Config is the sink's YAML config.
type Config struct {
	URL     secret.Secret     `yaml:"url"`    // may embed a token: treated as a secret
	Secret  secret.Secret     `yaml:"secret"` // HMAC key
	Headers map[string]string `yaml:"headers"`
	Timeout time.Duration     `yaml:"timeout"`
	// Format is "json" (schemas.Alert / schemas.Incident) or "ocsf" (OCSF
	// Detection Finding, class 2004).
	Format string `yaml:"format"`
}

// DefaultConfig has a 10 s timeout and tokenwatch's JSON.
func DefaultConfig() Config { return Config{Timeout: 10 * time.Second, Format: deliver.FormatJSON} }

// Sink is the generic webhook.
type Sink struct {
	name   string
	cfg    Config
	client *http.Client
	now    func() time.Time
}

var _ deliver.IncidentSink = (*Sink)(nil)

// New validates cfg.
func New(name string, cfg Config) (*Sink, error) {
	if cfg.URL.IsZero() {
		return nil, errors.New("url: required")
	}
	if err := validate.HTTPURL("url", cfg.URL.Reveal()); err != nil {
		return nil, err
	}
	if cfg.Secret.IsZero() {
		return nil, errors.New("secret: required (receivers verify the signature with it)")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("timeout %s: must be positive", cfg.Timeout)
	}
	if cfg.Format == "" {
		cfg.Format = deliver.FormatJSON
	}
	if err := deliver.ValidateFormat(cfg.Format); err != nil {
		return nil, err
	}
	return &Sink{name: name, cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, now: time.Now}, nil
}

// Name implements deliver.Sink.
func (s *Sink) Name() string { return s.name }

// Sign returns the signature header value for body sent at ts.
func Sign(key []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a received request's headers against body: the signature must
// match and the timestamp be within tolerance of now. Receivers written in Go
// can call it directly.
func Verify(key []byte, tsHeader, sigHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s", HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp outside the %s window (replay?)", tolerance)
	}
	if !hmac.Equal([]byte(Sign(key, ts, body)), []byte(sigHeader)) {
		return errors.New("signature mismatch")
	}
	return nil
}

// Send posts each alert; the first failure stops the batch (the runner retries
// the whole batch, and receivers dedup on alert id).
func (s *Sink) Send(ctx context.Context, alerts []schemas.Alert) error {
	for i := range alerts {
		if err := s.post(ctx, &alerts[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) post(ctx context.Context, a *schemas.Alert) error {
	body, err := deliver.EncodeAlert(s.cfg.Format, a)
	if err != nil {
		return &deliver.PermanentError{Err: fmt.Errorf("webhook %s: encode alert %s: %w", s.name, a.ID, err)}
	}
	return s.do(ctx, body, map[string]string{"Idempotency-Key": a.ID, HeaderKind: "alert"})
}

// SendIncident implements deliver.IncidentSink: one signed POST of the
// incident version (Idempotency-Key "<id>/v<version>", X-Tokenwatch-Kind
// incident, X-Tokenwatch-Incident-Version). Receivers keep the highest
// version of each id.
func (s *Sink) SendIncident(ctx context.Context, inc schemas.Incident, _ deliver.Receipt) (deliver.Receipt, error) {
	body, err := deliver.EncodeIncident(s.cfg.Format, &inc)
	if err != nil {
		return "", &deliver.PermanentError{Err: fmt.Errorf("webhook %s: encode incident %s: %w", s.name, inc.ID, err)}
	}
	v := strconv.Itoa(inc.Version)
	return "", s.do(ctx, body, map[string]string{"Idempotency-Key": inc.ID + "/v" + v, HeaderKind: "incident", HeaderIncidentVersion: v})
}

func (s *Sink) do(ctx context.Context, body []byte, headers map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return &deliver.PermanentError{Err: fmt.Errorf("webhook %s: %s", s.name, secret.Redact(err.Error(), s.cfg.URL))}
	}
	ts := s.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokenwatch")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign([]byte(s.cfg.Secret.Reveal()), ts, body))
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which may hold a token.
		return fmt.Errorf("webhook %s: %s", s.name, secret.Redact(err.Error(), s.cfg.URL))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return StatusError(s.name, resp)
}

// StatusError classifies an HTTP response: nil for 2xx, RetryAfterError for
// 429/503 with Retry-After, a retryable error for 5xx and 429, PermanentError
// for the rest.
func StatusError(name string, resp *http.Response) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err := fmt.Errorf("webhook %s: HTTP %d", name, code)
	if code == http.StatusTooManyRequests || code >= 500 {
		if d := retryafter.Parse(resp.Header.Get("Retry-After")); d > 0 {
			return &deliver.RetryAfterError{Err: err, After: d}
		}
		return err
	}
	return &deliver.PermanentError{Err: err}
}
