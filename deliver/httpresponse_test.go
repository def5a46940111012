package deliver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

func TestCheckResponseMapsStatusOntoSinkContract(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		body       string
		want       string // ok, retry, retry_after, permanent
	}{
		{200, "", "ok", "ok"},
		{202, "", "", "ok"},
		{204, "", "", "ok"},
		{400, "", "invalid_payload", "permanent"},
		{403, "", "", "permanent"},
		{404, "", "", "permanent"},
		{429, "", "", "retry"},
		{429, "7", "", "retry_after"},
		{500, "", "", "retry"},
		{502, "", "", "retry"},
		{503, "2", "", "retry_after"},
		{503, "soon", "", "retry"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status)+"/"+tt.retryAfter, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: http.NoBody}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			if tt.body != "" {
				resp.Body = ioNopCloser(tt.body)
			}
			err := CheckResponse(resp)
			var ra *RetryAfterError
			got := "retry"
			switch {
			case err == nil:
				got = "ok"
			case IsPermanent(err):
				got = "permanent"
			case errors.As(err, &ra):
				got = "retry_after"
			}
			if got != tt.want {
				t.Fatalf("CheckResponse = %v (%s), want %s", err, got, tt.want)
			}
			if tt.body != "" && err != nil && !strings.Contains(err.Error(), tt.body) {
				t.Errorf("error %q does not quote the body", err)
			}
		})
	}
}

func TestCheckResponseRedactsEchoedSecrets(t *testing.T) {
	key := secret.New("R0UT1NGKEY-0123456789")
	resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: ioNopCloser(`{"error":"bad routing_key R0UT1NGKEY-0123456789"}`)}
	err := CheckResponse(resp, key)
	if strings.Contains(err.Error(), key.Reveal()) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestTransportErrorHidesURLAndKeepsCause(t *testing.T) {
	tok := "T000/B000/XXXXSECRETXXXX"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
	}))
	defer srv.Close()
	raw := srv.URL + "/services/" + tok + "?token=" + tok
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, raw, nil)
	_, err := http.DefaultClient.Do(req)
	if err == nil || !strings.Contains(err.Error(), tok) {
		t.Fatalf("premise: net/http error should quote the URL, got %v", err)
	}
	clean := TransportError(err, secret.New(raw))
	if strings.Contains(clean.Error(), tok) || strings.Contains(clean.Error(), "SECRET") {
		t.Fatalf("leaks: %v", clean)
	}
	if !strings.Contains(clean.Error(), srv.URL) {
		t.Errorf("%q should still name the host", clean)
	}
	if !errors.Is(clean, context.DeadlineExceeded) {
		t.Errorf("cause lost: %v", clean)
	}
}
