package deliver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfig is the TLS block sinks that talk to self-hosted receivers (Splunk
// HEC, syslog) accept. The zero value verifies against the system roots.
type TLSConfig struct {
	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked in the receiver's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks: for lab setups only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Build reads the CA file (no network) and returns the *tls.Config.
func (c TLSConfig) Build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, documented as lab-only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
