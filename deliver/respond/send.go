package respond

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/retryafter"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// ErrAlreadyDone is returned when the vendor answers 404: the grant, token
// or app is already gone, which is what the revocation wanted.
var ErrAlreadyDone = errors.New("already revoked (the vendor answered 404)")

// BodyChecker is an optional power of revokers whose vendor answers errors
// inside a 2xx (Slack's {"ok": false, "error": "…"}): CheckBody returns nil
// for success, ErrAlreadyDone, a *ForbiddenError, or another error.
type BodyChecker interface {
	CheckBody(body []byte) error
}

// ErrorChecker is an optional power of revokers whose vendor says in a
// non-2xx body what the status alone does not (Salesforce answers its API
// request limit with 403 REQUEST_LIMIT_EXCEEDED, and its token revocation
// endpoint a token already gone with 400 invalid_token). CheckError returns
// nil to let the status decide, ErrAlreadyDone, an error wrapping
// ErrRateLimited (waited out and retried like a 429), or another error
// (final).
type ErrorChecker interface {
	CheckError(status int, body []byte) error
}

// ErrRateLimited is what an ErrorChecker wraps for a rate limit the vendor
// answers with a status other than 429.
var ErrRateLimited = errors.New("rate limited")

// redactErr keeps a *ForbiddenError's type while redacting its text.
func redactErr(err error, secrets []secret.Secret) error {
	var f *ForbiddenError
	if errors.As(err, &f) {
		c := *f
		c.Vendor = secret.Redact(c.Vendor, secrets...)
		return &c
	}
	return errors.New(secret.Redact(err.Error(), secrets...))
}

// ForbiddenError is a 401/403: the admin credential lacks a scope or role.
// Retrying cannot help; its message says what to grant.
type ForbiddenError struct {
	Status int
	Need   string // the revoker's Forbidden()
	Vendor string // the vendor's own message, redacted
}

func (e *ForbiddenError) Error() string {
	msg := fmt.Sprintf("HTTP %d: the admin credential is not allowed to revoke: %s", e.Status, e.Need)
	if e.Vendor != "" {
		msg += " (vendor said: " + e.Vendor + ")"
	}
	return msg
}

