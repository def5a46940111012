// Package salesforce reads what connected apps and API clients do in a
// Salesforce org: Real-Time Event Monitoring ApiEvent records (one per API
// query or DML call, with rows processed) and LoginHistory (every OAuth and
// API login, successful or not), through the REST query API. Browser logins
// produce no events. See README.md for config and field mapping.
package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SourceName is the registered id of this connector.
const SourceName = "salesforce"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// Objects this connector can query, in the order a window reads them.
const (
	ObjectAPIEvent     = "ApiEvent"
	ObjectLoginHistory = "LoginHistory"
)

// soql holds each object's query; %s is the window start. ApiEvent is a big
// object listed in its index order (EventDate descending), so it gets no
// ORDER BY; LoginHistory is ordered oldest first. Either order suits the
// window, which finds the high-water mark itself.
var soql = map[string]string{
	ObjectAPIEvent: "SELECT EventIdentifier, EventDate, UserId, Username, SourceIp, UserAgent, ConnectedAppId, Client, Application, " +
		"Operation, QueriedEntities, RowsProcessed, Records, SessionKey, LoginKey, ApiType FROM ApiEvent WHERE EventDate >= %s",
	ObjectLoginHistory: "SELECT Id, LoginTime, UserId, SourceIp, LoginType, Status, Application, Browser, Platform, ApiType, ApiVersion, LoginUrl " +
		"FROM LoginHistory WHERE LoginTime >= %s ORDER BY LoginTime ASC",
}

// Config is the connector's YAML config.
type Config struct {
	// InstanceURL is the org's My Domain URL, e.g. https://example.my.salesforce.com.
	InstanceURL string `yaml:"instance_url"`
	// APIVersion is the REST API version, e.g. v61.0.
	APIVersion string `yaml:"api_version"`
	// Token is an OAuth 2.0 access token of an integration user with
	// "View Real-Time Event Monitoring Data" and "View All Data"/"Manage Users".
	Token secret.Secret `yaml:"token"`
	// Objects lists what to query: ApiEvent, LoginHistory.
	Objects []string `yaml:"objects"`
	// BatchSize asks for this many records per page (Sforce-Query-Options), 200..2000.
	BatchSize int `yaml:"batch_size"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config {
	return Config{APIVersion: "v61.0", Objects: []string{ObjectAPIEvent, ObjectLoginHistory}, BatchSize: 2000}
}

var apiVersion = regexp.MustCompile(`^v\d+\.\d$`)

// Validate checks cfg without touching the network. baseSet says the
// endpoint comes from ingest.Options.BaseURL, so instance_url may be empty.
func (c Config) Validate(baseSet bool) error {
	switch {
	case c.InstanceURL == "" && !baseSet:
		return fmt.Errorf("instance_url: required (e.g. https://example.my.salesforce.com)")
	case c.InstanceURL != "" && !strings.HasPrefix(c.InstanceURL, "https://"):
		return fmt.Errorf("instance_url %q: must be an https:// URL", c.InstanceURL)
	case !apiVersion.MatchString(c.APIVersion):
		return fmt.Errorf("api_version %q: want the form v61.0", c.APIVersion)
	case c.Token.IsZero():
		return fmt.Errorf("token: required (an OAuth access token)")
	case len(c.Objects) == 0:
		return fmt.Errorf("objects: name at least one of %s, %s", ObjectAPIEvent, ObjectLoginHistory)
	case c.BatchSize < 200 || c.BatchSize > 2000:
		return fmt.Errorf("batch_size %d: must be 200..2000", c.BatchSize)
	}
	for i, o := range c.Objects {
		if _, ok := soql[o]; !ok {
			return fmt.Errorf("objects: %q is not %s or %s", o, ObjectAPIEvent, ObjectLoginHistory)
		}
		if slices.Contains(c.Objects[:i], o) {
			return fmt.Errorf("objects: %q listed twice", o)
		}
	}
	return nil
}

// Source is the Salesforce connector.
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
	if err := cfg.Validate(opt.BaseURL != ""); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	base := opt.BaseURL
	if base == "" {
		base = cfg.InstanceURL
	}
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: strings.TrimRight(base, "/"), client: opt.Client}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant} }

// Name implements ingest.Source.
func (s *Source) Name() string { return SourceName }

type queryResponse struct {
	Done           bool              `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl"`
	Records        []json.RawMessage `json:"records"`
}

