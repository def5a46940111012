// Package snowflake reads who logs in to a Snowflake account and what they
// run: SNOWFLAKE.ACCOUNT_USAGE.LOGIN_HISTORY and QUERY_HISTORY (joined with
// SESSIONS for the client application), through the SQL API with key-pair
// JWT auth. The integrations are the users (service users above all: the
// 2024 UNC5537 campaign used stolen credentials of users without MFA) and
// the client applications they connect with. See README.md.
package snowflake

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SourceName is the registered id of this connector.
const SourceName = "snowflake"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// Views this connector reads, in the order a window reads them.
const (
	ViewLoginHistory = "LOGIN_HISTORY"
	ViewQueryHistory = "QUERY_HISTORY"
)

// statements holds each view's SQL; the one bind variable is the window
// start (ISO 8601, UTC). SOURCE_VIEW names the view in every row. The query
// text itself is never selected: Snowflake hashes it (SHA2, 256 bits) and
// only the hash leaves the account, since query text can hold secrets
// (CREATE USER … PASSWORD, credentials in COPY INTO).
var statements = map[string]string{
	ViewLoginHistory: "SELECT 'LOGIN_HISTORY' AS SOURCE_VIEW, EVENT_ID, EVENT_TIMESTAMP, EVENT_TYPE, USER_NAME, CLIENT_IP, " +
		"REPORTED_CLIENT_TYPE, REPORTED_CLIENT_VERSION, FIRST_AUTHENTICATION_FACTOR, SECOND_AUTHENTICATION_FACTOR, " +
		"IS_SUCCESS, ERROR_CODE, ERROR_MESSAGE, RELATED_EVENT_ID " +
		"FROM SNOWFLAKE.ACCOUNT_USAGE.LOGIN_HISTORY WHERE EVENT_TIMESTAMP >= TO_TIMESTAMP_LTZ(?) ORDER BY EVENT_TIMESTAMP, EVENT_ID",
	ViewQueryHistory: "SELECT 'QUERY_HISTORY' AS SOURCE_VIEW, q.QUERY_ID, q.START_TIME, q.QUERY_TYPE, " +
		"SHA2(q.QUERY_TEXT, 256) AS QUERY_TEXT_SHA256, q.USER_NAME, q.ROLE_NAME, q.WAREHOUSE_NAME, q.DATABASE_NAME, " +
		"q.SCHEMA_NAME, q.EXECUTION_STATUS, q.ERROR_CODE, q.ROWS_PRODUCED, q.ROWS_UNLOADED, q.BYTES_SCANNED, " +
		"q.SESSION_ID, s.CLIENT_APPLICATION_ID, s.AUTHENTICATION_METHOD " +
		"FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY q LEFT JOIN SNOWFLAKE.ACCOUNT_USAGE.SESSIONS s ON s.SESSION_ID = q.SESSION_ID " +
		"WHERE q.START_TIME >= TO_TIMESTAMP_LTZ(?) ORDER BY q.START_TIME, q.QUERY_ID",
}

