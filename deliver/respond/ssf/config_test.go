package ssf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// TestKeysSignTheirAlgorithm: each PEM form the config takes, and the keys
// refused with the reason; an error never quotes the key.
func TestKeysSignTheirAlgorithm(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	pk8 := func(k any) []byte { b, _ := x509.MarshalPKCS8PrivateKey(k); return b }
	sec1, _ := x509.MarshalECPrivateKey(ek)
	for _, tc := range []struct {
		name, pem, alg, err string
	}{
		{"PKCS#8 RSA", enc("PRIVATE KEY", pk8(rk)), "RS256", ""},
		{"PKCS#1 RSA", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), "RS256", ""},
		{"PKCS#8 EC", enc("PRIVATE KEY", pk8(ek)), "ES256", ""},
		{"SEC 1 EC", enc("EC PRIVATE KEY", sec1), "ES256", ""},
		{"RSA 1024", enc("PRIVATE KEY", pk8(small)), "", "at least 2048"},
		{"P-384", enc("PRIVATE KEY", pk8(p384)), "", "want P-256"},
		{"public key", enc("PUBLIC KEY", []byte("MIIBIjANBgkq")), "", `"PUBLIC KEY"`},
		{"garbage", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n", "", "does not parse"},
		{"not PEM", "secret-key-bytes", "", "not a PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseKey(secret.New(tc.pem))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "secret-key") {
					t.Errorf("the error quotes the key: %v", err)
				}
				return
			}
			if err != nil || s.method.Alg() != tc.alg {
				t.Fatalf("%v, alg %v; want %s", err, s, tc.alg)
			}
			k := s.jwks()["keys"][0]
			if k.Alg != tc.alg || (k.N == "" && k.X == "") {
				t.Errorf("jwk %+v", k)
			}
			// Public members only: no d, p, q, dp, dq, qi (RFC 7518 §6).
			b, _ := json.Marshal(s.jwks())
			for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
				if strings.Contains(string(b), private) {
					t.Errorf("the JWKS has the private member %s: %s", private, b)
				}
			}
		})
	}
}

// TestConfigIsStrict: an unknown key at any depth of respond.ssf is an
// error naming it, and Validate names each bad field.
func TestConfigIsStrict(t *testing.T) {
	rk, ec := keys(t)
	t.Setenv("TW_SSF_TEST_KEY", ec)
	t.Setenv("TW_SSF_TEST_OLD_KEY", publicPEM(t, rk))
	old := "previous_keys: [{key_id: k0, key: env:TW_SSF_TEST_OLD_KEY, until: 2027-01-15T00:00:00Z"
	base := "issuer: https://tw.example\nlisten: ':9470'\nsigning_key: env:TW_SSF_TEST_KEY\nkey_id: k\n"
	for _, tc := range []struct{ yaml, want string }{
		{base + "issuers: x\n", "issuers: unknown field"},
		{base + "streams: [{id: s, audience: a, endpoint_url: 'https://x', auth: y}]\n", "streams[0].auth: unknown field"},
		{base + "compromise: {detector: [x]}\n", "compromise.detector: unknown field"},
		{base + "receivers: [{audience: a, token: t, name: x}]\n", "receivers[0].name: unknown field"},
		{base + old + ", kid: x}]\n", "previous_keys[0].kid: unknown field"},
		{base + strings.Replace(old, "k0", "k", 1) + "}]\n", `respond.ssf.previous_keys[0].key_id: "k": used twice`},
		{base + old + "}, " + old[len("previous_keys: ["):] + "}]\n", `respond.ssf.previous_keys[1].key_id: "k0": used twice`},
		{base + "previous_keys: [{key_id: k0, key: env:TW_SSF_TEST_OLD_KEY}]\n", "respond.ssf.previous_keys[0].until: required"},
		{base + "previous_keys: [{key_id: k0, until: 2027-01-15T00:00:00Z}]\n", "respond.ssf.previous_keys[0].key: required"},
		{base + "previous_keys: [{key: env:TW_SSF_TEST_OLD_KEY, until: 2027-01-15T00:00:00Z}]\n", "respond.ssf.previous_keys[0].key_id: required"},
		{base + "previous_keys: [{key_id: k0, key: not-a-pem, until: 2027-01-15T00:00:00Z}]\n", "respond.ssf.previous_keys[0].key: not a PEM block"},
		{base + "previous_keys: [{key_id: k0, key: env:TW_SSF_TEST_OLD_KEY, until: next week}]\n", "until"},
		{base + "retry: {max_attempts: 0}\n", "respond.ssf.retry"},
		{base + "timeout: 0s\n", "respond.ssf.timeout"},
		{base + "hold_limit: 0\n", "respond.ssf.hold_limit"},
		{base + "compromise: {min_severity: dire}\n", "respond.ssf.compromise.min_severity"},
		{base + "streams: [{id: s, audience: a, endpoint_url: 'https://x', status: off}]\n", "respond.ssf.streams[0].status"},
		{base + "streams: [{id: s, audience: a, endpoint_url: 'https://x'}, {id: s, audience: a, endpoint_url: 'https://x'}]\n", "respond.ssf.streams[1].id"},
		{base + "streams: [{id: s, endpoint_url: 'https://x'}]\n", "respond.ssf.streams[0].audience"},
		{strings.Replace(base, "key_id: k\n", "", 1), "respond.ssf.key_id"},
		{base + "state_file: /nonexistent-tw-dir/ssf.json\n", "respond.ssf.state_file"},
		{base + "receivers: [{audience: a, token: receiver-token-0123456789}]\n", "respond.ssf.state_file: required with receivers"},
		{strings.Replace(base, "https://tw.example", "https://tw.example/?t=1", 1), "respond.ssf.issuer: no query"},
		{strings.Replace(base, "':9470'", "nohostport", 1), "respond.ssf.listen"},
		{strings.Replace(base, "https://tw.example", "https://tw.example/", 1), "respond.ssf.issuer: https://tw.example/: ends with /"},
		{strings.Replace(base, "https://tw.example", "https://tw.example/tenant1/", 1), "respond.ssf.issuer: https://tw.example/tenant1/: ends with /"},
		{strings.Replace(base, "https://tw.example", "http://tw.example", 1), "respond.ssf.issuer: scheme \"http\", want https"},
		{strings.Replace(base, "https://tw.example", "http://tw.example", 1) + "allow_insecure_http: true\n", "respond.ssf.issuer: http only for a loopback host"},
		{base + "streams: [{id: s, audience: a, endpoint_url: 'http://siem.example/ssf'}]\n", "respond.ssf.streams[0].endpoint_url: scheme"},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &n); err != nil {
			t.Fatal(err)
		}
		var c Config
		err := yamlstrict.Decode(&n, &c)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want it to name %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "KEY-----") {
			t.Errorf("the error shows the key: %v", err)
		}
	}
}

