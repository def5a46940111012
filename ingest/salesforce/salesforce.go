// Package salesforce reads what connected apps and API clients do in a
// Salesforce org through the REST query API: Real-Time Event Monitoring
// ApiEvent (read calls: query, queryMore, count) and BulkApiResultEventStore
// (downloads of Bulk API job results), LoginHistory (every OAuth and API
// login, successful or not), and the event log files (EventLogFile: per-call
// CSV logs of the SOAP, REST and Bulk APIs, writes included). Browser logins
// produce no events. See README.md for config and field mapping.
package salesforce

import (
	"bytes"
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
	"sync"
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

// Objects this connector can read, in the order a window reads them.
const (
	ObjectAPIEvent      = "ApiEvent"
	ObjectLoginHistory  = "LoginHistory"
	ObjectBulkAPIResult = "BulkApiResultEventStore"
	ObjectEventLogFile  = "EventLogFile"
)

// soql holds each queried object's SOQL; %s is the window start. ApiEvent
// and BulkApiResultEventStore are big objects listed in their index order
// (EventDate descending), so they get no ORDER BY; LoginHistory is ordered
// oldest first. Either order suits the window, which finds the high-water
// mark itself. EventLogFile is listed by elfListQuery.
var soql = map[string]string{
	ObjectAPIEvent: "SELECT EventIdentifier, EventDate, UserId, Username, SourceIp, UserAgent, ConnectedAppId, Client, Application, " +
		"Operation, QueriedEntities, RowsProcessed, SessionKey, LoginKey, ApiType FROM ApiEvent WHERE EventDate >= %s",
	ObjectBulkAPIResult: "SELECT EventIdentifier, EventDate, UserId, Username, SourceIp, LoginKey, SessionKey, JobId, BatchId, Query " +
		"FROM BulkApiResultEventStore WHERE EventDate >= %s",
	ObjectLoginHistory: "SELECT Id, LoginTime, UserId, SourceIp, ForwardedForIp, LoginType, Status, Application, ClientVersion, Browser, " +
		"Platform, ApiType, ApiVersion, LoginUrl, CountryIso FROM LoginHistory WHERE LoginTime >= %s ORDER BY LoginTime ASC",
	ObjectEventLogFile: "",
}

// Config is the connector's YAML config.
type Config struct {
	// InstanceURL is the org's My Domain URL, e.g. https://example.my.salesforce.com.
	InstanceURL string `yaml:"instance_url"`
	// APIVersion is the REST API version, e.g. v61.0.
	APIVersion string `yaml:"api_version"`
	// Token is an OAuth 2.0 access token of an integration user with
	// "View Real-Time Event Monitoring Data", "View Event Log Files" and
	// "Manage Users" (LoginHistory).
	Token secret.Secret `yaml:"token"`
	// Objects lists what to read: ApiEvent, LoginHistory,
	// BulkApiResultEventStore, EventLogFile.
	Objects []string `yaml:"objects"`
	// BatchSize asks for this many records per page (Sforce-Query-Options), 200..2000.
	BatchSize int `yaml:"batch_size"`
	// EventLogTypes are the EventLogFile event types downloaded.
	EventLogTypes []string `yaml:"event_log_types"`
	// EventLogInterval is Hourly (orgs with hourly event log files) or Daily.
	EventLogInterval string `yaml:"event_log_interval"`
	// ResolveAppNames looks connected apps up by name (ConnectedApplication)
	// so that records naming an app only by name get its id (identityOf).
	ResolveAppNames bool `yaml:"resolve_app_names"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config {
	return Config{APIVersion: "v61.0", Objects: []string{ObjectAPIEvent, ObjectLoginHistory}, BatchSize: 2000,
		EventLogTypes: slices.Clone(DefaultLogTypes), EventLogInterval: IntervalHourly, ResolveAppNames: true}
}

var (
	apiVersion = regexp.MustCompile(`^v\d+\.\d$`)
	logType    = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

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
		return fmt.Errorf("objects: name at least one of %s", strings.Join(objectNames(), ", "))
	case c.BatchSize < 200 || c.BatchSize > 2000:
		return fmt.Errorf("batch_size %d: must be 200..2000", c.BatchSize)
	case c.EventLogInterval != IntervalHourly && c.EventLogInterval != IntervalDaily:
		return fmt.Errorf("event_log_interval %q: must be %s or %s", c.EventLogInterval, IntervalHourly, IntervalDaily)
	}
	for i, o := range c.Objects {
		if _, ok := soql[o]; !ok {
			return fmt.Errorf("objects: %q is not one of %s", o, strings.Join(objectNames(), ", "))
		}
		if slices.Contains(c.Objects[:i], o) {
			return fmt.Errorf("objects: %q listed twice", o)
		}
	}
	if slices.Contains(c.Objects, ObjectEventLogFile) && len(c.EventLogTypes) == 0 {
		return fmt.Errorf("event_log_types: name at least one event type (e.g. %s)", strings.Join(DefaultLogTypes, ", "))
	}
	for _, t := range c.EventLogTypes {
		if !logType.MatchString(t) {
			return fmt.Errorf("event_log_types: %q is not an EventLogFile event type", t)
		}
	}
	return nil
}

func objectNames() []string {
	return []string{ObjectAPIEvent, ObjectLoginHistory, ObjectBulkAPIResult, ObjectEventLogFile}
}

// Source is the Salesforce connector.
type Source struct {
	cfg    Config
	tenant string
	base   string
	client *http.Client
	now    func() time.Time

	mu         sync.Mutex
	apps       map[string]string // lower-case connected app name → id
	appsLoaded time.Time

	// learned is what the records themselves said of each connected app
	// (Learn): the id behind a name, for the records that carry the name only.
	learned *appIDs
}

var _ ingest.Source = (*Source)(nil)

// appsTTL is how long a ConnectedApplication listing is used before it is read again.
const appsTTL = time.Hour

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
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: strings.TrimRight(base, "/"), client: opt.Client, now: time.Now, learned: newAppIDs()}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant, learned: newAppIDs()} }

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

// Fetch reads one page. A window reads each configured object in turn from
// the window start: the query objects with a SOQL time cursor (>= the window
// start, whole seconds), following nextRecordsUrl; EventLogFile by listing
// the files whose LogDate falls in the window and downloading one file per
// page. The high-water mark travels in the cursor token until the last
// object's last page.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	if p.Stream < 0 || p.Stream >= len(s.cfg.Objects) {
		return ingest.Page{}, fmt.Errorf("%s: cursor names object %d, config has %d", SourceName, p.Stream, len(s.cfg.Objects))
	}
	object := s.cfg.Objects[p.Stream]
	if object == ObjectEventLogFile {
		return s.fetchLogFiles(ctx, p)
	}
	var u string
	if p.Next == "" {
		u = s.queryURL(fmt.Sprintf(soql[object], soqlTime(p.Start)))
	} else {
		if err := instancePath(p.Next); err != nil {
			return ingest.Page{}, err
		}
		u = s.base + p.Next
	}
	qr, err := s.query(ctx, u, object)
	if err != nil {
		return ingest.Page{}, err
	}
	out, err := s.keep(ctx, p, qr.Records)
	if err != nil {
		return ingest.Page{}, err
	}
	if qr.NextRecordsURL != "" && !qr.Done {
		return ingest.Page{Records: out, Next: p.Continue(p.Stream, qr.NextRecordsURL)}, nil
	}
	return s.streamDone(p, out), nil
}

// streamDone ends the current object: on to the next one, or the window is read.
func (s *Source) streamDone(p *window.Pass, out []json.RawMessage) ingest.Page {
	if p.Stream+1 < len(s.cfg.Objects) {
		return ingest.Page{Records: out, Next: p.Continue(p.Stream+1, "")}
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}
}

// keep drops the records the window already delivered, observes the rest,
// and adds the resolved connected app id to those naming their app by name.
func (s *Source) keep(ctx context.Context, p *window.Pass, recs []json.RawMessage) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(recs))
	for _, raw := range recs {
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		raw, err := s.resolve(ctx, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// soqlTime is a SOQL datetime literal (whole seconds, UTC); a zero time is
// the epoch, SOQL needing a literal (the org's retention bounds the read).
func soqlTime(t time.Time) string {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

func (s *Source) queryURL(q string) string {
	return s.base + "/services/data/" + s.cfg.APIVersion + "/query?q=" + url.QueryEscape(q)
}

// instancePath refuses a continuation that is not a path on the configured
// instance, so the token is never sent elsewhere.
func instancePath(p string) error {
	if !strings.HasPrefix(p, "/services/data/") || strings.Contains(p, "..") {
		return fmt.Errorf("%s: nextRecordsUrl %q is not an instance path", SourceName, p)
	}
	return nil
}

// get sends an authenticated GET and returns the body of a 200 answer.
func (s *Source) get(ctx context.Context, u, what, accept string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", SourceName, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token.Reveal())
	req.Header.Set("Accept", accept)
	req.Header.Set("Sforce-Query-Options", "batchSize="+strconv.Itoa(s.cfg.BatchSize))
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %s", SourceName, what, secret.Redact(err.Error(), s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", SourceName, what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, s.httpError(resp, body, what)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s: %s: larger than %d bytes", SourceName, what, limit)
	}
	return body, nil
}

func (s *Source) query(ctx context.Context, u, object string) (queryResponse, error) {
	body, err := s.get(ctx, u, "query "+object, "application/json", 64<<20)
	if err != nil {
		return queryResponse{}, err
	}
	var qr queryResponse
	if err := json.Unmarshal(body, &qr); err != nil {
		return queryResponse{}, fmt.Errorf("%s: decode %s page: %w", SourceName, object, err)
	}
	return qr, nil
}

// fetchLogFiles reads the EventLogFile stream: a listing page (its files go
// into the cursor), then one page per file, its CSV rows as records.
func (s *Source) fetchLogFiles(ctx context.Context, p *window.Pass) (ingest.Page, error) {
	var st elfState
	if p.Next != "" {
		if err := json.Unmarshal([]byte(p.Next), &st); err != nil {
			return ingest.Page{}, fmt.Errorf("%s: cursor: event log state: %w", SourceName, err)
		}
	}
	if p.Next == "" || (len(st.Files) == 0 && st.More != "") {
		u := s.queryURL(s.elfListQuery(p.Start))
		if st.More != "" {
			if err := instancePath(st.More); err != nil {
				return ingest.Page{}, err
			}
			u = s.base + st.More
		}
		qr, err := s.query(ctx, u, ObjectEventLogFile)
		if err != nil {
			return ingest.Page{}, err
		}
		next := elfState{}
		for _, raw := range qr.Records {
			var f logFile
			if err := json.Unmarshal(raw, &f); err != nil {
				return ingest.Page{}, fmt.Errorf("%s: decode EventLogFile listing: %w", SourceName, err)
			}
			next.Files = append(next.Files, logFile{ID: f.ID, EventType: f.EventType, LogDate: f.LogDate, Interval: f.Interval, LogFile: f.LogFile, Sequence: f.Sequence})
		}
		if !qr.Done {
			next.More = qr.NextRecordsURL
		}
		if len(next.Files) == 0 && next.More == "" {
			return s.streamDone(p, nil), nil
		}
		b, _ := json.Marshal(next)
		return ingest.Page{Next: p.Continue(p.Stream, string(b))}, nil
	}
	if len(st.Files) == 0 {
		return s.streamDone(p, nil), nil
	}
	f := st.Files[0]
	path := f.LogFile
	if path == "" {
		path = "/services/data/" + s.cfg.APIVersion + "/sobjects/EventLogFile/" + f.ID + "/LogFile"
	}
	if err := instancePath(path); err != nil || !strings.HasSuffix(path, "/LogFile") {
		return ingest.Page{}, fmt.Errorf("%s: EventLogFile %s LogFile %q is not an instance path", SourceName, f.ID, path)
	}
	body, err := s.get(ctx, s.base+path, "download "+f.EventType+" log file "+f.ID, "text/csv", maxLogFile)
	if err != nil {
		return ingest.Page{}, err
	}
	rows, err := readLogFile(bytes.NewReader(body), f.EventType)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %s log file %s: %w", SourceName, f.EventType, f.ID, err)
	}
	out, err := s.keep(ctx, p, rows)
	if err != nil {
		return ingest.Page{}, err
	}
	st.Files = st.Files[1:]
	if len(st.Files) == 0 && st.More == "" {
		return s.streamDone(p, out), nil
	}
	b, _ := json.Marshal(st)
	return ingest.Page{Records: out, Next: p.Continue(p.Stream, string(b))}, nil
}

// resolve adds the connected app's id to a record that names the app only by
// name (query records' Application, log rows' CONNECTED_APP_NAME), from the
// org's ConnectedApplication list (read at most once an hour).
func (s *Source) resolve(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	if !s.cfg.ResolveAppNames {
		return raw, nil
	}
	var probe struct {
		ConnectedAppID  string `json:"ConnectedAppId"`
		Application     string `json:"Application"`
		ElfAppID        string `json:"CONNECTED_APP_ID"`
		ElfAppName      string `json:"CONNECTED_APP_NAME"`
		AlreadyResolved string `json:"TokenwatchConnectedAppId"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.AlreadyResolved != "" ||
		usable(probe.ConnectedAppID) != "" || usable(probe.ElfAppID) != "" {
		return raw, nil
	}
	name := strings.ToLower(usable(firstNonEmpty(usable(probe.Application), probe.ElfAppName)))
	if name == "" {
		return raw, nil
	}
	apps, err := s.connectedApps(ctx)
	if err != nil {
		return nil, err
	}
	id, ok := apps[name]
	if !ok {
		return raw, nil
	}
	t := bytes.TrimRight(raw, " \t\r\n")
	if len(t) < 2 || t[len(t)-1] != '}' {
		return raw, nil
	}
	idJSON, _ := json.Marshal(id)
	out := make([]byte, 0, len(t)+len(ResolvedAppField)+len(idJSON)+4)
	out = append(out, t[:len(t)-1]...)
	out = append(out, `,"`+ResolvedAppField+`":`...)
	out = append(out, idJSON...)
	return append(out, '}'), nil
}

// connectedApps reads (or returns the cached) name → id map of the org's
// connected apps.
func (s *Source) connectedApps(ctx context.Context) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps != nil && s.now().Sub(s.appsLoaded) < appsTTL {
		return s.apps, nil
	}
	apps := map[string]string{}
	u := s.queryURL("SELECT Id, Name FROM ConnectedApplication")
	for page := 0; page < 50; page++ {
		qr, err := s.query(ctx, u, "ConnectedApplication")
		if err != nil {
			return nil, fmt.Errorf("%w (resolve_app_names: false turns the name lookup off)", err)
		}
		for _, raw := range qr.Records {
			var a struct{ Id, Name string }
			if json.Unmarshal(raw, &a) == nil && a.Id != "" && a.Name != "" {
				apps[strings.ToLower(a.Name)] = a.Id
			}
		}
		if qr.Done || qr.NextRecordsURL == "" {
			break
		}
		if err := instancePath(qr.NextRecordsURL); err != nil {
			return nil, err
		}
		u = s.base + qr.NextRecordsURL
	}
	s.apps, s.appsLoaded = apps, s.now()
	return apps, nil
}

// httpError maps Salesforce's error list. REQUEST_LIMIT_EXCEEDED (HTTP 403)
// covers both the rolling 24-hour API allowance and the concurrent
// long-request limit; with no Retry-After the caller waits five minutes and
// tries again rather than failing the poll.
func (s *Source) httpError(resp *http.Response, body []byte, what string) error {
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
		return fmt.Errorf("%s: %s: HTTP %d %s: %s", SourceName, what, resp.StatusCode, errs[0].ErrorCode, errs[0].Message)
	}
	return fmt.Errorf("%s: %s: HTTP %d: %.200s", SourceName, what, resp.StatusCode, body)
}
