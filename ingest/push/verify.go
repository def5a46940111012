package push

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/slacksig"
)

// Verifier checks that a delivery was signed by the vendor with the shared
// secret. It returns the delivery's dedup key ("" if the style has none) or
// an error that is answered 401. Implementations compare in constant time.
type Verifier interface {
	Verify(h http.Header, body []byte, now time.Time) (deliveryID string, err error)
}

// Verification styles, as named in config (`verify:`).
const (
	StyleGitHub = "github"
	StyleSlack  = "slack"
)

// ErrUnsigned and friends are what Verify returns; all are answered 401.
// They are internal/platform/slacksig's, which the GitHub style shares.
var (
	ErrUnsigned     = slacksig.ErrUnsigned
	ErrBadSignature = slacksig.ErrBadSignature
	ErrStale        = slacksig.ErrStale
)

// GitHub verifies `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`;
// the delivery id is `X-GitHub-Delivery`.
type GitHub struct{ Secret secret.Secret }

// Verify implements Verifier.
func (g GitHub) Verify(h http.Header, body []byte, _ time.Time) (string, error) {
	sig := h.Get("X-Hub-Signature-256")
	if sig == "" {
		return "", ErrUnsigned
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return "", fmt.Errorf("%w: X-Hub-Signature-256 is not sha256=<hex>", ErrBadSignature)
	}
	if !slacksig.MACEqual(hexSig, g.mac(body)) {
		return "", ErrBadSignature
	}
	if id := h.Get("X-GitHub-Delivery"); id != "" {
		return "github:" + id, nil
	}
	return "", nil
}

func (g GitHub) mac(body []byte) []byte {
	m := hmac.New(sha256.New, []byte(g.Secret.Reveal()))
	m.Write(body)
	return m.Sum(nil)
}

// sign returns the header value GitHub would send (tests).
func (g GitHub) sign(body []byte) string { return "sha256=" + hex.EncodeToString(g.mac(body)) }

// DefaultReplayWindow is how far X-Slack-Request-Timestamp may be from now:
// Slack's documented 5 minutes.
const DefaultReplayWindow = slacksig.DefaultWindow

// Slack verifies `X-Slack-Signature: v0=<hex HMAC-SHA256(secret,
// "v0:"+timestamp+":"+body)>` with `X-Slack-Request-Timestamp` within Window
// of now (internal/platform/slacksig, shared with the respond stage's
// interactivity endpoint). Slack sends no delivery id; the key is the
// (timestamp, signature) pair, which identifies a byte-identical replay.
type Slack struct {
	Secret secret.Secret
	Window time.Duration // 0 means DefaultReplayWindow
}

// Verify implements Verifier.
func (s Slack) Verify(h http.Header, body []byte, now time.Time) (string, error) {
	return slacksig.Verify(s.Secret, s.Window, h, body, now)
}

func (s Slack) sign(ts string, body []byte) string { return slacksig.Sign(s.Secret, ts, body) }

// NewVerifier builds the verifier of a style.
func NewVerifier(style string, sec secret.Secret, window time.Duration) (Verifier, error) {
	if sec.IsZero() {
		return nil, errors.New("secret: required")
	}
	switch style {
	case StyleGitHub:
		return GitHub{Secret: sec}, nil
	case StyleSlack:
		return Slack{Secret: sec, Window: window}, nil
	}
	return nil, fmt.Errorf("verify %q: want %s or %s", style, StyleGitHub, StyleSlack)
}