// HTTPSender sends revocation requests, waiting out 429 and 503 answers as
// their Retry-After says (or backing off) up to MaxAttempts.
type HTTPSender struct {
	Client      *http.Client
	MaxAttempts int
	// MaxWait bounds one Retry-After wait: a vendor asking for longer fails
	// the action (recorded, retried later) rather than holding the stage.
	MaxWait time.Duration
	// Sleep waits d or until ctx ends; nil is a timer. Tests replace it to
	// see the waits without taking them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewHTTPSender returns a sender with timeout per request.
func NewHTTPSender(timeout time.Duration) *HTTPSender {
	return &HTTPSender{Client: &http.Client{Timeout: timeout}, MaxAttempts: 4, MaxWait: 2 * time.Minute}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Send sends req once it succeeds (nil), the target is already gone
// (ErrAlreadyDone), or a failure retrying cannot fix. Errors name the
// request but never carry the credential.
func (s *HTTPSender) Send(ctx context.Context, rv Revoker, req Request) error {
	_, err := s.do(ctx, rv, req, 64<<10, false)
	return err
}

// maxListing bounds one discovery answer read into memory.
const maxListing = 16 << 20

// Fetch sends a discovery request as Send does and returns the answer's
// body on success; ErrAlreadyDone when the vendor answers 404 (nothing to
// list).
func (s *HTTPSender) Fetch(ctx context.Context, rv Revoker, req Request) ([]byte, error) {
	return s.do(ctx, rv, req, maxListing, true)
}

// do sends req with Send's retries. A body beyond limit is cut there, or
// with whole (a listing that must be read entire) is an error.
func (s *HTTPSender) do(ctx context.Context, rv Revoker, req Request, limit int64, whole bool) ([]byte, error) {
	sleep := s.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	attempts := max(s.MaxAttempts, 1)
	backoff := time.Second
	var last error
	for i := 0; i < attempts; i++ {
		wait, body, err := s.once(ctx, rv, req, limit, whole)
		if err == nil || wait < 0 {
			return body, err
		}
		last = err
		if i == attempts-1 {
			break
		}
		if wait == 0 {
			wait, backoff = backoff, min(backoff*2, 30*time.Second)
		}
		if s.MaxWait > 0 && wait > s.MaxWait {
			return nil, fmt.Errorf("%s: %w; the vendor asks to wait %s, longer than %s", req, err, wait, s.MaxWait)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w", req, err)
		}
	}
	return nil, fmt.Errorf("%s: %w (gave up after %d attempts)", req, last, attempts)
}

// once sends req one time, reading at most limit bytes of the answer (see
// do for whole). wait < 0: final (err is the outcome, body the answer on
// success); wait >= 0 with err: retry after wait (0 = back off).
func (s *HTTPSender) once(ctx context.Context, rv Revoker, req Request, limit int64, whole bool) (time.Duration, []byte, error) {
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, req.URL, body)
	if err != nil {
		return -1, nil, fmt.Errorf("%s: %w", req, err)
	}
	if req.Body != nil {
		ct := req.ContentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "tokenwatch")
	rv.Authorize(r)
	resp, err := s.Client.Do(r)
	if err != nil {
		// net/http's *url.Error quotes the URL, which is not secret, but a
		// transport error could echo anything: redact the credentials.
		return 0, nil, errors.New(secret.Redact(err.Error(), rv.Secrets()...))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, errors.New(secret.Redact(err.Error(), rv.Secrets()...))
	}
	if int64(len(answer)) > limit {
		if whole {
			return -1, nil, fmt.Errorf("%s: the answer is larger than %d bytes", req, limit)
		}
		answer = answer[:limit]
	}
	msg := vendorMessage(answer, rv.Secrets())
	if ec, ok := rv.(ErrorChecker); ok && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
		switch err := ec.CheckError(resp.StatusCode, answer); {
		case err == nil:
		case errors.Is(err, ErrAlreadyDone):
			return -1, nil, ErrAlreadyDone
		case errors.Is(err, ErrRateLimited):
			return retryWait(resp.Header), nil, fmt.Errorf("HTTP %d %s", resp.StatusCode, redactErr(err, rv.Secrets()))
		default:
			var f *ForbiddenError
			if errors.As(err, &f) {
				return -1, nil, fmt.Errorf("%s: %w", req, redactErr(err, rv.Secrets()))
			}
			return -1, nil, fmt.Errorf("%s: HTTP %d: %w", req, resp.StatusCode, redactErr(err, rv.Secrets()))
		}
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if bc, ok := rv.(BodyChecker); ok {
			if err := bc.CheckBody(answer); err != nil {
				if errors.Is(err, ErrAlreadyDone) {
					return -1, nil, err
				}
				return -1, nil, fmt.Errorf("%s: %w", req, redactErr(err, rv.Secrets()))
			}
		}
		return -1, answer, nil
	case resp.StatusCode == http.StatusNotFound:
		return -1, nil, ErrAlreadyDone
	case resp.StatusCode == http.StatusForbidden && (resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0"):
		// GitHub answers its rate limits with 403 and says when to return.
		return retryWait(resp.Header), nil, fmt.Errorf("HTTP %d %s", resp.StatusCode, msg)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return -1, nil, fmt.Errorf("%s: %w", req, &ForbiddenError{Status: resp.StatusCode, Need: rv.Forbidden(), Vendor: msg})
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryWait(resp.Header), nil, fmt.Errorf("HTTP %d %s", resp.StatusCode, msg)
	}
	return -1, nil, fmt.Errorf("%s: HTTP %d %s", req, resp.StatusCode, msg)
}

// vendorMessage lifts the error message out of a vendor's JSON error body
// (Google's and Graph's error.message, GitHub's message, Okta's
// errorSummary, Salesforce's list of {errorCode, message}), redacted; it
// never quotes a raw body.
func vendorMessage(b []byte, secrets []secret.Secret) string {
	var list []struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(b, &list) == nil {
		if len(list) == 0 {
			return ""
		}
		msg := strings.TrimPrefix(list[0].ErrorCode+": "+list[0].Message, ": ")
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return secret.Redact(msg, secrets...)
	}
	var v struct {
		Message      string          `json:"message"`
		ErrorSummary string          `json:"errorSummary"`
		Error        json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	msg := v.Message
	if msg == "" {
		msg = v.ErrorSummary
	}
	var inner struct {
		Message string `json:"message"`
	}
	if msg == "" && json.Unmarshal(v.Error, &inner) == nil {
		msg = inner.Message
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return secret.Redact(msg, secrets...)
}

// retryWait is how long the vendor asked to wait: Retry-After (Google,
// Graph, GitHub's secondary limits), else the epoch second its rate-limit
// window resets (Okta's X-Rate-Limit-Reset, GitHub's X-RateLimit-Reset);
// 0 when it said nothing.
func retryWait(h http.Header) time.Duration {
	if d := retryafter.Parse(h.Get("Retry-After")); d > 0 {
		return d
	}
	for _, k := range []string{"X-Rate-Limit-Reset", "X-RateLimit-Reset"} {
		if n, err := strconv.ParseInt(h.Get(k), 10, 64); err == nil {
			if d := time.Until(time.Unix(n, 0)); d > 0 {
				return d.Round(time.Second) + time.Second
			}
		}
	}
	return 0
}
