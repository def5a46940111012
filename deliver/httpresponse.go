package deliver

// What every HTTP sink (slack, splunk_hec, pagerduty) shares: how a response
// status maps onto the Sink error contract, and how a transport error is
// stripped of the request URL before it leaves the sink.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch/internal/platform/retryafter"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

const (
	// maxDrain bounds how much of a response body is read so the connection
	// can be reused; a receiver streaming garbage cannot hold a sink.
	maxDrain = 64 << 10
	// maxErrorBody is how much of a failed response's body an error quotes:
	// enough for Slack's "invalid_payload" or PagerDuty's validation message.
	maxErrorBody = 256
)

// HTTPStatusError is a non-2xx answer from a receiver.
type HTTPStatusError struct {
	StatusCode int
	// Body is the start of the response body, secrets redacted.
	Body string
}

func (e *HTTPStatusError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// CheckResponse reads at most 64 KiB of resp's body, closes it, and maps the
// status onto the Sink contract:
//
//   - 2xx: nil;
//   - 429 or 5xx with a usable Retry-After: *RetryAfterError;
//   - other 429 and 5xx: a plain *HTTPStatusError, which the runner retries;
//   - anything else (400, 401, 403, 404, 413, a 3xx not followed…):
//     *PermanentError, since sending the same request again cannot help.
//
// secrets are redacted from the quoted body because some receivers echo the
// request back.
func CheckResponse(resp *http.Response, secrets ...secret.Secret) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err := &HTTPStatusError{StatusCode: code, Body: excerpt(body, secrets)}
	if code == http.StatusTooManyRequests || code >= 500 {
		if d := retryafter.Parse(resp.Header.Get("Retry-After")); d > 0 {
			return &RetryAfterError{Err: err, After: d}
		}
		return err
	}
	return &PermanentError{Err: err}
}

func excerpt(body []byte, secrets []secret.Secret) string {
	s := strings.TrimSpace(secret.Redact(string(body), secrets...))
	if len(s) > maxErrorBody {
		cut := maxErrorBody
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}

// TransportError rewrites an error from http.Client.Do so it cannot leak a
// credential: net/http's *url.Error quotes the full request URL, and for Slack
// the URL is the credential. The URL is cut to scheme://host, every secret is
// redacted from the text, and the cause (context.DeadlineExceeded, a
// net.Error timeout) stays reachable with errors.Is / errors.As.
func TransportError(err error, secrets ...secret.Secret) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		msg := fmt.Sprintf("%s %s: %s", ue.Op, SafeURL(ue.URL), secret.Redact(ue.Err.Error(), secrets...))
		return &redactedError{msg: msg, cause: ue.Err}
	}
	return &redactedError{msg: secret.Redact(err.Error(), secrets...)}
}

// SafeURL reduces a URL to scheme://host for messages; the path, query and
// user info, where tokens live, become "/…".
func SafeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[REDACTED]"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		s += "/…"
	}
	return s
}

// redactedError carries a cleaned message and, for errors.Is, the underlying
// cause (never the *url.Error that held the URL).
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
