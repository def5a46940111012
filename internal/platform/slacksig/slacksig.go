// Package slacksig verifies requests signed by Slack: the v0 scheme of
// "Verifying requests from Slack" (api.slack.com/authentication/verifying-requests-from-slack),
// X-Slack-Signature = "v0=" + hex(HMAC-SHA256(signing secret,
// "v0:" + X-Slack-Request-Timestamp + ":" + raw body)), with the timestamp
// within a replay window of now. The push receiver (Events API deliveries)
// and the respond stage's interactivity endpoint (button clicks) share it.
package slacksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// DefaultWindow is how far X-Slack-Request-Timestamp may be from now:
// Slack's documented 5 minutes.
const DefaultWindow = 5 * time.Minute

// The errors Verify returns; callers answer all of them 401. None quotes
// the secret or the signature.
var (
	ErrUnsigned     = errors.New("missing signature")
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("request timestamp outside the replay window")
)

// Verify checks h's X-Slack-Signature over body against sec, with
// X-Slack-Request-Timestamp within window of now (0: DefaultWindow). It
// returns a key naming the signed request ("slack:<ts>:<signature>"), which
// identifies a byte-identical replay. The MAC is compared in constant time.
func Verify(sec secret.Secret, window time.Duration, h http.Header, body []byte, now time.Time) (string, error) {
	sig, ts := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || ts == "" {
		return "", ErrUnsigned
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: X-Slack-Request-Timestamp %.20q is not epoch seconds", ErrStale, ts)
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if d := now.Unix() - secs; secs <= 0 || math.Abs(float64(d)) > window.Seconds() {
		return "", ErrStale
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return "", fmt.Errorf("%w: X-Slack-Signature is not v0=<hex>", ErrBadSignature)
	}
	if !MACEqual(hexSig, mac(sec, ts, body)) {
		return "", ErrBadSignature
	}
	return "slack:" + ts + ":" + strings.ToLower(hexSig), nil
}

// Sign returns the X-Slack-Signature Slack would send for body at ts: for
// tests that play Slack.
func Sign(sec secret.Secret, ts string, body []byte) string {
	return "v0=" + hex.EncodeToString(mac(sec, ts, body))
}

func mac(sec secret.Secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(sec.Reveal()))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return m.Sum(nil)
}

// MACEqual compares a hex signature with the expected MAC in constant time
// (hmac.Equal); a signature that is not hex never matches.
func MACEqual(hexSig string, want []byte) bool {
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, want)
}
