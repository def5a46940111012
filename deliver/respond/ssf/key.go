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
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// signer signs SETs with the configured key. golang-jwt (already used for
// Snowflake's key-pair JWT) signs and verifies RS256 and ES256; the JWKS is
// a few base64url fields, built here rather than pulling in a JOSE suite.
type signer struct {
	key    crypto.Signer
	method jwt.SigningMethod
	kid    string
}

// parseKey reads a PEM private key: RSA (2048 bits or more) for RS256, EC
// P-256 for ES256. Its errors never quote the PEM.
func parseKey(pemKey secret.Secret) (*signer, error) {
	block, _ := pem.Decode([]byte(pemKey.Reveal()))
	if block == nil {
		return nil, errors.New("not a PEM block (want a PKCS#8, PKCS#1 RSA or SEC 1 EC private key)")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, errors.New("the PEM private key does not parse") // x509's text may quote bytes
	}
	k, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T key: want RSA (RS256) or EC P-256 (ES256)", key)
	}
	m, err := signingMethod(k.Public(), key)
	if err != nil {
		return nil, err
	}
	return &signer{key: k, method: m}, nil
}

// signingMethod is the JWS algorithm of a public key, and refuses the keys
// this transmitter does not sign with: RSA under 2048 bits, EC off P-256,
// anything else (named by the key as configured, of type of).
func signingMethod(pub crypto.PublicKey, of any) (jwt.SigningMethod, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: want at least 2048 (RFC 7518 §3.3)", k.N.BitLen())
		}
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on %s: want P-256 (ES256)", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256, nil
	}
	return nil, fmt.Errorf("a %T key: want RSA (RS256) or EC P-256 (ES256)", of)
}

// sign returns the compact JWS of claims, explicitly typed secevent+jwt
// (RFC 8417 §2.3, SSF 1.0 "Explicit Typing of SETs").
func (s *signer) sign(claims jwt.MapClaims) (string, error) {
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["typ"] = "secevent+jwt"
	t.Header["kid"] = s.kid
	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign SET: %w", err)
	}
	return out, nil
}

// publicKey parses the PEM of a retired key: its public key (PKIX "PUBLIC
// KEY", PKCS#1 "RSA PUBLIC KEY") or the old private key, of which only the
// public half is kept. The same key types as parseKey; errors never quote
// the PEM.
func publicKey(pemKey secret.Secret) (crypto.PublicKey, jwt.SigningMethod, error) {
	block, _ := pem.Decode([]byte(pemKey.Reveal()))
	if block == nil {
		return nil, nil, errors.New("not a PEM block (want a PUBLIC KEY, or the old private key)")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		s, err := parseKey(pemKey)
		if err != nil {
			return nil, nil, err
		}
		return s.key.Public(), s.method, nil
	}
	if err != nil {
		return nil, nil, errors.New("the PEM public key does not parse")
	}
	m, err := signingMethod(pub, pub)
	if err != nil {
		return nil, nil, err
	}
	return pub, m, nil
}

// JWK is the public half of a signing key (RFC 7517; RFC 7518 §6.2 and
// §6.3 for the EC and RSA members).
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	// RSA
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// EC
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// jwkOf is the JWK of a public key, for signatures (use sig) with alg.
func jwkOf(pub crypto.PublicKey, alg, kid string) JWK {
	b64 := base64.RawURLEncoding.EncodeToString
	k := JWK{Use: "sig", Alg: alg, Kid: kid}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		k.Kty, k.N, k.E = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		// Fixed-width coordinates (RFC 7518 §6.2.1.2): 32 bytes for P-256.
		ecdh, err := pub.ECDH()
		if err == nil {
			raw := ecdh.Bytes() // 0x04 || X || Y
			k.Kty, k.Crv, k.X, k.Y = "EC", "P-256", b64(raw[1:33]), b64(raw[33:65])
		}
	}
	return k
}

// jwks is the key set of the signing key alone: public keys only.
func (s *signer) jwks() map[string][]JWK {
	return map[string][]JWK{"keys": {jwkOf(s.key.Public(), s.method.Alg(), s.kid)}}
}

// retiredKey is a previous signing key, published until until so that
// SETs it signed still verify after a rotation.
type retiredKey struct {
	kid   string
	jwk   JWK
	until time.Time
}

// keySet is what jwks_uri publishes at now: the current key first, then
// the retired keys whose overlap has not ended (RFC 7517 §5: a JWK Set is
// the "keys" array; the kid tells the receiver which one signed a SET).
func (t *Transmitter) keySet(now time.Time) map[string][]JWK {
	set := t.signer.jwks()
	for _, r := range t.retired {
		if now.Before(r.until) {
			set["keys"] = append(set["keys"], r.jwk)
		}
	}
	return set
}

// published reports whether the JWKS lists kid at now: a SET it signed
// verifies for a receiver that fetches the JWKS.
func (t *Transmitter) published(kid string, now time.Time) bool {
	if kid == t.signer.kid {
		return true
	}
	for _, r := range t.retired {
		if r.kid == kid && now.Before(r.until) {
			return true
		}
	}
	return false
}
