// Package validate holds the checks of config values that several sections
// share: http(s) URLs and host:port addresses. Errors start with the field
// name they are given ("url: …"), the convention yamlstrict.At extends into
// a full path (deliver.sinks[0].config.url), and never echo a URL's path,
// query or user info, where tokens live.
package validate

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

func fail(field, format string, args ...any) error {
	return yamlstrict.Field(field, fmt.Errorf(format, args...))
}

// HTTPURL checks that raw is an absolute http or https URL with a host.
func HTTPURL(field, raw string) error {
	if raw == "" {
		return fail(field, "required (an http(s) URL)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail(field, "not a URL") // url.Parse's error quotes the URL
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail(field, "scheme %q, want http or https", u.Scheme)
	}
	if u.Host == "" {
		return fail(field, "%s:// URL without a host", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail(field, "port %q out of range", p)
		}
	}
	return nil
}

// HostPort checks a TCP address: host:port with a port in 1..65535; the
// host may be empty only when emptyHost (a listen address like ":9464").
func HostPort(field, addr string, emptyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fail(field, "%q: want host:port", addr)
	}
	if host == "" && !emptyHost {
		return fail(field, "%q: want host:port, the host is missing", addr)
	}
	if strings.Contains(host, "/") {
		return fail(field, "%q: want host:port, not a URL", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fail(field, "%q: port %q, want 1-65535", addr, port)
	}
	return nil
}
