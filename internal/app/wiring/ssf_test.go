package wiring_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	_ "github.com/tokenwatch/tokenwatch/deliver/respond/okta"
	"github.com/tokenwatch/tokenwatch/deliver/respond/ssf"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestRunWithSSFTransmitsIncidents: `run` with respond.ssf configured
// serves the transmitter metadata on its listen address and, for an
// incident read from tokenwatch.incidents that a rule revokes in enforce
// mode, pushes its risk-level-change, then the session-revoked and
// credential-change of the executed revoke.
func TestRunWithSSFTransmitsIncidents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "ssf.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	okta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer okta.Close()
	var mu sync.Mutex
	var sets []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sets = append(sets, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rcv.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // below the ephemeral ports the broker takes

	cfg, err := config.Parse([]byte(`
http: {listen: ""}
respond:
  rules: [{name: r, match: {min_severity: medium}, action: revoke, mode: enforce}]
  vendors: {okta: {org_url: `+okta.URL+`, api_token: okta-admin-token}}
  ssf:
    issuer: http://`+addr+`
    listen: `+addr+`
    signing_key: file:`+keyFile+`
    key_id: k1
    allow_insecure_http: true   # httptest: http on loopback
    state_file: `+filepath.Join(t.TempDir(), "ssf-state.json")+`
    receivers: [{audience: https://rp.example, token: receiver-token-0123456789}]
    streams:
      - id: siem
        audience: https://rp.example
        endpoint_url: `+rcv.URL+`
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if p.SSF == nil {
		t.Fatal("respond.ssf configured, no transmitter built")
	}
	inc := schemas.Incident{ID: "inc-9", Version: 1, Status: schemas.IncidentOpen, Tenant: "t", IntegrationID: "0oa1234567890abcdefg", Source: "okta",
		Severity: schemas.SeverityMedium, UpdatedAt: schemas.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)), Detectors: []string{"geo.new_country"}}
	v, _ := json.Marshal(inc)
	w := broker.NewWriter(p.Cfg.Kafka, schemas.TopicIncidents)
	if err := broker.EnsureTopics(ctx, p.Cfg.Kafka, schemas.TopicIncidents); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(inc.ID), Value: v}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDeliver}) }()
	var md map[string]any
	ok := wiring.WaitFor(ctx, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if md == nil {
			if resp, err := http.Get("http://" + addr + ssf.PathMetadata); err == nil {
				json.NewDecoder(resp.Body).Decode(&md)
				resp.Body.Close()
			}
		}
		return len(sets) >= 3 && md != nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("metadata %v, %d SETs pushed", md, len(sets))
	}
	if md["issuer"] != "http://"+addr {
		t.Errorf("metadata %v", md)
	}
	for i, want := range []string{ssf.EventRiskLevelChange, ssf.EventSessionRevoked, ssf.EventCredentialChange} {
		parts := strings.Split(sets[i], ".")
		if len(parts) != 3 {
			t.Fatalf("SET %d is not a JWS: %q", i, sets[i])
		}
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if !strings.Contains(string(claims), want) {
			t.Errorf("SET %d claims %s: want %s", i, claims, want)
		}
		if i == 0 && !strings.Contains(string(claims), `"current_level":"MEDIUM"`) {
			t.Errorf("risk-level-change %s: want MEDIUM", claims)
		}
	}
}
