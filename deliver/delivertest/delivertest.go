// Package delivertest is what every sink's tests share: a realistic alert,
// building a sink from its sample.yaml through the registry, and the HTTP
// contract suite (retry classes, Retry-After, permanent errors, no secret in
// any error) that each HTTP sink runs against an httptest server. It is
// imported only by tests.
package delivertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Alert is a geo.new_country alert with observed/baseline and evidence.
func Alert() schemas.Alert {
	return schemas.Alert{
		ID:            "9f2c1d7e5b3a4c6d8e0f1a2b3c4d5e6f",
		Detector:      "geo.new_country",
		Severity:      schemas.SeverityHigh,
		IntegrationID: "gws:1234567890.apps.googleusercontent.com",
		Tenant:        "acme",
		Title:         "Integration used from a new country: BR",
		Summary:       "Drive export via OAuth client 1234567890 from São Paulo (AS28573), never seen in 90 days.",
		FirstSeen:     schemas.UnixMilli(1761531187412),
		LastSeen:      schemas.UnixMilli(1761531787000),
		EventIDs:      []string{"evt-001", "evt-002", "evt-003"},
		Observed:      json.RawMessage(`{"country":"BR","asn":28573,"owner":"data-platform@acme.example"}`),
		Baseline:      json.RawMessage(`{"countries":["US","IE"],"days":90}`),
	}
}

// FastRetry is a RetryPolicy that keeps tests quick.
var FastRetry = deliver.RetryPolicy{MaxAttempts: 4, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}

