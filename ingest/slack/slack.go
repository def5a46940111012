// Package slack reads the Slack Enterprise Grid Audit Logs API for app and
// token activity: installs, uninstalls, scope expansions, token upgrades and
// preservation, and what apps do with files. Entries with no app in them
// produce no events. See README.md for config and field mapping.
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SourceName is the registered id of this connector.
const SourceName = "slack"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// DefaultBaseURL is the Audit Logs API host.
const DefaultBaseURL = "https://api.slack.com"

// DefaultActions are the audit actions about apps and their tokens, plus
// file downloads (kept only when an app did them).
var DefaultActions = []string{
	"app_installed", "app_uninstalled", "app_approved", "app_restricted", "app_removed_from_whitelist",
	"app_scopes_expanded", "app_resources_added", "app_resources_removed", "app_token_preserved",
	"bot_token_upgraded", "bot_token_downgraded", "org_app_workspace_added", "org_app_workspace_removed",
	"file_downloaded", "file_downloaded_blocked",
}

// Config is the connector's YAML config.
type Config struct {
	// Token is an Enterprise org owner's user token (xoxp-) with auditlogs:read.
	Token secret.Secret `yaml:"token"`
	// Limit is the page size, 1..9999.
	Limit int `yaml:"limit"`
	// Actions filters the log (the API's action parameter); empty reads everything.
	Actions []string `yaml:"actions"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config { return Config{Limit: 1000, Actions: DefaultActions} }

// Validate checks cfg without touching the network.
func (c Config) Validate() error {
	switch {
	case c.Token.IsZero():
		return fmt.Errorf("token: required (an org owner's xoxp- token with auditlogs:read)")
	case c.Limit < 1 || c.Limit > 9999:
		return fmt.Errorf("limit %d: must be 1..9999", c.Limit)
	}
	for _, a := range c.Actions {
		if a == "" || strings.ContainsAny(a, ", ") {
			return fmt.Errorf("actions: %q is not an audit action name", a)
		}
	}
	return nil
}

// Source is the Slack audit-log connector.
type Source struct {
	cfg    Config
	tenant string
	base   string
	client *http.Client
}

var _ ingest.Source = (*Source)(nil)

// New validates the config; it makes no network call.
func New(decode func(any) error, opt ingest.Options) (ingest.Source, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: strings.TrimRight(opt.BaseURL, "/"), client: opt.Client}
	if s.base == "" {
		s.base = DefaultBaseURL
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant} }

// Name implements ingest.Source.
func (s *Source) Name() string { return SourceName }

type logsResponse struct {
	OK               *bool             `json:"ok"`
	Error            string            `json:"error"`
	Entries          []json.RawMessage `json:"entries"`
	ResponseMetadata struct {
		NextCursor string `json:"next_cursor"`
	} `json:"response_metadata"`
}

// Fetch reads one page of the window that starts at cur.Time. Slack lists
// newest first and pages with response_metadata.next_cursor, so the window's
// high-water mark rides in the cursor token until the last page; every page
// repeats the same oldest/action query with the cursor.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	q := url.Values{}
	if !p.Start.IsZero() {
		q.Set("oldest", strconv.FormatInt(p.Start.Unix(), 10)) // inclusive, whole seconds
	}
	q.Set("limit", strconv.Itoa(s.cfg.Limit))
	if len(s.cfg.Actions) > 0 {
		q.Set("action", strings.Join(s.cfg.Actions, ","))
	}
	if p.Next != "" {
		q.Set("cursor", p.Next)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/audit/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: build request: %w", SourceName, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: fetch: %s", SourceName, secret.Redact(err.Error(), s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: read page: %w", SourceName, err)
	}
	var lr logsResponse
	decodeErr := json.Unmarshal(body, &lr)
	if resp.StatusCode == http.StatusTooManyRequests || lr.Error == "ratelimited" {
		retry := ingest.ParseRetryAfter(resp.Header.Get("Retry-After"))
		if retry == 0 {
			retry = time.Minute // Tier 3: the org-wide budget refills each minute
		}
		return ingest.Page{}, &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: retry}
	}
	if resp.StatusCode != http.StatusOK || (lr.OK != nil && !*lr.OK) {
		return ingest.Page{}, fmt.Errorf("%s: fetch: HTTP %d: %.200s", SourceName, resp.StatusCode, body)
	}
	if decodeErr != nil {
		return ingest.Page{}, fmt.Errorf("%s: decode page: %w", SourceName, decodeErr)
	}
	out := make([]json.RawMessage, 0, len(lr.Entries))
	for _, raw := range lr.Entries {
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		out = append(out, raw)
	}
	if next := lr.ResponseMetadata.NextCursor; next != "" {
		return ingest.Page{Records: out, Next: p.Continue(0, next)}, nil
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
}
