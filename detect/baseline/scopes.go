package baseline

import (
	"errors"
	"strings"
)

// DefaultSensitiveScopes are substrings of scope names that grant mail, files,
// admin, code-write or offline access: the grants that make a stolen token a
// breach. Detectors raise severity when a scope matches one.
var DefaultSensitiveScopes = []string{
	"mail", "drive", "admin", "full_access", "directory", "files.readwrite",
	"repo", "write", "delete", "sudo", "refresh_token", "offline_access", "cloud-platform",
}

// SensitiveScopes matches scope names against lowercased substrings.
type SensitiveScopes []string

// NewSensitiveScopes validates and lowercases the configured substrings.
func NewSensitiveScopes(subs []string) (SensitiveScopes, error) {
	out := make(SensitiveScopes, 0, len(subs))
	for _, s := range subs {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			return nil, errors.New("sensitive_scopes: an empty entry would match every scope")
		}
		out = append(out, s)
	}
	return out, nil
}

// Match returns the substring scope matches, or "".
func (ss SensitiveScopes) Match(scope string) string {
	l := strings.ToLower(scope)
	for _, s := range ss {
		if strings.Contains(l, s) {
			return s
		}
	}
	return ""
}

// First returns the first scope of list that matches, and the substring.
func (ss SensitiveScopes) First(list []string) (scope, match string) {
	for _, sc := range list {
		if m := ss.Match(sc); m != "" {
			return sc, m
		}
	}
	return "", ""
}
