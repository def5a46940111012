package ssf

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const (
	audience     = "https://receiver.example.com"
	token        = "receiver-bearer-token-0123456789"
	otherToken   = "other-receiver-token-0123456789"
	pushAuth     = "Bearer push-secret-abcdef0123"
	testKeyID    = "tw-test-1"
	userEmail    = "jane@acme.example"
	integration1 = "crm-sync"
)

var (
	keyOnce sync.Once
	rsaPEM  string
	ecPEM   string
)

// keys makes one RSA and one EC P-256 key as PKCS#8 PEM.
func keys(t *testing.T) (string, string) {
	keyOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		enc := func(k any) string {
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		}
		rsaPEM, ecPEM = enc(rk), enc(ek)
	})
	return rsaPEM, ecPEM
}

// badSET in a receiver's script answers 400 invalid_request (RFC 8935
// §2.4: this SET is malformed); 400 answers invalid_audience.
const badSET = 1400

// receiver plays an SSF receiver's push endpoint: it keeps every request
// and answers a script of statuses (then 202).
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	got    []pushed
	script []int
	srv    *httptest.Server
}

type pushed struct {
	header http.Header
	body   string
}

func newReceiver(t *testing.T, script ...int) *receiver {
	rc := &receiver{t: t, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, pushed{header: r.Header.Clone(), body: string(b)})
		status := http.StatusAccepted
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		rc.mu.Unlock()
		if status == badSET {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"err":"invalid_request","description":"The request body cannot be parsed."}`)
			return
		}
		if status == http.StatusBadRequest {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, `{"err":"invalid_audience","description":"The audience value was incorrect."}`)
			return
		}
		if status == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) pushes() []pushed {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]pushed(nil), rc.got...)
}

// wait returns once n pushes arrived, failing after 5 s.
func (rc *receiver) wait(n int) []pushed {
	rc.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := rc.pushes(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("got %d pushes, want %d", len(rc.pushes()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type fixture struct {
	tr   *Transmitter
	srv  *httptest.Server
	logs *syncWriter
	m    *Metrics
	// stop ends the transmitter as a shutdown does: its workers stop, its
	// last state and outbox writes are done.
	stop func()
}

// newTransmitter serves a transmitter whose issuer is its test server's URL.
func newTransmitter(t *testing.T, keyPEM string, edit func(*Config)) *fixture {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.Issuer, cfg.Listen, cfg.KeyID = srv.URL, "127.0.0.1:1", testKeyID // Start, not Run: nothing listens there
	cfg.SigningKey = secret.New(keyPEM)
	cfg.Receivers = []Receiver{{Audience: audience, Token: secret.New(token)}, {Audience: "https://other.example", Token: secret.New(otherToken)}}
	cfg.Retry = deliver.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}
	cfg.MinVerificationInterval = 0
	cfg.AllowInsecureHTTP = true // httptest: http on loopback
	cfg.StateFile = filepath.Join(t.TempDir(), "ssf-state.json")
	if edit != nil {
		edit(&cfg)
	}
	logs := &syncWriter{}
	m := NewMetrics(prometheus.NewRegistry())
	tr, err := New(cfg, m, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	h = tr.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	stop := func() { cancel(); tr.flushing.Wait() }
	t.Cleanup(stop)
	tr.Start(ctx)
	return &fixture{tr: tr, srv: srv, logs: logs, m: m, stop: stop}
}

// restartable is a config edit for a transmitter that restarts: one
// state_file across the restarts, and a configured stream "static" to rc.
func restartable(t *testing.T, rc *receiver) func(*Config) {
	state := filepath.Join(t.TempDir(), "ssf-state.json")
	return func(c *Config) {
		c.StateFile = state
		c.Streams = []StreamConfig{{ID: "static", Audience: audience, EndpointURL: rc.srv.URL, Status: StatusEnabled}}
	}
}

// syncWriter is a log buffer the workers write while the test reads.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// call makes a management request as the receiver holding tok.
func call(t *testing.T, method, url, tok string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, b := call(t, http.MethodGet, url, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// createStream creates a push stream to rc and returns its id.
func createStream(t *testing.T, endpoint, rcURL string, events []string) string {
	t.Helper()
	body := map[string]any{"delivery": map[string]any{"method": DeliveryPush, "endpoint_url": rcURL, "authorization_header": pushAuth},
		"description": "test receiver"}
	if events != nil {
		body["events_requested"] = events
	}
	code, b := call(t, http.MethodPost, endpoint, token, body)
	if code != http.StatusCreated {
		t.Fatalf("create stream: %d %s", code, b)
	}
	var s streamJSON
	if err := json.Unmarshal(b, &s); err != nil || s.StreamID == "" {
		t.Fatalf("create stream: %v %s", err, b)
	}
	return s.StreamID
}

// keyFromJWKS is the receiver's side: the public key of kid, from the JWKS.
func keyFromJWKS(t *testing.T, set map[string][]JWK, kid string) any {
	t.Helper()
	dec := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return new(big.Int).SetBytes(b)
	}
	for _, k := range set["keys"] {
		if k.Kid != kid {
			continue
		}
		if k.Use != "sig" {
			t.Errorf("jwk use %q", k.Use)
		}
		switch k.Kty {
		case "RSA":
			return &rsa.PublicKey{N: dec(k.N), E: int(dec(k.E).Int64())}
		case "EC":
			return &ecdsa.PublicKey{Curve: elliptic.P256(), X: dec(k.X), Y: dec(k.Y)}
		}
	}
	t.Fatalf("no key %q in the JWKS %+v", kid, set)
	return nil
}

// verifySET checks a pushed SET as a receiver must: the push headers, the
// signature with the JWKS key, typ and kid, iss, aud, and that the events
// claim holds one event; it returns the claims.
func verifySET(t *testing.T, p pushed, pub any, alg, iss string) jwt.MapClaims {
	t.Helper()
	if ct := p.header.Get("Content-Type"); ct != "application/secevent+jwt" {
		t.Errorf("Content-Type %q", ct)
	}
	if a := p.header.Get("Accept"); a != "application/json" {
		t.Errorf("Accept %q", a)
	}
	if a := p.header.Get("Authorization"); a != pushAuth {
		t.Errorf("Authorization %q, want the stream's authorization_header", a)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(p.body, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(iss), jwt.WithAudience(audience))
	if err != nil || !tok.Valid {
		t.Fatalf("SET does not verify: %v", err)
	}
	if tok.Header["typ"] != "secevent+jwt" || tok.Header["kid"] != testKeyID {
		t.Errorf("header %v", tok.Header)
	}
	for _, forbidden := range []string{"sub", "exp"} {
		if _, ok := claims[forbidden]; ok {
			t.Errorf("SSF forbids %q in a SET: %v", forbidden, claims)
		}
	}
	if j, _ := claims["jti"].(string); len(j) != 32 {
		t.Errorf("jti %v", claims["jti"])
	}
	if ev, _ := claims["events"].(map[string]any); len(ev) != 1 {
		t.Errorf("events %v: want one event", claims["events"])
	}
	return claims
}

func payload(t *testing.T, c jwt.MapClaims, typ string) map[string]any {
	t.Helper()
	ev, _ := c["events"].(map[string]any)
	p, ok := ev[typ].(map[string]any)
	if !ok {
		t.Fatalf("events %v: no %s", ev, typ)
	}
	return p
}

func member(t *testing.T, c jwt.MapClaims, name string) map[string]any {
	t.Helper()
	sub, _ := c["sub_id"].(map[string]any)
	if sub["format"] != "complex" {
		t.Fatalf("sub_id %v: want a complex subject", sub)
	}
	m, _ := sub[name].(map[string]any)
	return m
}

var (
	at1       = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	at2       = at1.Add(20 * time.Minute)
	revokedAt = at2.Add(3 * time.Second) // the executed record's recorded_at
)

func incident(version int, sev schemas.Severity, status string, at time.Time) schemas.Incident {
	return schemas.Incident{ID: "inc-1", Version: version, Status: status, Tenant: "acme", IntegrationID: integration1,
		Severity: sev, RiskScore: 180, UpdatedAt: schemas.NewTime(at), Detectors: []string{"lifecycle.use_after_revoke"},
		Title: "crm-sync used its token after the revoke", Source: "okta"}
}

func executed() schemas.Response {
	return schemas.Response{ID: "resp-1", IncidentID: "inc-1", IncidentVersion: 1, Tenant: "acme", Source: "google_workspace",
		IntegrationID: integration1, Target: "1234.apps.googleusercontent.com", Principal: userEmail, Action: schemas.ActionRevoke,
		Mode: schemas.ModeEnforce, Status: schemas.ResponseExecuted, Rule: "stolen-token", At: schemas.NewTime(at2),
		RecordedAt: schemas.NewTime(revokedAt)}
}

// TestReceiverVerifiesEveryEvent plays a receiver end to end, for each
// signing algorithm: discovery, JWKS, a stream created through the
// configuration endpoint, each of the four event types and a verification
// event, each SET verified with the published key.
func TestReceiverVerifiesEveryEvent(t *testing.T) {
	rsaKey, ecKey := keys(t)
	for _, tc := range []struct{ alg, key string }{{"RS256", rsaKey}, {"ES256", ecKey}} {
		t.Run(tc.alg, func(t *testing.T) {
			f := newTransmitter(t, tc.key, nil)
			signedAt := at2.Add(time.Hour)
			f.tr.Now = func() time.Time { return signedAt }
			rc := newReceiver(t)

			var md map[string]any
			getJSON(t, f.srv.URL+PathMetadata, &md)
			if md["issuer"] != f.srv.URL || md["spec_version"] != "1_0" {
				t.Fatalf("metadata %v", md)
			}
			if dm, _ := md["delivery_methods_supported"].([]any); len(dm) != 2 || dm[0] != DeliveryPush || dm[1] != DeliveryPoll {
				t.Errorf("delivery_methods_supported %v", md["delivery_methods_supported"])
			}
			for _, k := range []string{"jwks_uri", "configuration_endpoint", "status_endpoint", "add_subject_endpoint", "remove_subject_endpoint", "verification_endpoint"} {
				if u, _ := md[k].(string); !strings.HasPrefix(u, f.srv.URL+"/") {
					t.Errorf("%s %v: not below the issuer", k, md[k])
				}
			}
			var set map[string][]JWK
			getJSON(t, md["jwks_uri"].(string), &set)
			for _, k := range set["keys"] {
				if k.Alg != tc.alg {
					t.Errorf("jwk alg %q, want %s", k.Alg, tc.alg)
				}
			}
			pub := keyFromJWKS(t, set, testKeyID)
			id := createStream(t, md["configuration_endpoint"].(string), rc.srv.URL, EventsSupported)

			f.tr.Incident(incident(1, schemas.SeverityHigh, schemas.IncidentOpen, at1))
			f.tr.Incident(incident(2, schemas.SeverityHigh, schemas.IncidentOpen, at1.Add(time.Minute))) // same level: nothing
			f.tr.Incident(incident(3, schemas.SeverityHigh, schemas.IncidentResolved, at2))
			if err := f.tr.Record(context.Background(), []schemas.Response{executed()}); err != nil {
				t.Fatal(err)
			}
			got := rc.wait(5)
			var sets []jwt.MapClaims
			for _, p := range got {
				sets = append(sets, verifySET(t, p, pub, tc.alg, f.srv.URL))
			}
			if len(got) != 5 {
				t.Fatalf("%d SETs, want 5", len(got))
			}

			// Every SET of the incident carries it as txn.
			for i, c := range sets {
				if c["txn"] != "inc-1" {
					t.Errorf("SET %d txn %v, want the incident id", i, c["txn"])
				}
			}
			// 1. risk-level-change, first seen: no previous_level.
			rl := payload(t, sets[0], EventRiskLevelChange)
			if rl["current_level"] != "HIGH" || rl["principal"] != "APPLICATION" || rl["previous_level"] != nil ||
				rl["risk_reason"] != "lifecycle.use_after_revoke" || rl["event_timestamp"] != float64(at1.Unix()) {
				t.Errorf("risk-level-change %v", rl)
			}
			if sets[0]["iat"] != float64(signedAt.Unix()) || sets[0]["toe"] != float64(at1.Unix()) {
				t.Errorf("iat %v, toe %v: want when signed, and the incident's event time", sets[0]["iat"], sets[0]["toe"])
			}
			if app := member(t, sets[0], "application"); app["format"] != "opaque" || app["id"] != integration1 {
				t.Errorf("application %v", app)
			}
			if ten := member(t, sets[0], "tenant"); ten["id"] != "acme" {
				t.Errorf("tenant %v", ten)
			}
			// 2. credential-compromise: use after revoke.
			cc := payload(t, sets[1], EventCredentialCompromise)
			if cc["credential_type"] != "api-credential" || cc["event_timestamp"] != float64(at1.Unix()) || cc["reason_admin"] == nil {
				t.Errorf("credential-compromise %v", cc)
			}
			// 3. resolved: LOW, previous HIGH.
			rl = payload(t, sets[2], EventRiskLevelChange)
			if rl["current_level"] != "LOW" || rl["previous_level"] != "HIGH" {
				t.Errorf("risk-level-change on resolve %v", rl)
			}
			// 4, 5. the executed revoke.
			sr := payload(t, sets[3], EventSessionRevoked)
			if sr["initiating_entity"] != "policy" || sr["event_timestamp"] != float64(revokedAt.Unix()) {
				t.Errorf("session-revoked %v", sr)
			}
			if ra, _ := sr["reason_admin"].(map[string]any); !strings.Contains(ra["en"].(string), "stolen-token") {
				t.Errorf("reason_admin %v", sr["reason_admin"])
			}
			if u := member(t, sets[3], "user"); u["format"] != "email" || u["email"] != userEmail {
				t.Errorf("user %v", u)
			}
			ch := payload(t, sets[4], EventCredentialChange)
			if ch["change_type"] != "revoke" || ch["credential_type"] != "api-credential" || ch["friendly_name"] == nil {
				t.Errorf("credential-change %v", ch)
			}

			// A redelivery (a replayed record) carries the same jti and
			// the same claims but iat.
			resignedAt := signedAt.Add(time.Hour)
			f.tr.Now = func() time.Time { return resignedAt }
			f.tr.Record(context.Background(), []schemas.Response{executed()})
			again := rc.wait(7)
			replay := verifySET(t, again[5], pub, tc.alg, f.srv.URL)
			if replay["iat"] != float64(resignedAt.Unix()) {
				t.Errorf("replayed iat %v, want when re-signed", replay["iat"])
			}
			delete(replay, "iat")
			first := maps.Clone(sets[3])
			delete(first, "iat")
			if a, b := fmt.Sprint(replay), fmt.Sprint(first); a != b {
				t.Errorf("replayed session-revoked %s, first %s: want the same claims but iat", a, b)
			}
			if sets[3]["jti"] == sets[4]["jti"] {
				t.Error("two event types share a jti")
			}

			// Verification, with the receiver's state echoed.
			code, b := call(t, http.MethodPost, md["verification_endpoint"].(string), token, map[string]string{"stream_id": id, "state": "st-42"})
			if code != http.StatusNoContent {
				t.Fatalf("verify: %d %s", code, b)
			}
			v := verifySET(t, rc.wait(8)[7], pub, tc.alg, f.srv.URL)
			if p := payload(t, v, EventVerification); p["state"] != "st-42" {
				t.Errorf("verification %v", p)
			}
			if sub, _ := v["sub_id"].(map[string]any); sub["format"] != "opaque" || sub["id"] != id {
				t.Errorf("verification sub_id %v", v["sub_id"])
			}

			// Secrets reach neither the logs nor the API's answers.
			_, view := call(t, http.MethodGet, md["configuration_endpoint"].(string)+"?stream_id="+id, token, nil)
			for what, text := range map[string]string{"logs": f.logs.String(), "stream read": string(view)} {
				for _, s := range []string{token, "push-secret-abcdef0123", strings.Split(tc.key, "\n")[1]} {
					if strings.Contains(text, s) {
						t.Errorf("%s show a secret %q", what, s)
					}
				}
			}
			if n := waitCount(f.m, id, "delivered", 8); n != 8 {
				t.Errorf("delivered %v, want 8", n)
			}
		})
	}
}

// counted reads the sets counter of stream and result.
func counted(m *Metrics, stream, result string) float64 {
	var d dto.Metric
	if err := m.sets.WithLabelValues(stream, result).Write(&d); err != nil {
		return -1
	}
	return d.GetCounter().GetValue()
}

// waitCount waits up to 5 s for the counter to reach want; it returns the
// last value read (the worker counts after the receiver answered).
func waitCount(m *Metrics, stream, result string, want float64) float64 {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := counted(m, stream, result)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gauge reads the blocked gauge of stream.
func gauge(m *Metrics, stream string) float64 {
	var d dto.Metric
	if err := m.blockedStreams.WithLabelValues(stream).Write(&d); err != nil {
		return -1
	}
	return d.GetGauge().GetValue()
}

// waitGauge waits up to 5 s for the blocked gauge to read want.
func waitGauge(m *Metrics, stream string, want float64) float64 {
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := gauge(m, stream)
		if v == want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(5 * time.Millisecond)
	}
}