// Config is the connector's YAML config.
type Config struct {
	// Account is the account identifier: <orgname>-<account_name>, or an
	// account locator (xy12345, or xy12345.us-east-2.aws).
	Account string `yaml:"account"`
	// User is the Snowflake user tokenwatch reads as (a service user whose
	// role has IMPORTED PRIVILEGES on the SNOWFLAKE database).
	User string `yaml:"user"`
	// PrivateKey is the PEM RSA private key (PKCS#8 or PKCS#1, unencrypted)
	// whose public key is set on User (RSA_PUBLIC_KEY).
	PrivateKey secret.Secret `yaml:"private_key"`
	// Role and Warehouse run the statements; empty uses the user's defaults.
	Role      string `yaml:"role"`
	Warehouse string `yaml:"warehouse"`
	// Views lists what to read: LOGIN_HISTORY, QUERY_HISTORY.
	Views []string `yaml:"views"`
	// Timeout is the statement timeout in seconds (SQL API `timeout`).
	Timeout int `yaml:"timeout"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config {
	return Config{Views: []string{ViewLoginHistory, ViewQueryHistory}, Timeout: 120}
}

var (
	identifier = regexp.MustCompile(`^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$`)
	handleRe   = regexp.MustCompile(`^[0-9a-fA-F-]{8,64}$`)
)

// Validate checks cfg without touching the network. baseSet says the
// endpoint comes from ingest.Options.BaseURL, so account may only name the
// account for the JWT. The key is parsed at the first poll.
func (c Config) Validate() error {
	switch {
	case c.Account == "" || !identifier.MatchString(c.Account):
		return fmt.Errorf("account %q: want an account identifier such as myorg-myaccount or xy12345.us-east-2.aws", c.Account)
	case c.User == "" || !identifier.MatchString(c.User):
		return fmt.Errorf("user %q: required, a Snowflake user name", c.User)
	case c.PrivateKey.IsZero():
		return fmt.Errorf("private_key: required (the PEM RSA key of the user's key pair)")
	case c.Role != "" && !identifier.MatchString(c.Role):
		return fmt.Errorf("role %q: not an identifier", c.Role)
	case c.Warehouse != "" && !identifier.MatchString(c.Warehouse):
		return fmt.Errorf("warehouse %q: not an identifier", c.Warehouse)
	case len(c.Views) == 0:
		return fmt.Errorf("views: name at least one of %s, %s", ViewLoginHistory, ViewQueryHistory)
	case c.Timeout < 1 || c.Timeout > 3600:
		return fmt.Errorf("timeout %d: must be 1..3600 seconds", c.Timeout)
	}
	for i, v := range c.Views {
		if _, ok := statements[v]; !ok {
			return fmt.Errorf("views: %q is not %s or %s", v, ViewLoginHistory, ViewQueryHistory)
		}
		if slices.Contains(c.Views[:i], v) {
			return fmt.Errorf("views: %q listed twice", v)
		}
	}
	return nil
}

// jwtAccount is the account as the JWT's iss and sub name it: upper case,
// without the region and cloud of a locator, and with the dots of an account
// name written as hyphens.
func jwtAccount(account string) string {
	a := strings.ToUpper(account)
	if i := strings.IndexByte(a, '.'); i > 0 && !strings.Contains(a[:i], "-") {
		a = a[:i] // xy12345.us-east-2.aws → XY12345
	}
	return strings.ReplaceAll(a, ".", "-")
}

// Source is the Snowflake connector.
type Source struct {
	cfg    Config
	tenant string
	base   string
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	key      *rsa.PrivateKey
	token    string
	tokenExp time.Time
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
	base := opt.BaseURL
	if base == "" {
		base = "https://" + strings.ToLower(cfg.Account) + ".snowflakecomputing.com"
	}
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: strings.TrimRight(base, "/"), client: opt.Client, now: time.Now}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant} }

// Name implements ingest.Source.
func (s *Source) Name() string { return SourceName }

// jwtLifetime is the token lifetime Snowflake allows at most (one hour).
const jwtLifetime = time.Hour

// bearer returns the key-pair JWT, signing a new one (RS256) when the cached
// one has less than five minutes left: iss <ACCOUNT>.<USER>.SHA256:<base64
// SHA-256 of the DER public key>, sub <ACCOUNT>.<USER>, iat now, exp now+1h.
func (s *Source) bearer() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && s.tokenExp.Sub(now) > 5*time.Minute {
		return s.token, nil
	}
	if s.key == nil {
		k, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(s.cfg.PrivateKey.Reveal()))
		if err != nil {
			// The error names the PEM problem, never the key.
			return "", fmt.Errorf("%s: private_key: not an unencrypted PEM RSA key (PKCS#8 or PKCS#1): %v", SourceName, err)
		}
		s.key = k
	}
	tok, exp, err := signJWT(s.key, s.cfg.Account, s.cfg.User, now)
	if err != nil {
		return "", err
	}
	s.token, s.tokenExp = tok, exp
	return tok, nil
}

// signJWT builds the key-pair JWT for account and user at now.
func signJWT(key *rsa.PrivateKey, account, user string, now time.Time) (string, time.Time, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: public key: %w", SourceName, err)
	}
	sum := sha256.Sum256(der)
	qualified := jwtAccount(account) + "." + strings.ToUpper(user)
	exp := now.Add(jwtLifetime)
	claims := jwt.RegisteredClaims{
		Issuer:    qualified + ".SHA256:" + base64.StdEncoding.EncodeToString(sum[:]),
		Subject:   qualified,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: sign JWT: %w", SourceName, err)
	}
	return tok, exp, nil
}

// resultSet is the SQL API's answer: metadata (column names, partitions),
// the rows of one partition as arrays of strings or nulls, or a status.
type resultSet struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	SQLState          string `json:"sqlState"`
	StatementHandle   string `json:"statementHandle"`
	ResultSetMetaData *struct {
		NumRows       int64 `json:"numRows"`
		PartitionInfo []struct {
			RowCount int64 `json:"rowCount"`
		} `json:"partitionInfo"`
		RowType []struct {
			Name string `json:"name"`
		} `json:"rowType"`
	} `json:"resultSetMetaData"`
	Data [][]*string `json:"data"`
}

// pos is where in a statement's result a window is, in the cursor: the
// handle, the next partition to read (-1: the statement is still running,
// ask its status), the partition count and the column names.
type pos struct {
	Handle     string   `json:"h"`
	Partition  int      `json:"p"`
	Partitions int      `json:"n,omitempty"`
	Columns    []string `json:"c,omitempty"`
}

// Fetch reads one page: a window runs each configured view's statement from
// the window start (POST /api/v2/statements, the first partition in the
// answer), then reads its further partitions (GET
// /api/v2/statements/{handle}?partition=N), then the next view.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	if p.Stream < 0 || p.Stream >= len(s.cfg.Views) {
		return ingest.Page{}, fmt.Errorf("%s: cursor names view %d, config has %d", SourceName, p.Stream, len(s.cfg.Views))
	}
	view := s.cfg.Views[p.Stream]
	var at pos
	var rs resultSet
	if p.Next == "" {
		rs, err = s.submit(ctx, view, p.Start)
		at.Partition = 0
	} else {
		if err := json.Unmarshal([]byte(p.Next), &at); err != nil || !handleRe.MatchString(at.Handle) {
			return ingest.Page{}, fmt.Errorf("%s: cursor: bad statement position %q", SourceName, p.Next)
		}
		q := ""
		if at.Partition > 0 {
			q = "?partition=" + strconv.Itoa(at.Partition)
		}
		rs, err = s.call(ctx, http.MethodGet, "/api/v2/statements/"+at.Handle+q, nil, view)
		if at.Partition < 0 {
			at.Partition = 0
		}
	}
	if err != nil {
		return ingest.Page{}, err
	}
	if rs.ResultSetMetaData == nil && at.Partition == 0 {
		// 202: still running. Ask for its status on the next page.
		if !handleRe.MatchString(rs.StatementHandle) {
			return ingest.Page{}, fmt.Errorf("%s: %s: no result and no statement handle (code %s)", SourceName, view, rs.Code)
		}
		b, _ := json.Marshal(pos{Handle: rs.StatementHandle, Partition: -1})
		return ingest.Page{Next: p.Continue(p.Stream, string(b))}, nil
	}
	if md := rs.ResultSetMetaData; md != nil {
		at.Columns = at.Columns[:0]
		for _, c := range md.RowType {
			at.Columns = append(at.Columns, c.Name)
		}
		at.Partitions = max(len(md.PartitionInfo), 1)
		if rs.StatementHandle != "" {
			at.Handle = rs.StatementHandle
		}
	}
	out := make([]json.RawMessage, 0, len(rs.Data))
	for i, row := range rs.Data {
		raw, err := rowObject(at.Columns, row)
		if err != nil {
			return ingest.Page{}, fmt.Errorf("%s: %s partition %d row %d: %w", SourceName, view, at.Partition, i, err)
		}
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		out = append(out, raw)
	}
	if at.Partition+1 < at.Partitions {
		if !handleRe.MatchString(at.Handle) {
			return ingest.Page{}, fmt.Errorf("%s: %s: %d partitions but no statement handle", SourceName, view, at.Partitions)
		}
		at.Partition++
		b, _ := json.Marshal(at)
		return ingest.Page{Records: out, Next: p.Continue(p.Stream, string(b))}, nil
	}
	if p.Stream+1 < len(s.cfg.Views) {
		return ingest.Page{Records: out, Next: p.Continue(p.Stream+1, "")}, nil
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
}

// rowObject zips a row with the column names: {"COLUMN": "value" | null}.
func rowObject(cols []string, row []*string) (json.RawMessage, error) {
	if len(row) != len(cols) {
		return nil, fmt.Errorf("%d values for %d columns", len(row), len(cols))
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		v, _ := json.Marshal(row[i]) // nil → null
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// submit runs a view's statement from start.
func (s *Source) submit(ctx context.Context, view string, start time.Time) (resultSet, error) {
	if start.IsZero() {
		start = time.Unix(0, 0) // the views keep a year; the account's retention bounds the read
	}
	body := map[string]any{
		"statement": statements[view],
		"timeout":   s.cfg.Timeout,
		"database":  "SNOWFLAKE",
		"schema":    "ACCOUNT_USAGE",
		"bindings":  map[string]any{"1": map[string]string{"type": "TEXT", "value": start.UTC().Format("2006-01-02T15:04:05.000Z")}},
	}
	if s.cfg.Role != "" {
		body["role"] = s.cfg.Role
	}
	if s.cfg.Warehouse != "" {
		body["warehouse"] = s.cfg.Warehouse
	}
	b, _ := json.Marshal(body)
	return s.call(ctx, http.MethodPost, "/api/v2/statements", b, view)
}

// call sends one SQL API request with the JWT and maps the answer: 200 and
// 202 are results (or a status), 429 a rate limit, everything else an error
// naming Snowflake's code and message.
func (s *Source) call(ctx context.Context, method, path string, body []byte, view string) (resultSet, error) {
	tok, err := s.bearer()
	if err != nil {
		return resultSet{}, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return resultSet{}, fmt.Errorf("%s: build request: %w", SourceName, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tokenwatch/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return resultSet{}, fmt.Errorf("%s: %s: %s", SourceName, view, secret.Redact(err.Error(), s.cfg.PrivateKey))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resultSet{}, fmt.Errorf("%s: read %s result: %w", SourceName, view, err)
	}
	var rs resultSet
	_ = json.Unmarshal(raw, &rs)
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted:
		if err := json.Unmarshal(raw, &rs); err != nil {
			return resultSet{}, fmt.Errorf("%s: decode %s result: %w", SourceName, view, err)
		}
		if resp.StatusCode == http.StatusAccepted {
			rs.ResultSetMetaData, rs.Data = nil, nil
		}
		return rs, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		retry := ingest.ParseRetryAfter(resp.Header.Get("Retry-After"))
		if retry == 0 {
			retry = 30 * time.Second
		}
		return resultSet{}, &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: retry}
	case http.StatusUnauthorized:
		s.mu.Lock()
		s.token = "" // sign a fresh one next time
		s.mu.Unlock()
	}
	if rs.Code != "" || rs.Message != "" {
		return resultSet{}, fmt.Errorf("%s: %s: HTTP %d code %s: %.300s", SourceName, view, resp.StatusCode, rs.Code, rs.Message)
	}
	return resultSet{}, fmt.Errorf("%s: %s: HTTP %d: %.200s", SourceName, view, resp.StatusCode, raw)
}
