package ssf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// publicPEM is the PKIX "PUBLIC KEY" PEM of a PKCS#8 private key PEM: what
// an operator keeps of a retired key.
func publicPEM(t *testing.T, privPEM string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(privPEM))
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// jwkPublic is a receiver reading one JWK of the set.
func jwkPublic(k JWK) (any, error) {
	dec := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		return new(big.Int).SetBytes(b), err
	}
	switch k.Kty {
	case "RSA":
		n, err1 := dec(k.N)
		e, err2 := dec(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		x, err1 := dec(k.X)
		y, err2 := dec(k.Y)
		if err := errors.Join(err1, err2); err != nil || k.Crv != "P-256" {
			return nil, fmt.Errorf("EC key %q on %q: %v", k.Kid, k.Crv, err)
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
	}
	return nil, fmt.Errorf("kty %q", k.Kty)
}

// verifyByJWKS verifies a SET as a receiver does after a rotation: the key
// is the JWKS entry its header's kid names, used with the alg that entry
// states (never the header's alone); a kid the JWKS does not list fails.
func verifyByJWKS(set string, jwks map[string][]JWK, iss string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	var alg string
	_, err := jwt.ParseWithClaims(set, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range jwks["keys"] {
			if k.Kid == kid {
				if k.Use != "sig" {
					return nil, fmt.Errorf("jwk %s: use %q", kid, k.Use)
				}
				if tok.Method.Alg() != k.Alg {
					return nil, fmt.Errorf("SET alg %s, jwk %s is %s", tok.Method.Alg(), kid, k.Alg)
				}
				alg = k.Alg
				return jwkPublic(k)
			}
		}
		return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
	}, jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithIssuer(iss), jwt.WithAudience(audience))
	if err != nil {
		return nil, err
	}
	if alg == "" {
		return nil, errors.New("no key used")
	}
	return claims, nil
}

func kids(set map[string][]JWK) string {
	var out []string
	for _, k := range set["keys"] {
		out = append(out, k.Kid+"/"+k.Alg+"/"+k.Use)
	}
	return strings.Join(out, ",")
}

// TestKeyRotation plays a receiver across a rotation from an RSA key (k1)
// to an EC key (k2) with k1 kept for an overlap: SETs queued before the
// rotation are sent as they were signed and verify with k1 from the JWKS,
// SETs signed after verify with k2; once the overlap ends the JWKS lists k2
// alone, a k1 SET no longer verifies, and the one still queued is re-signed
// with k2 (same jti) before it is sent.
func TestKeyRotation(t *testing.T) {
	rsaKey, ecKey := keys(t)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	rc := newReceiver(t, 202, 401) // r-1 taken, r-2 refused: the stream is held
	edit := durable(t, nil)

	a := newTransmitter(t, rsaKey, func(c *Config) { edit(c); c.KeyID = "k1" })
	a.tr.Now = now
	id := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	setStatus(t, a, id, StatusPaused)
	revoke(t, a, "r-1")
	revoke(t, a, "r-2")
	old := queueOf(a, id)
	if len(old) != 2 {
		t.Fatalf("%d SETs queued before the rotation, want 2", len(old))
	}
	a.stop()

	until := now().Add(time.Hour)
	b := newTransmitter(t, ecKey, func(c *Config) {
		edit(c)
		c.KeyID = "k2"
		c.PreviousKeys = []PreviousKey{{KeyID: "k1", Key: secret.New(publicPEM(t, rsaKey)), Until: until}}
	})
	b.tr.Now = now
	var during map[string][]JWK
	getJSON(t, b.srv.URL+PathJWKS, &during)
	if got := kids(during); got != "k2/ES256/sig,k1/RS256/sig" {
		t.Fatalf("JWKS during the overlap %s, want the current key then the previous", got)
	}
	for i, p := range queueOf(b, id) {
		if p.set != old[i].set {
			t.Errorf("queued SET %d changed on load although its key is still published", i)
		}
	}

	setStatus(t, b, id, StatusEnabled)
	got := rc.wait(2)
	if got[0].body != old[0].set {
		t.Error("the SET signed before the rotation was not sent as it was signed")
	}
	c, err := verifyByJWKS(got[0].body, during, a.srv.URL) // each start has its own test server: issuer
	if err != nil || headerKid(t, got[0].body) != "k1" {
		t.Fatalf("SET signed before the rotation: %v (kid %s)", err, headerKid(t, got[0].body))
	}
	if c["jti"] != jtiOf(t, old[0].set) {
		t.Errorf("jti %v", c["jti"])
	}
	waitGauge(b.m, id, 1) // r-2 refused: held

	revoke(t, b, "r-3") // signed after the rotation, queued behind r-2
	q := queueOf(b, id)
	if len(q) != 2 || headerKid(t, q[1].set) != "k2" {
		t.Fatalf("queue %d, want r-2 then r-3 signed with k2", len(q))
	}
	after := q[1].set
	if _, err := verifyByJWKS(after, during, b.srv.URL); err != nil {
		t.Errorf("SET signed after the rotation: %v", err)
	}

	// The overlap ends: k1 leaves the JWKS.
	clock.Add(int64(2 * time.Hour))
	var ended map[string][]JWK
	getJSON(t, b.srv.URL+PathJWKS, &ended)
	if got := kids(ended); got != "k2/ES256/sig" {
		t.Fatalf("JWKS after the overlap %s, want k2 alone", got)
	}
	if _, err := verifyByJWKS(old[1].set, ended, a.srv.URL); err == nil || !strings.Contains(err.Error(), `kid "k1" is not in the JWKS`) {
		t.Errorf("a SET signed with a key no longer listed: err %v, want it refused", err)
	}

	setStatus(t, b, id, StatusEnabled) // the receiver lets the stream go on
	got = rc.wait(4)
	resigned, err := verifyByJWKS(got[2].body, ended, a.srv.URL)
	if err != nil || headerKid(t, got[2].body) != "k2" {
		t.Fatalf("r-2 after the overlap: %v (kid %s), want re-signed with k2", err, headerKid(t, got[2].body))
	}
	if resigned["jti"] != jtiOf(t, old[1].set) || resigned["iat"] != float64(now().Unix()) {
		t.Errorf("re-signed r-2 jti %v iat %v: want the same jti, iat when re-signed", resigned["jti"], resigned["iat"])
	}
	// Every other claim as it was signed (events, sub_id, toe, txn, aud …).
	was := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(old[1].set, was); err != nil {
		t.Fatal(err)
	}
	delete(was, "iat")
	delete(resigned, "iat")
	if !reflect.DeepEqual(map[string]any(was), map[string]any(resigned)) {
		t.Errorf("re-signing changed claims other than iat:\n was %v\n now %v", was, resigned)
	}
	if got[3].body != after {
		t.Error("the SET signed with the current key was not sent as it was signed")
	}
	if _, err := verifyByJWKS(got[3].body, ended, b.srv.URL); err != nil {
		t.Errorf("r-3: %v", err)
	}
	for _, s := range []string{strings.Split(rsaKey, "\n")[1], strings.Split(publicPEM(t, rsaKey), "\n")[1], strings.Split(ecKey, "\n")[1]} {
		if strings.Contains(b.logs.String(), s) {
			t.Errorf("the logs show key material %q", s)
		}
	}
}
