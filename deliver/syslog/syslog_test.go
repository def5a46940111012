package syslog

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

// receiver is a real TCP syslog receiver: it parses octet-counted frames
// and hands each message to Frames.
type receiver struct {
	ln     net.Listener
	Frames chan string
	conns  chan net.Conn
}

func listen(t *testing.T, tlsConf *tls.Config) *receiver {
	t.Helper()
	var ln net.Listener
	var err error
	if tlsConf != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{ln: ln, Frames: make(chan string, 100), conns: make(chan net.Conn, 10)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns <- c
			go r.read(c)
		}
	}()
	return r
}

// read parses RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG.
func (r *receiver) read(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		lenStr, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
		if err != nil || n <= 0 {
			r.Frames <- "BAD FRAME LENGTH " + lenStr
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			r.Frames <- "SHORT FRAME"
			return
		}
		r.Frames <- string(msg)
	}
}

func (r *receiver) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.Frames:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame received")
		return ""
	}
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	if cfg.Format == "" {
		cfg.Format = FormatCEF
	}
	if cfg.Facility == "" {
		cfg.Facility = "local0"
	}
	cfg.AppName, cfg.Hostname, cfg.Timeout = "tokenwatch", "tw-1", 5*time.Second
	s, err := New("siem", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rfc5424 is the header grammar: PRI VERSION TIMESTAMP HOSTNAME APP-NAME
// PROCID MSGID STRUCTURED-DATA, then MSG.
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\S+) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) (-|\[.*?\]) (.*)$`)

// parseCEF splits a CEF line into its 7 header fields and extension map,
// undoing the escapes.
func parseCEF(t *testing.T, s string) ([]string, map[string]string) {
	t.Helper()
	if !strings.HasPrefix(s, "CEF:0|") {
		t.Fatalf("not CEF: %q", s)
	}
	var fields []string
	var cur strings.Builder
	i := len("CEF:")
	for ; i < len(s) && len(fields) < 7; i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '|':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	ext := map[string]string{}
	rest := s[i:]
	keyRe := regexp.MustCompile(`(?:^| )([A-Za-z0-9]+)=`)
	locs := keyRe.FindAllStringSubmatchIndex(rest, -1)
	var keys []int
	for _, l := range locs {
		// A key starts after an unescaped space; values never hold a bare "=".
		if l[0] > 0 && rest[l[0]-1] == '\\' {
			continue
		}
		keys = append(keys, l[0], l[2], l[3], l[1])
	}
	for k := 0; k < len(keys); k += 4 {
		end := len(rest)
		if k+4 < len(keys) {
			end = keys[k+4]
		}
		v := rest[keys[k+3]:end]
		v = strings.NewReplacer(`\\`, `\`, `\=`, `=`, `\n`, "\n", `\r`, "\r").Replace(v)
		ext[rest[keys[k+1]:keys[k+2]]] = v
	}
	return fields, ext
}

func TestSampleConfigBuildsThroughTheRegistry(t *testing.T) {
	kind, name, decode := delivertest.Sample(t, sample)
	s, err := deliver.New(kind, name, decode)
	if err != nil {
		t.Fatal(err)
	}
	got := s.(*Sink)
	if got.cfg.Address != "siem.example.com:6514" || got.tls == nil || got.tls.ServerName != "siem.example.com" || got.header.Facility != 16 {
		t.Fatalf("built %+v", got.cfg)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no port":         func(c *Config) { c.Address = "siem" },
		"bad format":      func(c *Config) { c.Format = "leef" },
		"bad facility":    func(c *Config) { c.Facility = "local9" },
		"zero timeout":    func(c *Config) { c.Timeout = 0 },
		"ca without tls":  func(c *Config) { c.CAFile = "/ca.pem" },
		"missing ca file": func(c *Config) { c.TLS, c.CAFile = true, "/nonexistent.pem" },
		"empty app name":  func(c *Config) { c.AppName = "" },
	} {
		cfg := DefaultConfig()
		cfg.Address = "127.0.0.1:6514"
		edit(&cfg)
		if _, err := New("x", cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFrameParsesAsRFC5424WithCEF(t *testing.T) {
	rcv := listen(t, nil)
	s := newSink(t, Config{Address: rcv.ln.Addr().String()})
	a := delivertest.Alert()
	a.Title = "Pipe | and back\\slash"
	a.Summary = "line one\nkey=value \\ end"
	if err := s.Send(context.Background(), []schemas.Alert{a}); err != nil {
		t.Fatal(err)
	}
	m := rfc5424.FindStringSubmatch(rcv.next(t))
	if m == nil {
		t.Fatal("frame is not RFC 5424")
	}
	if m[1] != strconv.Itoa(16*8+3) {
		t.Errorf("PRI %s, want local0.err = 131", m[1])
	}
	if m[2] != "2025-10-27T02:23:07.000Z" || m[3] != "tw-1" || m[4] != "tokenwatch" || m[5] != "-" || m[6] != "geo.new_country" || m[7] != "-" {
		t.Errorf("header %q", m[1:8])
	}
	hdr, ext := parseCEF(t, m[8])
	wantHdr := []string{"0", "tokenwatch", "tokenwatch", Version, "geo.new_country", "Pipe | and back\\slash", "8"}
	if strings.Join(hdr, "¦") != strings.Join(wantHdr, "¦") {
		t.Errorf("CEF header %q, want %q", hdr, wantHdr)
	}
	want := map[string]string{
		"rt": "1761531787000", "start": "1761531187412", "end": "1761531787000",
		"externalId": a.ID, "cat": "geo.new_country", "msg": a.Summary, "cnt": "3",
		"cs1Label": "integration_id", "cs1": a.IntegrationID,
		"cs2Label": "tenant", "cs2": "acme",
		"cs3Label": "event_ids", "cs3": "evt-001,evt-002,evt-003",
		"cs4Label": "observed", "cs4": `{"country":"BR","asn":28573,"owner":"data-platform@acme.example"}`,
		"cs5Label": "baseline", "cs5": `{"countries":["US","IE"],"days":90}`,
		"cs6Label": "severity", "cs6": "high",
	}
	for k, v := range want {
		if ext[k] != v {
			t.Errorf("extension %s = %q, want %q", k, ext[k], v)
		}
	}
	if len(ext) != len(want) {
		t.Errorf("extensions %v", ext)
	}
}

func TestCEFEscaping(t *testing.T) {
	tests := []struct{ in, header, value string }{
		{`a|b`, `a\|b`, `a|b`},
		{`a\b`, `a\\b`, `a\\b`},
		{`k=v`, `k=v`, `k\=v`},
		{"x\ny", "x y", `x\ny`},
		{"x\r\ny", "x y", `x\ny`},
	}
	for _, tt := range tests {
		if got := cefHeader(tt.in); got != tt.header {
			t.Errorf("header %q → %q, want %q", tt.in, got, tt.header)
		}
		if got := cefValue(tt.in); got != tt.value {
			t.Errorf("value %q → %q, want %q", tt.in, got, tt.value)
		}
	}
}

func TestBatchIsOneFramePerAlertAndJSONFormatRoundTrips(t *testing.T) {
	rcv := listen(t, nil)
	s := newSink(t, Config{Address: rcv.ln.Addr().String(), Format: FormatJSON, Facility: "authpriv"})
	a, b := delivertest.Alert(), delivertest.Alert()
	b.ID, b.Severity, b.Summary = "second", schemas.SeverityCritical, "multi\nline"
	if err := s.Send(context.Background(), []schemas.Alert{a, b}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id  string
		pri int
	}{{a.ID, 10*8 + 3}, {"second", 10*8 + 2}} {
		m := rfc5424.FindStringSubmatch(rcv.next(t))
		if m == nil {
			t.Fatal("not RFC 5424")
		}
		if m[1] != strconv.Itoa(want.pri) {
			t.Errorf("PRI %s, want %d", m[1], want.pri)
		}
		var got schemas.Alert
		if err := json.Unmarshal([]byte(m[8]), &got); err != nil || got.ID != want.id {
			t.Errorf("MSG %q: %v", m[8], err)
		}
	}
}

func TestSendRedialsAfterTheReceiverHangsUp(t *testing.T) {
	rcv := listen(t, nil)
	s := newSink(t, Config{Address: rcv.ln.Addr().String()})
	ctx := context.Background()
	alerts := []schemas.Alert{delivertest.Alert()}
	if err := s.Send(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	rcv.next(t)
	first := <-rcv.conns
	first.Close() // receiver restarts
	time.Sleep(20 * time.Millisecond)
	if err := s.Send(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	if f := rcv.next(t); !strings.Contains(f, alerts[0].ID) {
		t.Fatalf("frame %q", f)
	}
	select {
	case <-rcv.conns:
	default:
		t.Fatal("the second send did not open a new connection")
	}
}

func TestDialFailureIsRetryableAndStopsAtMaxAttempts(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	s := newSink(t, Config{Address: addr})
	attempts, err := deliver.SendWithRetry(context.Background(), s, []schemas.Alert{delivertest.Alert()}, delivertest.FastRetry)
	if err == nil || deliver.IsPermanent(err) || attempts != delivertest.FastRetry.MaxAttempts {
		t.Fatalf("attempts %d err %v", attempts, err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("cause lost: %v", err)
	}
}

func TestTLSWithCAFile(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	rcv := listen(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, certPEM, 0o600)
	alerts := []schemas.Alert{delivertest.Alert()}

	s := newSink(t, Config{Address: rcv.ln.Addr().String(), TLS: true, CAFile: ca})
	if err := s.Send(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	if m := rfc5424.FindStringSubmatch(rcv.next(t)); m == nil || !strings.HasPrefix(m[8], "CEF:0|") {
		t.Fatal("TLS frame not RFC 5424 + CEF")
	}
	untrusted := newSink(t, Config{Address: rcv.ln.Addr().String(), TLS: true})
	if err := untrusted.Send(context.Background(), alerts); err == nil {
		t.Fatal("a certificate outside the system roots was accepted")
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "syslog test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestIncidentVersionsAreFramesWithTheirVersion(t *testing.T) {
	rcv := listen(t, nil)
	cef := newSink(t, Config{Address: rcv.ln.Addr().String()})
	inc := delivertest.Incident(3, schemas.IncidentOpen)
	if _, err := cef.SendIncident(context.Background(), inc, ""); err != nil {
		t.Fatal(err)
	}
	m := rfc5424.FindStringSubmatch(rcv.next(t))
	if m == nil || m[6] != "incident" || m[2] != "2025-10-27T02:23:07.000Z" {
		t.Fatalf("not an RFC 5424 incident frame: %q", m)
	}
	head, ext := parseCEF(t, m[8])
	if head[4] != "incident" || head[5] != inc.Title || head[6] != "10" || ext["externalId"] != inc.ID || ext["cn1"] != "3" ||
		ext["cn1Label"] != "version" || ext["cfp1"] != "84.5" || ext["cs5"] != "open" || ext["cnt"] != "2" {
		t.Fatalf("CEF %q %v", head, ext)
	}
	js := newSink(t, Config{Address: rcv.ln.Addr().String(), Format: FormatJSON})
	inc.Version, inc.Status = 4, schemas.IncidentResolved
	if _, err := js.SendIncident(context.Background(), inc, ""); err != nil {
		t.Fatal(err)
	}
	m = rfc5424.FindStringSubmatch(rcv.next(t))
	var got schemas.Incident
	if m == nil || json.Unmarshal([]byte(m[8]), &got) != nil || got.Version != 4 || got.Status != "resolved" {
		t.Fatalf("JSON incident frame %q", m)
	}
}
