// Package hec sends alerts to a Splunk HTTP Event Collector: one POST per
// batch to {url}/services/collector/event with "Authorization: Splunk
// <token>", the body being one JSON envelope per alert, concatenated (HEC's
// batch format):
//
//	{"time":1761531187.412,"host":"tw-1","source":"tokenwatch","sourcetype":"tokenwatch:alert","index":"security","event":{…alert…}}
//
// time is the alert's first_seen, so Splunk files the alert when the abuse
// began, not when tokenwatch noticed it. A batch is one request, so HEC
// accepts or rejects it whole.
package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind in config.
const Kind = "splunk_hec"

// EventPath is the HEC endpoint for JSON events.
const EventPath = "/services/collector/event"

func init() {
	deliver.Register(Kind, func(name string, decode func(any) error) (deliver.Sink, error) {
		cfg := DefaultConfig()
		if err := decode(&cfg); err != nil {
			return nil, fmt.Errorf("splunk_hec %s: %w", name, err)
		}
		return New(name, cfg)
	})
}

// Config is the sink's YAML config.
type Config struct {
	// URL is the collector's base URL (https://splunk.example:8088);
	// EventPath is appended unless already there.
	URL string `yaml:"url"`
	// Token is the HEC token.
	Token secret.Secret `yaml:"token"`
	// Index is the target index; empty lets the token's default apply.
	Index string `yaml:"index"`
	// Host fills each envelope's host; empty means this machine's hostname.
	Host       string `yaml:"host"`
	Source     string `yaml:"source"`
	Sourcetype string `yaml:"sourcetype"`
	// IncidentSourcetype is the sourcetype of incident envelopes.
	IncidentSourcetype string            `yaml:"incident_sourcetype"`
	Timeout            time.Duration     `yaml:"timeout"`
	TLS                deliver.TLSConfig `yaml:"tls"`
	// Format of each envelope's event: "json" (schemas.Alert /
	// schemas.Incident) or "ocsf" (OCSF Detection Finding, class 2004).
	Format string `yaml:"format"`
}

// DefaultConfig: source "tokenwatch", sourcetypes "tokenwatch:alert" and
// "tokenwatch:incident", 10 s, tokenwatch's JSON.
func DefaultConfig() Config {
	return Config{Source: "tokenwatch", Sourcetype: "tokenwatch:alert", IncidentSourcetype: "tokenwatch:incident",
		Timeout: 10 * time.Second, Format: deliver.FormatJSON}
}

// Validate checks cfg.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" {
		return errors.New("url: required (https://splunk.example:8088)")
	}
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("url %s: not an http(s) URL", deliver.SafeURL(c.URL))
	}
	if c.Token.IsZero() {
		return errors.New("token: required")
	}
	if c.Source == "" || c.Sourcetype == "" || c.IncidentSourcetype == "" {
		return errors.New("source, sourcetype and incident_sourcetype: must not be empty")
	}
	if err := deliver.ValidateFormat(c.Format); err != nil {
		return err
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	}
	return nil
}

// Sink posts to one HEC endpoint.
type Sink struct {
	name     string
	cfg      Config
	endpoint string
	meta     Meta
	client   *http.Client
}

var _ deliver.IncidentSink = (*Sink)(nil)

// New validates cfg, reads the TLS CA file if any, and builds the sink; no
// network.
func New(name string, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("splunk_hec %s: %w", name, err)
	}
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("splunk_hec %s: tls: %w", name, err)
	}
	host := cfg.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	endpoint := strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(endpoint, EventPath) {
		endpoint += EventPath
	}
	return &Sink{
		name:     name,
		cfg:      cfg,
		endpoint: endpoint,
		meta:     Meta{Host: host, Source: cfg.Source, Sourcetype: cfg.Sourcetype, Index: cfg.Index, Format: cfg.Format},
		client:   &http.Client{Timeout: cfg.Timeout, Transport: tr},
	}, nil
}

// Name implements deliver.Sink.
func (s *Sink) Name() string { return s.name }

