package push

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// FuzzVerify asserts the verifiers' invariants: the body a vendor signed
// verifies, and any change to it (one byte flipped, one byte more or less)
// never does, for both styles.
func FuzzVerify(f *testing.F) {
	f.Add("gh-webhook-secret", []byte(`{"action":"repo.download_zip","_document_id":"yq3G"}`), uint16(3), byte(1))
	f.Add("8f742231b10e8888abcd99yyyzzz85a5", []byte(`{"entries":[]}`), uint16(0), byte(0x80))
	f.Add("s", []byte{}, uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, key string, body []byte, pos uint16, flip byte) {
		if key == "" {
			t.Skip("an empty secret is refused by config")
		}
		now := time.Unix(1793067187, 0)
		ts := strconv.FormatInt(now.Unix(), 10)
		gh := GitHub{Secret: secret.New(key)}
		sl := Slack{Secret: secret.New(key)}
		ghH := http.Header{"X-Hub-Signature-256": {gh.sign(body)}}
		slH := http.Header{"X-Slack-Signature": {sl.sign(ts, body)}, "X-Slack-Request-Timestamp": {ts}}
		if _, err := gh.Verify(ghH, body, now); err != nil {
			t.Fatalf("github: signed body does not verify: %v", err)
		}
		if _, err := sl.Verify(slH, body, now); err != nil {
			t.Fatalf("slack: signed body does not verify: %v", err)
		}
		var mutated []byte
		switch {
		case len(body) == 0 || flip == 0:
			mutated = append(append([]byte{}, body...), flip) // one byte more
		case flip == 1:
			mutated = body[:len(body)-1] // one byte less
		default:
			mutated = append([]byte{}, body...)
			mutated[int(pos)%len(body)] ^= flip
		}
		if _, err := gh.Verify(ghH, mutated, now); err == nil {
			t.Fatalf("github: mutated body %q verifies with the signature of %q", mutated, body)
		}
		if _, err := sl.Verify(slH, mutated, now); err == nil {
			t.Fatalf("slack: mutated body %q verifies with the signature of %q", mutated, body)
		}
		// The Slack signature binds the timestamp too.
		other := strconv.FormatInt(now.Unix()-1, 10)
		if _, err := sl.Verify(http.Header{"X-Slack-Signature": slH["X-Slack-Signature"], "X-Slack-Request-Timestamp": {other}}, body, now); err == nil {
			t.Fatal("slack: signature verifies under another timestamp")
		}
	})
}
