// Package secret owns how tokenwatch holds credentials: a Secret never prints,
// logs or marshals its value, and config can name where to read it from
// instead of carrying it ("env:NAME", "file:/path").
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secret is a credential value. Use Reveal only where the value is sent.
type Secret struct{ v string }

// New wraps a literal value.
func New(v string) Secret { return Secret{v} }

const redacted = "[REDACTED]"

// Reveal returns the value, for the one place that needs it (an auth header).
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no secret was configured.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalYAML() (any, error)    { return redacted, nil }

// UnmarshalYAML reads a literal, "env:NAME" or "file:PATH".
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var raw string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	v, err := Resolve(raw)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	s.v = v
	return nil
}

// Resolve turns a reference into its value: "env:NAME" reads the environment,
// "file:PATH" reads a file (trailing newline trimmed); anything else is literal.
func Resolve(ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("secret from environment variable %s: not set (export it or use file:PATH)", name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is not secret; the content is never echoed.
			return "", fmt.Errorf("secret from file %s: %w", path, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return ref, nil
}

// Redact replaces every occurrence of the secrets' values in s, for error
// messages that may echo a URL or header.
func Redact(s string, secrets ...Secret) string {
	for _, sec := range secrets {
		if len(sec.v) >= 4 {
			s = strings.ReplaceAll(s, sec.v, redacted)
		}
	}
	return s
}