// Send posts the whole batch in one request.
func (s *Sink) Send(ctx context.Context, alerts []schemas.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	body, err := BuildBatch(alerts, s.meta)
	if err != nil {
		return &deliver.PermanentError{Err: fmt.Errorf("splunk_hec %s: %w", s.name, err)}
	}
	if err := s.post(ctx, body); err != nil {
		return fmt.Errorf("splunk_hec %s: %d alerts: %w", s.name, len(alerts), err)
	}
	return nil
}

// SendIncident implements deliver.IncidentSink: one envelope per incident
// version, sourcetype incident_sourcetype, time = the version's updated_at,
// the event being the incident (with its version) or its OCSF finding.
// Splunk searches keep the highest version per id (| dedup id sortby -version).
func (s *Sink) SendIncident(ctx context.Context, inc schemas.Incident, _ deliver.Receipt) (deliver.Receipt, error) {
	m := s.meta
	m.Sourcetype = s.cfg.IncidentSourcetype
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(BuildIncidentEnvelope(inc, m)); err != nil {
		return "", &deliver.PermanentError{Err: fmt.Errorf("splunk_hec %s: encode incident %s: %w", s.name, inc.ID, err)}
	}
	if err := s.post(ctx, b.Bytes()); err != nil {
		return "", fmt.Errorf("splunk_hec %s: incident %s v%d: %w", s.name, inc.ID, inc.Version, err)
	}
	return "", nil
}

func (s *Sink) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return &deliver.PermanentError{Err: deliver.TransportError(err, s.cfg.Token)}
	}
	req.Header.Set("Authorization", "Splunk "+s.cfg.Token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokenwatch")
	resp, err := s.client.Do(req)
	if err != nil {
		return deliver.TransportError(err, s.cfg.Token)
	}
	return deliver.CheckResponse(resp, s.cfg.Token)
}

// BuildIncidentEnvelope wraps one incident version. Pure.
func BuildIncidentEnvelope(inc schemas.Incident, m Meta) Envelope {
	e := Envelope{Host: m.Host, Source: m.Source, Sourcetype: m.Sourcetype, Index: m.Index, Event: deliver.IncidentBody(m.Format, &inc)}
	if !inc.UpdatedAt.IsZero() {
		e.Time = json.Number(epochSeconds(inc.UpdatedAt.UnixMilli()))
	}
	return e
}

// Meta is the per-sink part of every envelope.
type Meta struct {
	Host, Source, Sourcetype, Index string
	// Format is deliver.FormatJSON ("" too) or deliver.FormatOCSF.
	Format string
}

// Envelope is one HEC event.
type Envelope struct {
	// Time is epoch seconds with a millisecond fraction; omitted (HEC then
	// uses arrival time) when the alert has no first_seen.
	Time       json.Number `json:"time,omitempty"`
	Host       string      `json:"host,omitempty"`
	Source     string      `json:"source"`
	Sourcetype string      `json:"sourcetype"`
	Index      string      `json:"index,omitempty"`
	// Event is the alert or incident (schemas.Alert, schemas.Incident) or
	// its OCSF finding.
	Event any `json:"event"`
}

// BuildEnvelope wraps one alert. Pure.
func BuildEnvelope(a schemas.Alert, m Meta) Envelope {
	e := Envelope{Host: m.Host, Source: m.Source, Sourcetype: m.Sourcetype, Index: m.Index, Event: deliver.AlertBody(m.Format, &a)}
	if !a.FirstSeen.IsZero() {
		e.Time = json.Number(epochSeconds(a.FirstSeen.UnixMilli()))
	}
	return e
}

// BuildBatch is the request body: the envelopes concatenated, one per line
// for readability (HEC needs no separator). Pure.
func BuildBatch(alerts []schemas.Alert, m Meta) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, a := range alerts {
		if err := enc.Encode(BuildEnvelope(a, m)); err != nil {
			return nil, fmt.Errorf("encode alert %s: %w", a.ID, err)
		}
	}
	return b.Bytes(), nil
}

// epochSeconds formats ms as seconds with exactly three decimals, without
// going through float64.
func epochSeconds(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	frac := strconv.FormatInt(ms%1000, 10)
	return sign + strconv.FormatInt(ms/1000, 10) + "." + strings.Repeat("0", 3-len(frac)) + frac
}
