package hec

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

const token = "8d3f0b6e-1c2a-4f5e-9a7b-0c1d2e3f4a5b"

func newSink(t *testing.T, base string) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL, cfg.Token, cfg.Index, cfg.Host = base, secret.New(token), "security", "tw-1"
	s, err := New("splunk", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSampleConfigBuildsThroughTheRegistry(t *testing.T) {
	t.Setenv("TOKENWATCH_SPLUNK_HEC_TOKEN", token)
	kind, name, decode := delivertest.Sample(t, sample)
	s, err := deliver.New(kind, name, decode)
	if err != nil {
		t.Fatal(err)
	}
	got := s.(*Sink)
	if got.endpoint != "https://splunk.example.com:8088/services/collector/event" || got.meta.Index != "security" || got.meta.Host == "" {
		t.Fatalf("built %+v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no url", func(c *Config) { c.URL = "" }},
		{"not http", func(c *Config) { c.URL = "tcp://splunk:8088" }},
		{"no token", func(c *Config) { c.Token = secret.Secret{} }},
		{"empty sourcetype", func(c *Config) { c.Sourcetype = "" }},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }},
		{"missing ca file", func(c *Config) { c.TLS.CAFile = "/nonexistent/ca.pem" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Token = "https://splunk:8088", secret.New(token)
			tt.edit(&cfg)
			if _, err := New("x", cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestHTTPContract(t *testing.T) {
	delivertest.HTTPContract(t, func(t *testing.T, base string) deliver.Sink { return newSink(t, base) }, token)
}

func TestBuildEnvelope(t *testing.T) {
	a := delivertest.Alert()
	tests := []struct {
		name     string
		first    schemas.Time
		meta     Meta
		wantTime string
		wantKeys []string
	}{
		{"ms fraction of first_seen", schemas.UnixMilli(1761531187412), Meta{Host: "h", Source: "tokenwatch", Sourcetype: "tokenwatch:alert", Index: "sec"}, "1761531187.412", []string{"event", "host", "index", "source", "sourcetype", "time"}},
		{"leading zeros kept", schemas.UnixMilli(1761531187005), Meta{Source: "s", Sourcetype: "st"}, "1761531187.005", []string{"event", "source", "sourcetype", "time"}},
		{"whole second", schemas.UnixMilli(1761531187000), Meta{Source: "s", Sourcetype: "st"}, "1761531187.000", []string{"event", "source", "sourcetype", "time"}},
		{"no first_seen: HEC uses arrival time", schemas.Time{}, Meta{Source: "s", Sourcetype: "st"}, "", []string{"event", "source", "sourcetype"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.FirstSeen = tt.first
			raw, err := json.Marshal(BuildEnvelope(a, tt.meta))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			json.Unmarshal(raw, &m)
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			if got := strings.Join(slices.Sorted(slices.Values(keys)), ","); got != strings.Join(tt.wantKeys, ",") {
				t.Errorf("keys %s, want %v", got, tt.wantKeys)
			}
			if string(m["time"]) != tt.wantTime {
				t.Errorf("time %s, want %s (a JSON number)", m["time"], tt.wantTime)
			}
			var ev schemas.Alert
			if err := json.Unmarshal(m["event"], &ev); err != nil || ev.ID != a.ID || len(ev.EventIDs) != 3 {
				t.Errorf("event %s", m["event"])
			}
		})
	}
}

func TestSendPostsOneConcatenatedBatch(t *testing.T) {
	srv := delivertest.NewServer(t, delivertest.Response{Status: 200, Body: `{"text":"Success","code":0}`})
	a, b := delivertest.Alert(), delivertest.Alert()
	b.ID = "second"
	if err := newSink(t, srv.URL).Send(context.Background(), []schemas.Alert{a, b}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1 for the batch", len(reqs))
	}
	r := reqs[0]
	if r.Path != EventPath || r.Header.Get("Authorization") != "Splunk "+token {
		t.Fatalf("%s %s auth=%q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
	// HEC reads concatenated JSON objects: decode them as a stream.
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	var ids []string
	for dec.More() {
		var env struct {
			Time       float64       `json:"time"`
			Host       string        `json:"host"`
			Source     string        `json:"source"`
			Sourcetype string        `json:"sourcetype"`
			Index      string        `json:"index"`
			Event      schemas.Alert `json:"event"`
		}
		if err := dec.Decode(&env); err != nil {
			t.Fatal(err)
		}
		if env.Host != "tw-1" || env.Source != "tokenwatch" || env.Sourcetype != "tokenwatch:alert" || env.Index != "security" || env.Time != 1761531187.412 {
			t.Errorf("envelope %+v", env)
		}
		ids = append(ids, env.Event.ID)
	}
	if strings.Join(ids, ",") != a.ID+",second" {
		t.Errorf("events %v", ids)
	}
	if n := bytes.Count(r.Body, []byte("\n")); n != 2 {
		t.Errorf("%d lines, want one envelope per line", n)
	}
}

func TestSendVerifiesTLSWithTheConfiguredCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	alerts := []schemas.Alert{delivertest.Alert()}
	for _, tt := range []struct {
		name string
		tls  deliver.TLSConfig
		ok   bool
	}{
		{"system roots reject the test cert", deliver.TLSConfig{}, false},
		{"ca_file trusts it", deliver.TLSConfig{CAFile: ca}, true},
		{"insecure_skip_verify", deliver.TLSConfig{InsecureSkipVerify: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Token, cfg.TLS = srv.URL, secret.New(token), tt.tls
			s, err := New("splunk", cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), alerts)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestIncidentEnvelopesCarryTheVersionInJSONOrOCSF(t *testing.T) {
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
	}))
	defer srv.Close()
	inc := delivertest.Incident(2, schemas.IncidentOpen)
	for _, format := range []string{"json", "ocsf"} {
		cfg := DefaultConfig()
		cfg.URL, cfg.Token, cfg.Host, cfg.Format = srv.URL, secret.New("tok"), "tw-1", format
		s, err := New("splunk", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SendIncident(context.Background(), inc, ""); err != nil {
			t.Fatal(err)
		}
		var env struct {
			Time       json.Number     `json:"time"`
			Sourcetype string          `json:"sourcetype"`
			Event      json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(bodies[len(bodies)-1], &env); err != nil {
			t.Fatal(err)
		}
		if env.Sourcetype != "tokenwatch:incident" || env.Time != "1761531787.000" {
			t.Fatalf("%s: envelope %+v", format, env)
		}
		switch format {
		case "json":
			var got schemas.Incident
			if json.Unmarshal(env.Event, &got) != nil || got.ID != inc.ID || got.Version != 2 {
				t.Fatalf("json event %s", env.Event)
			}
		case "ocsf":
			delivertest.ValidateOCSF(t, env.Event)
		}
	}
	// Alerts in OCSF validate too.
	cfg := DefaultConfig()
	cfg.URL, cfg.Token, cfg.Format = srv.URL, secret.New("tok"), "ocsf"
	s, _ := New("splunk", cfg)
	if err := s.Send(context.Background(), []schemas.Alert{delivertest.Alert()}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Event json.RawMessage `json:"event"`
	}
	json.Unmarshal(bodies[len(bodies)-1], &env)
	delivertest.ValidateOCSF(t, env.Event)
}
