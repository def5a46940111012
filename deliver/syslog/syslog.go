// Package syslog sends alerts to a SIEM as RFC 5424 syslog messages over TCP,
// optionally TLS (RFC 5425), framed by octet counting (RFC 6587 §3.4.1:
// "<length> <message>"), so messages may hold newlines and are never split.
// The message body is either ArcSight CEF, which most SIEMs parse without
// configuration, or the alert as JSON:
//
//	<139>1 2025-10-27T02:23:07.000Z tw-1 tokenwatch - geo.new_country - CEF:0|tokenwatch|tokenwatch|dev|geo.new_country|Integration used from a new country: BR|8|rt=… externalId=…
//
// The sink keeps one connection, dialled on first Send (never in the
// constructor) and redialled after any error or when the receiver has
// closed it.
package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind in config.
const Kind = "syslog"

// Version is the product version in the CEF header. It defaults to the main
// module's version from the build info; -ldflags "-X …/deliver/syslog.Version=v1.2.3"
// overrides it.
var Version = buildVersion()

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func init() {
	deliver.Register(Kind, func(name string, decode func(any) error) (deliver.Sink, error) {
		cfg := DefaultConfig()
		if err := decode(&cfg); err != nil {
			return nil, fmt.Errorf("syslog %s: %w", name, err)
		}
		return New(name, cfg)
	})
}

// Formats of the message body.
const (
	FormatCEF  = "cef"
	FormatJSON = "json"
)

// Config is the sink's YAML config.
type Config struct {
	// Address is the receiver's host:port (6514 is customary for TLS, 601 or
	// 514 for plain TCP).
	Address string `yaml:"address"`
	// TLS turns on TLS; CAFile, ServerName and InsecureSkipVerify tune it.
	TLS                bool   `yaml:"tls"`
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// Format is "cef" or "json".
	Format string `yaml:"format"`
	// Facility is a syslog facility name (local0 … local7, auth, authpriv,
	// security, daemon, user…).
	Facility string `yaml:"facility"`
	// Hostname is the HOSTNAME field; empty means this machine's hostname.
	Hostname string `yaml:"hostname"`
	AppName  string `yaml:"app_name"`
	// Timeout bounds dialling and each batch's write.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig: CEF, facility local0, app "tokenwatch", 10 s.
func DefaultConfig() Config {
	return Config{Format: FormatCEF, Facility: "local0", AppName: "tokenwatch", Timeout: 10 * time.Second}
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "audit": 13,
	"alert": 14, "clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Validate checks cfg.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("address %q: want host:port: %w", c.Address, err)
	}
	if c.Format != FormatCEF && c.Format != FormatJSON {
		return fmt.Errorf("format %q: want cef or json", c.Format)
	}
	if _, ok := facilities[c.Facility]; !ok {
		return fmt.Errorf("facility %q: want a syslog facility name such as local0 or authpriv", c.Facility)
	}
	if c.AppName == "" {
		return errors.New("app_name: must not be empty")
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	}
	if !c.TLS && (c.CAFile != "" || c.InsecureSkipVerify || c.ServerName != "") {
		return errors.New("ca_file, server_name and insecure_skip_verify need tls: true")
	}
	return nil
}

// Sink writes to one syslog receiver.
type Sink struct {
	name   string
	cfg    Config
	header Header
	tls    *tls.Config // nil for plain TCP

	mu   sync.Mutex
	conn net.Conn
}

var _ deliver.IncidentSink = (*Sink)(nil)
var _ deliver.Closer = (*Sink)(nil)

// New validates cfg, reads the CA file if any, and builds the sink; no
// network.
func New(name string, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("syslog %s: %w", name, err)
	}
	s := &Sink{name: name, cfg: cfg}
	if cfg.TLS {
		tc, err := deliver.TLSConfig{CAFile: cfg.CAFile, ServerName: cfg.ServerName, InsecureSkipVerify: cfg.InsecureSkipVerify}.Build()
		if err != nil {
			return nil, fmt.Errorf("syslog %s: %w", name, err)
		}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(cfg.Address)
		}
		s.tls = tc
	}
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	s.header = Header{Facility: facilities[cfg.Facility], Hostname: host, AppName: cfg.AppName}
	return s, nil
}

// Name implements deliver.Sink.
func (s *Sink) Name() string { return s.name }

// Send writes the batch's frames in one write. Any failure drops the
// connection so the retry redials; the receiver may then see part of the
// batch twice (syslog has no acknowledgement; SIEMs dedup on externalId /
// the alert id).
func (s *Sink) Send(ctx context.Context, alerts []schemas.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for i := range alerts {
		msg, err := BuildMessage(&alerts[i], s.header, s.cfg.Format)
		if err != nil {
			return &deliver.PermanentError{Err: fmt.Errorf("syslog %s: alert %s: %w", s.name, alerts[i].ID, err)}
		}
		buf.Write(Frame(msg))
	}

	if err := s.write(ctx, buf.Bytes()); err != nil {
		return fmt.Errorf("syslog %s: write %d alerts to %s: %w", s.name, len(alerts), s.cfg.Address, err)
	}
	return nil
}