// TestPreviousKeys: a retired key is taken as its public key (PKIX or
// PKCS#1) or as the old private key, with the same limits as the signing
// key, and until decodes as a time.
func TestPreviousKeys(t *testing.T) {
	rk, ec := keys(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pkix := func(k any) string {
		der, _ := x509.MarshalPKIXPublicKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	b, _ := pem.Decode([]byte(rk))
	rsaKey, _ := x509.ParsePKCS8PrivateKey(b.Bytes)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.(*rsa.PrivateKey).PublicKey)}))
	for _, tc := range []struct{ name, pem, alg, err string }{
		{"PKIX RSA", publicPEM(t, rk), "RS256", ""},
		{"PKIX EC", publicPEM(t, ec), "ES256", ""},
		{"PKCS#1 RSA public", pkcs1, "RS256", ""},
		{"the old private key", ec, "ES256", ""},
		{"RSA 1024", pkix(&small.PublicKey), "", "at least 2048"},
		{"P-384", pkix(&p384.PublicKey), "", "want P-256"},
		{"garbage", "-----BEGIN PUBLIC KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PUBLIC KEY-----\n", "", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, m, err := publicKey(secret.New(tc.pem))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "c2VjcmV0") {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || m.Alg() != tc.alg {
				t.Fatalf("%v, alg %v; want %s", err, m, tc.alg)
			}
			k := jwkOf(pub, m.Alg(), "old")
			if j, _ := json.Marshal(k); strings.Contains(string(j), `"d"`) || k.Kid != "old" || k.Use != "sig" {
				t.Errorf("jwk %s", j)
			}
		})
	}

	t.Setenv("TW_SSF_TEST_KEY", ec)
	t.Setenv("TW_SSF_TEST_OLD_KEY", publicPEM(t, rk))
	var n yaml.Node
	doc := "issuer: https://tw.example\nlisten: ':9470'\nsigning_key: env:TW_SSF_TEST_KEY\nkey_id: k2\n" +
		"previous_keys: [{key_id: k1, key: env:TW_SSF_TEST_OLD_KEY, until: '2027-01-15T08:30:00Z'}]\n"
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := yamlstrict.Decode(&n, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2027, 1, 15, 8, 30, 0, 0, time.UTC); len(c.PreviousKeys) != 1 || !c.PreviousKeys[0].Until.Equal(want) {
		t.Errorf("previous_keys %+v, want until %s", c.PreviousKeys, want)
	}
}