type apiError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// Fetch reads one page. A window queries each configured object in turn with
// a SOQL time cursor (>= the window start, whole seconds) and follows
// nextRecordsUrl; the high-water mark travels in the cursor token until the
// last object's last page.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	if p.Stream < 0 || p.Stream >= len(s.cfg.Objects) {
		return ingest.Page{}, fmt.Errorf("%s: cursor names object %d, config has %d", SourceName, p.Stream, len(s.cfg.Objects))
	}
	object := s.cfg.Objects[p.Stream]
	var u string
	if p.Next == "" {
		start := p.Start.UTC().Truncate(time.Second)
		if p.Start.IsZero() {
			start = time.Unix(0, 0).UTC() // SOQL needs a literal; the org's retention bounds the read
		}
		q := fmt.Sprintf(soql[object], start.Format("2006-01-02T15:04:05Z"))
		u = s.base + "/services/data/" + s.cfg.APIVersion + "/query?q=" + url.QueryEscape(q)
	} else {
		// nextRecordsUrl is a path on the same instance; anything else is refused.
		if !strings.HasPrefix(p.Next, "/services/data/") {
			return ingest.Page{}, fmt.Errorf("%s: nextRecordsUrl %q is not an instance path", SourceName, p.Next)
		}
		u = s.base + p.Next
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: build request: %w", SourceName, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sforce-Query-Options", "batchSize="+strconv.Itoa(s.cfg.BatchSize))
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: query %s: %s", SourceName, object, secret.Redact(err.Error(), s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: read %s page: %w", SourceName, object, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ingest.Page{}, s.httpError(resp, body, object)
	}
	var qr queryResponse
	if err := json.Unmarshal(body, &qr); err != nil {
		return ingest.Page{}, fmt.Errorf("%s: decode %s page: %w", SourceName, object, err)
	}
	out := make([]json.RawMessage, 0, len(qr.Records))
	for _, raw := range qr.Records {
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		out = append(out, raw)
	}
	switch {
	case qr.NextRecordsURL != "" && !qr.Done:
		return ingest.Page{Records: out, Next: p.Continue(p.Stream, qr.NextRecordsURL)}, nil
	case p.Stream+1 < len(s.cfg.Objects):
		return ingest.Page{Records: out, Next: p.Continue(p.Stream+1, "")}, nil
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
}

// httpError maps Salesforce's error list. REQUEST_LIMIT_EXCEEDED (HTTP 403)
// covers both the rolling 24-hour API allowance and the concurrent
// long-request limit; with no Retry-After the caller waits five minutes and
// tries again rather than failing the poll.
func (s *Source) httpError(resp *http.Response, body []byte, object string) error {
	var errs []apiError
	_ = json.Unmarshal(body, &errs)
	limited := resp.StatusCode == http.StatusTooManyRequests
	for _, e := range errs {
		if e.ErrorCode == "REQUEST_LIMIT_EXCEEDED" {
			limited = true
		}
	}
	if limited {
		retry := ingest.ParseRetryAfter(resp.Header.Get("Retry-After"))
		if retry == 0 {
			retry = 5 * time.Minute
		}
		return &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: retry}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: query %s: HTTP %d %s: %s", SourceName, object, resp.StatusCode, errs[0].ErrorCode, errs[0].Message)
	}
	return fmt.Errorf("%s: query %s: HTTP %d: %.200s", SourceName, object, resp.StatusCode, body)
}