// SendIncident implements deliver.IncidentSink: one frame per incident
// version, MSGID "incident", the body the incident as CEF (externalId = id,
// cn1 = version) or as JSON (schemas.Incident, with its version).
func (s *Sink) SendIncident(ctx context.Context, inc schemas.Incident, _ deliver.Receipt) (deliver.Receipt, error) {
	msg, err := BuildIncidentMessage(&inc, s.header, s.cfg.Format)
	if err != nil {
		return "", &deliver.PermanentError{Err: fmt.Errorf("syslog %s: incident %s: %w", s.name, inc.ID, err)}
	}
	if err := s.write(ctx, Frame(msg)); err != nil {
		return "", fmt.Errorf("syslog %s: write incident %s v%d to %s: %w", s.name, inc.ID, inc.Version, s.cfg.Address, err)
	}
	return "", nil
}

func (s *Sink) write(ctx context.Context, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !alive(s.conn) {
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		c, err := s.dial(ctx)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		s.conn = c
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(b); err != nil {
		s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// BuildIncidentMessage renders one RFC 5424 message for an incident
// version. Pure. TIMESTAMP is the version's updated_at, MSGID "incident".
func BuildIncidentMessage(inc *schemas.Incident, h Header, format string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 ", h.Facility*8+SyslogSeverity(inc.Severity))
	if inc.UpdatedAt.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(inc.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	fmt.Fprintf(&b, " %s %s - incident - ", headerField(h.Hostname, 255), headerField(h.AppName, 48))
	switch format {
	case FormatCEF:
		b.WriteString(IncidentCEF(inc, Version))
	case FormatJSON:
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(inc); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
	default:
		return nil, fmt.Errorf("format %q", format)
	}
	return b.Bytes(), nil
}

// IncidentCEF renders an incident version as one CEF:0 line with signature
// id "incident": rt = updated_at, start/end = first/last seen, externalId =
// incident id, cat = "incident", msg = summary, cnt = number of alerts,
// cn1 = version, cfp1 = risk score, cs1 integration_ids, cs2 tenant,
// cs3 alert_ids, cs4 detectors, cs5 status, cs6 severity.
func IncidentCEF(inc *schemas.Incident, version string) string {
	var b strings.Builder
	b.WriteString("CEF:0|tokenwatch|tokenwatch|")
	for _, f := range []string{version, "incident", inc.Title} {
		b.WriteString(cefHeader(f))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(CEFSeverity(inc.Severity)))
	b.WriteByte('|')
	ms := func(t schemas.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	ext := [][2]string{
		{"rt", ms(inc.UpdatedAt)}, {"start", ms(inc.FirstSeen)}, {"end", ms(inc.LastSeen)},
		{"externalId", inc.ID}, {"cat", "incident"}, {"msg", inc.Summary}, {"cnt", strconv.Itoa(len(inc.AlertIDs))},
		{"cn1Label", "version"}, {"cn1", strconv.Itoa(inc.Version)},
		{"cfp1Label", "risk_score"}, {"cfp1", strconv.FormatFloat(inc.RiskScore, 'f', -1, 64)},
	}
	custom := []struct{ label, v string }{
		{"integration_ids", strings.Join(inc.IntegrationIDs, ",")},
		{"tenant", inc.Tenant},
		{"alert_ids", strings.Join(inc.AlertIDs, ",")},
		{"detectors", strings.Join(inc.Detectors, ",")},
		{"status", inc.Status},
		{"severity", string(inc.Severity)},
	}
	for i, c := range custom {
		if c.v == "" {
			continue
		}
		n := strconv.Itoa(i + 1)
		ext = append(ext, [2]string{"cs" + n + "Label", c.label}, [2]string{"cs" + n, truncate(c.v, maxCustomString)})
	}
	first := true
	for _, e := range ext {
		if e[1] == "" {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(e[0])
		b.WriteByte('=')
		b.WriteString(cefValue(e[1]))
	}
	return b.String()
}

func (s *Sink) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if s.tls != nil {
		d := &tls.Dialer{Config: s.tls}
		return d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.cfg.Address)
}

// alive reports whether the receiver still holds the connection open. A
// syslog receiver never writes, so a read that would block means alive and
// EOF or an error means it hung up: without this check the first write after
// a receiver restart lands in the kernel buffer of a dead socket and is lost.
// The deadline is a millisecond ahead, not now: Go checks an expired deadline
// before reading, and would never see a pending EOF.
func alive(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	var ne net.Error
	return err == nil || (errors.As(err, &ne) && ne.Timeout())
}

// Close closes the connection, if any.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Header is the fixed part of every RFC 5424 message this sink sends.
type Header struct {
	Facility int
	Hostname string
	AppName  string
}

// Frame applies RFC 6587 octet counting: the message length in bytes, a
// space, the message.
func Frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+8)
	out = strconv.AppendInt(out, int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}

// BuildMessage renders one RFC 5424 message. Pure.
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
//
// TIMESTAMP is the alert's last_seen (when the activity was last observed,
// stable under replay), MSGID the detector, PROCID and STRUCTURED-DATA "-",
// MSG the CEF line or the alert JSON.
func BuildMessage(a *schemas.Alert, h Header, format string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 ", h.Facility*8+SyslogSeverity(a.Severity))
	if a.LastSeen.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(a.LastSeen.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	fmt.Fprintf(&b, " %s %s - %s - ", headerField(h.Hostname, 255), headerField(h.AppName, 48), headerField(a.Detector, 32))
	switch format {
	case FormatCEF:
		b.WriteString(CEF(a, Version))
	case FormatJSON:
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	default:
		return nil, fmt.Errorf("format %q", format)
	}
	return b.Bytes(), nil
}

// headerField makes s a valid RFC 5424 header token: printable US-ASCII
// without spaces, at most n bytes, "-" when empty.
func headerField(s string, n int) string {
	out := []byte(s)
	for i, c := range out {
		if c < 33 || c > 126 {
			out[i] = '_'
		}
	}
	if len(out) > n {
		out = out[:n]
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// SyslogSeverity maps an alert severity to RFC 5424's: critical → 2 (crit),
// high → 3 (err), medium → 4 (warning), low → 5 (notice), info → 6.
func SyslogSeverity(s schemas.Severity) int {
	switch s {
	case schemas.SeverityCritical:
		return 2
	case schemas.SeverityHigh:
		return 3
	case schemas.SeverityMedium:
		return 4
	case schemas.SeverityLow:
		return 5
	case schemas.SeverityInfo:
		return 6
	}
	return 4
}

// CEFSeverity maps an alert severity to CEF's 0–10: info 1, low 3, medium 5,
// high 8, critical 10 (unknown 5).
func CEFSeverity(s schemas.Severity) int {
	switch s {
	case schemas.SeverityCritical:
		return 10
	case schemas.SeverityHigh:
		return 8
	case schemas.SeverityMedium:
		return 5
	case schemas.SeverityLow:
		return 3
	case schemas.SeverityInfo:
		return 1
	}
	return 5
}

// maxCustomString is CEF's length for csN values.
const maxCustomString = 4000

// CEF renders a as one CEF:0 line:
//
//	CEF:0|tokenwatch|tokenwatch|<version>|<detector>|<title>|<0-10>|<extensions>
//
// Extensions: rt and end = last_seen, start = first_seen (epoch ms),
// externalId = alert id, cat = detector, msg = summary, cnt = number of
// evidence events, cs1 integration_id, cs2 tenant, cs3 event_ids (comma
// separated), cs4 observed, cs5 baseline (JSON), cs6 severity name; each csN
// with its csNLabel. Header fields escape \ and |; extension values escape \
// and = and encode newlines as \n, per the CEF specification.
func CEF(a *schemas.Alert, version string) string {
	var b strings.Builder
	b.WriteString("CEF:0|tokenwatch|tokenwatch|")
	for _, f := range []string{version, a.Detector, a.Title} {
		b.WriteString(cefHeader(f))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(CEFSeverity(a.Severity)))
	b.WriteByte('|')
	ext := []struct{ k, v string }{}
	add := func(k, v string) {
		if v != "" {
			ext = append(ext, struct{ k, v string }{k, v})
		}
	}
	ms := func(t schemas.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	add("rt", ms(a.LastSeen))
	add("start", ms(a.FirstSeen))
	add("end", ms(a.LastSeen))
	add("externalId", a.ID)
	add("cat", a.Detector)
	add("msg", a.Summary)
	add("cnt", strconv.Itoa(len(a.EventIDs)))
	custom := []struct{ label, v string }{
		{"integration_id", a.IntegrationID},
		{"tenant", a.Tenant},
		{"event_ids", strings.Join(a.EventIDs, ",")},
		{"observed", string(compactJSON(a.Observed))},
		{"baseline", string(compactJSON(a.Baseline))},
		{"severity", string(a.Severity)},
	}
	for i, c := range custom {
		if c.v == "" {
			continue
		}
		n := strconv.Itoa(i + 1)
		add("cs"+n+"Label", c.label)
		add("cs"+n, truncate(c.v, maxCustomString))
	}
	for i, e := range ext {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.k)
		b.WriteByte('=')
		b.WriteString(cefValue(e.v))
	}
	return b.String()
}

var (
	cefHeaderEscaper = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r\n", " ", "\n", " ", "\r", " ")
	cefValueEscaper  = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r\n", `\n`, "\n", `\n`, "\r", `\r`)
)

func cefHeader(s string) string { return cefHeaderEscaper.Replace(s) }
func cefValue(s string) string  { return cefValueEscaper.Replace(s) }

func compactJSON(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
