package slacksig

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

func TestVerify(t *testing.T) {
	sec := secret.New("8f742231b10e8888abcd99yyyzzz85a5")
	now := time.Unix(1_700_000_000, 0)
	body := []byte("payload=%7B%22type%22%3A%22block_actions%22%7D")
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, tc := range []struct {
		name   string
		ts     string
		sig    string
		body   []byte
		window time.Duration
		want   error
	}{
		{"signed", ts, Sign(sec, ts, body), body, 0, nil},
		{"unsigned", ts, "", body, 0, ErrUnsigned},
		{"no timestamp", "", Sign(sec, ts, body), body, 0, ErrUnsigned},
		{"other secret", ts, Sign(secret.New("other"), ts, body), body, 0, ErrBadSignature},
		{"body changed", ts, Sign(sec, ts, body), append([]byte("x"), body...), 0, ErrBadSignature},
		{"not v0", ts, strings.Replace(Sign(sec, ts, body), "v0=", "v1=", 1), body, 0, ErrBadSignature},
		{"not hex", ts, "v0=zz", body, 0, ErrBadSignature},
		{"stale beyond 5 minutes", "1699999699", Sign(sec, "1699999699", body), body, 0, ErrStale},
		{"within a wider window", "1699999699", Sign(sec, "1699999699", body), body, 10 * time.Minute, nil},
		{"from the future", "1700000301", Sign(sec, "1700000301", body), body, 0, ErrStale},
		{"not a number", "soon", Sign(sec, "soon", body), body, 0, ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.sig != "" {
				h.Set("X-Slack-Signature", tc.sig)
			}
			if tc.ts != "" {
				h.Set("X-Slack-Request-Timestamp", tc.ts)
			}
			key, err := Verify(sec, tc.window, h, tc.body, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && !strings.HasPrefix(key, "slack:"+tc.ts+":") {
				t.Errorf("key %q", key)
			}
			if err != nil && strings.Contains(err.Error(), sec.Reveal()) {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
}
