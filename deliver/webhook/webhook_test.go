package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

var alert = schemas.Alert{ID: "a1", Detector: "geo.new_country", Severity: schemas.SeverityHigh, IntegrationID: "app", Title: "t"}

func TestSignatureVerifiesWithTheDocumentedRecipe(t *testing.T) {
	key := []byte("s3cret")
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify(key, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var a schemas.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.Store(a.ID)
	}))
	defer srv.Close()
	s, err := New("soc", Config{URL: secret.New(srv.URL), Secret: secret.New(string(key)), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []schemas.Alert{alert}); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "a1" {
		t.Fatalf("receiver got %v", got.Load())
	}
	// A wrong key, a tampered body and a stale timestamp are all rejected.
	ts := time.Now().Unix()
	body := []byte(`{"id":"a1"}`)
	sig := Sign(key, ts, body)
	for name, err := range map[string]error{
		"wrong key": Verify([]byte("other"), itoa(ts), sig, body, time.Now(), time.Minute),
		"tampered":  Verify(key, itoa(ts), sig, []byte(`{"id":"a2"}`), time.Now(), time.Minute),
		"replayed":  Verify(key, itoa(ts), sig, body, time.Now().Add(10*time.Minute), 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestRetriesServerErrorsThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	s, _ := New("soc", Config{URL: secret.New(srv.URL), Secret: secret.New("k"), Timeout: time.Second})
	p := deliver.RetryPolicy{MaxAttempts: 5, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}
	attempts, err := deliver.SendWithRetry(context.Background(), s, []schemas.Alert{alert}, p)
	if err != nil || attempts != 3 || calls.Load() != 3 {
		t.Fatalf("attempts %d calls %d err %v; want success on the third", attempts, calls.Load(), err)
	}
}

func TestClientErrorIsPermanentAndURLNeverLeaks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer srv.Close()
	s, _ := New("soc", Config{URL: secret.New(srv.URL + "/hook?token=abcdef123"), Secret: secret.New("k"), Timeout: time.Second})
	p := deliver.RetryPolicy{MaxAttempts: 5, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
	attempts, err := deliver.SendWithRetry(context.Background(), s, []schemas.Alert{alert}, p)
	if !deliver.IsPermanent(err) || attempts != 1 {
		t.Fatalf("attempts %d err %v; want one permanent failure", attempts, err)
	}
	// Unreachable receiver: the transport error must not carry the token.
	srv.Close()
	err = s.Send(context.Background(), []schemas.Alert{alert})
	if err == nil || strings.Contains(err.Error(), "abcdef123") {
		t.Fatalf("error leaks the URL token: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestIncidentsAreSignedWithTheirVersionAndOCSFIsAFormat(t *testing.T) {
	key := []byte("s3cret")
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify(key, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got.Store([]string{r.Header.Get(HeaderKind), r.Header.Get(HeaderIncidentVersion), r.Header.Get("Idempotency-Key"), string(body)})
	}))
	defer srv.Close()
	inc := schemas.Incident{ID: "i1", Version: 3, Status: schemas.IncidentOpen, Severity: schemas.SeverityHigh, Title: "t"}
	for _, format := range []string{"json", "ocsf"} {
		s, err := New("soc", Config{URL: secret.New(srv.URL), Secret: secret.New(string(key)), Timeout: time.Second, Format: format})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SendIncident(context.Background(), inc, ""); err != nil {
			t.Fatal(err)
		}
		h := got.Load().([]string)
		if h[0] != "incident" || h[1] != "3" || h[2] != "i1/v3" {
			t.Fatalf("%s: headers %q", format, h[:3])
		}
		var body map[string]any
		json.Unmarshal([]byte(h[3]), &body)
		switch format {
		case "json":
			if body["id"] != "i1" || body["version"] != 3.0 {
				t.Fatalf("json body %v", body)
			}
		case "ocsf":
			if body["class_uid"] != 2004.0 || body["finding_info"].(map[string]any)["uid"] != "i1" || body["activity_id"] != 2.0 {
				t.Fatalf("ocsf body %v", body)
			}
		}
	}
	if _, err := New("soc", Config{URL: secret.New(srv.URL), Secret: secret.New("k"), Timeout: time.Second, Format: "xml"}); err == nil {
		t.Fatal("format xml accepted")
	}
}