// Sample parses a sink's sample.yaml and returns the entry's kind, name and
// the decode function deliver.New takes. Every sample is one entry of the
// config file's deliver.sinks list, under a `sinks:` key, as an operator
// pastes it into the `deliver:` section:
//
//	sinks:
//	  - name: soc-webhook
//	    kind: webhook
//	    config:
//	      url: env:TOKENWATCH_WEBHOOK_URL
//
// The entry is decoded strictly in the shape of the config's sink entry
// (name, kind, config, breaker, rate_limit; unknown keys are errors), its
// breaker and rate limit validated, and decode fills the sink's own config
// from the `config:` node, rejecting keys the sink does not have.
func Sample(t testing.TB, sample []byte) (kind, name string, decode func(any) error) {
	t.Helper()
	// The shape of internal/app/config.Sink, which deliver may not import.
	var doc struct {
		Sinks []struct {
			Name      string                  `yaml:"name"`
			Kind      string                  `yaml:"kind"`
			Config    yaml.Node               `yaml:"config"`
			Breaker   deliver.BreakerConfig   `yaml:"breaker"`
			RateLimit deliver.RateLimitConfig `yaml:"rate_limit"`
		} `yaml:"sinks"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(sample))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(doc.Sinks) != 1 {
		t.Fatalf("sample.yaml: %d entries under sinks:, want 1", len(doc.Sinks))
	}
	s := doc.Sinks[0]
	if s.Name == "" || s.Kind == "" {
		t.Fatalf("sample.yaml: name %q, kind %q: both required", s.Name, s.Kind)
	}
	if s.Breaker != (deliver.BreakerConfig{}) {
		if err := s.Breaker.Validate(); err != nil {
			t.Fatalf("sample.yaml: breaker: %v", err)
		}
	}
	if err := s.RateLimit.Validate(); err != nil {
		t.Fatalf("sample.yaml: rate_limit: %v", err)
	}
	return s.Kind, s.Name, extensiontest.StrictDecode(&s.Config)
}

// Request is what a test server saw.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Server is an httptest server that answers with the scripted responses in
// turn (the last one repeats) and records every request.
type Server struct {
	*httptest.Server
	Attempts atomic.Int32
	reqs     chan Request
}

// Response is one scripted answer.
type Response struct {
	Status     int
	RetryAfter string
	Body       string
}

// NewServer starts a Server; it is closed by t.Cleanup.
func NewServer(t testing.TB, script ...Response) *Server {
	t.Helper()
	if len(script) == 0 {
		script = []Response{{Status: 200, Body: "ok"}}
	}
	s := &Server{reqs: make(chan Request, 1024)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.Attempts.Add(1)) - 1
		body, _ := io.ReadAll(r.Body)
		s.reqs <- Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		resp := script[min(n, len(script)-1)]
		if resp.RetryAfter != "" {
			w.Header().Set("Retry-After", resp.RetryAfter)
		}
		w.WriteHeader(resp.Status)
		io.WriteString(w, resp.Body)
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests drains what the server has seen so far.
func (s *Server) Requests() []Request {
	var out []Request
	for {
		select {
		case r := <-s.reqs:
			out = append(out, r)
		default:
			return out
		}
	}
}

// echoServer answers 400 with everything it received (path, query, headers,
// body), as a careless receiver might, so a sink that quotes response bodies
// is caught leaking.
func echoServer(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, r.URL.String()+" "+strings.Join(r.Header.Values("Authorization"), ",")+" "+string(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// HTTPContract checks the Sink error contract every HTTP sink promises.
// newSink builds the sink under test pointed at baseURL (the scheme://host of
// a test server); secrets are credential values that must never appear in an
// error string.
func HTTPContract(t *testing.T, newSink func(t *testing.T, baseURL string) deliver.Sink, secrets ...string) {
	alerts := []schemas.Alert{Alert()}
	ctx := context.Background()

	t.Run("retries", func(t *testing.T) {
		tests := []struct {
			name         string
			script       []Response
			wantAttempts int32
			wantErr      bool
			permanent    bool
		}{
			{"500 is retried until success", []Response{{Status: 500}, {Status: 500}, {Status: 200, Body: "ok"}}, 3, false, false},
			{"429 is retried until success", []Response{{Status: 429}, {Status: 200, Body: "ok"}}, 2, false, false},
			{"502 exhausts the attempts", []Response{{Status: 502}}, int32(FastRetry.MaxAttempts), true, false},
			{"400 stops at once", []Response{{Status: 400, Body: "invalid_payload"}}, 1, true, true},
			{"403 stops at once", []Response{{Status: 403}}, 1, true, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv := NewServer(t, tt.script...)
				attempts, err := deliver.SendWithRetry(ctx, newSink(t, srv.URL), alerts, FastRetry)
				if got := srv.Attempts.Load(); got != tt.wantAttempts || int32(attempts) != tt.wantAttempts {
					t.Errorf("server saw %d attempts, SendWithRetry reported %d, want %d", got, attempts, tt.wantAttempts)
				}
				if (err != nil) != tt.wantErr || deliver.IsPermanent(err) != tt.permanent {
					t.Errorf("err = %v, want error=%v permanent=%v", err, tt.wantErr, tt.permanent)
				}
			})
		}
	})

	t.Run("retry-after", func(t *testing.T) {
		for _, status := range []int{429, 503} {
			srv := NewServer(t, Response{Status: status, RetryAfter: "7"})
			err := newSink(t, srv.URL).Send(ctx, alerts)
			var ra *deliver.RetryAfterError
			if !errors.As(err, &ra) || ra.After != 7*time.Second {
				t.Errorf("HTTP %d with Retry-After: 7: err = %v, want *RetryAfterError after 7s", status, err)
			}
			if deliver.IsPermanent(err) {
				t.Errorf("HTTP %d: permanent", status)
			}
		}
	})

	t.Run("no secret in errors", func(t *testing.T) {
		echo := echoServer(t)
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close() // connection refused: net/http's *url.Error quotes the URL
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client hanging up.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}))
		t.Cleanup(slow.Close)
		for _, c := range []struct {
			name, url string
			timeout   time.Duration
		}{{"echoed in a 400 body", echo.URL, 0}, {"connection refused", deadURL, 0}, {"timeout", slow.URL, 50 * time.Millisecond}} {
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			err := newSink(t, c.url).Send(ctx, alerts)
			if err == nil {
				t.Fatalf("%s: no error", c.name)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%s: error leaks a secret: %v", c.name, err)
				}
			}
			if c.timeout > 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: cause lost: %v", c.name, err)
			}
		}
	})
}
