package push

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

func TestPushChecksTheContentType(t *testing.T) {
	pub := &recorder{}
	srv, _ := newServer(t, pub, nil)
	one := []byte(rec("ct-1"))
	form := []byte("payload=" + url.QueryEscape(rec("form-1")))
	formNoPayload := []byte("record=" + url.QueryEscape(rec("form-2")))
	bom := append([]byte("\xEF\xBB\xBF"), rec("bom-1")...)
	with := func(h map[string]string, ct string) map[string]string {
		h["Content-Type"] = ct
		return h
	}
	tests := []struct {
		name         string
		body         []byte
		hdr          map[string]string
		want         int
		events       int
		wantInAnswer string
	}{
		{"json", one, with(ghHeaders(one, "c-1"), "application/json"), 200, 1, ""},
		{"json with charset", []byte(rec("ct-2")), with(ghHeaders([]byte(rec("ct-2")), "c-2"), "application/json; charset=utf-8"), 200, 1, ""},
		{"vendor +json", []byte(rec("ct-3")), with(ghHeaders([]byte(rec("ct-3")), "c-3"), "application/vnd.github+json"), 200, 1, ""},
		{"no content type is JSON", []byte(rec("ct-4")), ghHeaders([]byte(rec("ct-4")), "c-4"), 200, 1, ""},
		{"github form, signed over the raw body", form, with(ghHeaders(form, "c-5"), "application/x-www-form-urlencoded"), 200, 1, ""},
		{"github form signed over the payload only", []byte("payload=" + url.QueryEscape(rec("form-3"))),
			with(ghHeaders([]byte(rec("form-3")), "c-6"), "application/x-www-form-urlencoded"), 401, 0, ""},
		{"form without payload", formNoPayload, with(ghHeaders(formNoPayload, "c-7"), "application/x-www-form-urlencoded"), 400, 0, "payload"},
		{"text/plain", one, with(ghHeaders(one, "c-8"), "text/plain"), 415, 0, "unsupported Content-Type \\\"text/plain\\\""},
		{"multipart", one, with(ghHeaders(one, "c-9"), "multipart/form-data; boundary=x"), 415, 0, "application/json"},
		{"garbled", one, with(ghHeaders(one, "c-10"), "application/json; ===="), 415, 0, "not a media type"},
		{"a BOM before the JSON", bom, with(ghHeaders(bom, "c-11"), "application/json"), 200, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e0, _ := pub.counts()
			code, body := post(t, srv.URL+"/ingest/gh", tc.body, tc.hdr)
			if code != tc.want || !strings.Contains(body, tc.wantInAnswer) {
				t.Fatalf("status %d (%s), want %d with %q", code, body, tc.want, tc.wantInAnswer)
			}
			if e1, _ := pub.counts(); e1-e0 != tc.events {
				t.Fatalf("produced %d events, want %d", e1-e0, tc.events)
			}
		})
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A 413 is logged: a vendor whose deliveries outgrew the limit would
// otherwise lose them silently.
func TestPushLogsTooLargeBodies(t *testing.T) {
	var logs logBuffer
	cfg := DefaultConfig()
	cfg.MaxBodyBytes = 64
	cfg.Sources = []SourceConfig{{Source: "push_test", Path: "gh", Tenant: "acme", Verify: StyleGitHub, Secret: secret.New(ghSecret)}}
	h, err := New(cfg, &recorder{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	big := []byte(`[` + strings.Repeat(rec("x")+",", 5) + rec("y") + `]`)
	code, body := post(t, srv.URL+"/ingest/gh", big, ghHeaders(big, "big-1"))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "limit 64 bytes") {
		t.Fatalf("status %d (%s)", code, body)
	}
	if l := logs.String(); !strings.Contains(l, "status=413") || !strings.Contains(l, "max_body_bytes=64") || !strings.Contains(l, "source=push_test") {
		t.Fatalf("413 not logged: %q", l)
	}
}
