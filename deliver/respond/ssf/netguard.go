package ssf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// secureURL checks that raw uses https (RFC 8935 pushes over TLS; SSF wants
// https for the issuer and every endpoint). http is allowed only for a
// loopback host, and only with allow_insecure_http (tests, a laptop).
func secureURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowInsecure && loopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http" && allowInsecure:
		return errors.New("http only for a loopback host (allow_insecure_http); want https")
	}
	return fmt.Errorf("scheme %q, want https (allow_insecure_http permits http to loopback, for tests)", u.Scheme)
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// cgnat is RFC 6598 shared address space, internal like RFC 1918's.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// forbidden reports why a receiver-chosen endpoint may not be at a: not on
// the transmitter's own networks (cloud metadata at 169.254.169.254, the
// pod network, the host itself), "" when it may. Loopback passes only with
// allow_insecure_http.
func forbidden(a netip.Addr, allowLoopback bool) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback() && allowLoopback:
		return ""
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate(), cgnat.Contains(a):
		return "private"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	return ""
}

// checkEndpoint is what a receiver may set as its push endpoint through the
// API: https (see secureURL), and a host that resolves only to addresses
// forbidden allows. The dialer checks again on every connection
// (guardedClient), so a name that later resolves elsewhere (DNS rebinding)
// is refused there.
func (t *Transmitter) checkEndpoint(ctx context.Context, raw string) error {
	if err := secureURL(raw, t.cfg.AllowInsecureHTTP); err != nil {
		return fmt.Errorf("delivery.endpoint_url: %w", err)
	}
	u, _ := url.Parse(raw)
	host := u.Hostname()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("delivery.endpoint_url: host %q does not resolve", host)
	}
	for _, a := range addrs {
		if why := forbidden(a, t.cfg.AllowInsecureHTTP); why != "" {
			return fmt.Errorf("delivery.endpoint_url: host %q is at a %s address (%s): not a receiver's", host, why, a)
		}
	}
	return nil
}

// guardedClient is the client of streams created through the API: its
// dialer refuses the addresses forbidden names at connect time, after DNS,
// and it uses no proxy (the proxy's address would be the one checked).
func guardedClient(timeout time.Duration, allowLoopback bool) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("ssf dial %s: %w", address, err)
			}
			a, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("ssf dial %s: not an address", address)
			}
			if why := forbidden(a, allowLoopback); why != "" {
				return fmt.Errorf("ssf dial %s: %w (%s)", address, errForbiddenAddr, why)
			}
			return nil
		}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy, tr.DialContext = nil, d.DialContext
	return &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: noRedirect}
}

var errForbiddenAddr = errors.New("a receiver's endpoint may not be on the transmitter's own networks")

// noRedirect answers a redirect as the final 3xx it is (the receiver's
// misconfiguration; a 302 would turn the POST into a GET).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
