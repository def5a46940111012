package validate

import (
	"strings"
	"testing"
)

func TestHTTPURL(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"https://hooks.example/x?token=s3cret", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"", "url: required"},
		{"ftp://x", `url: scheme "ftp", want http or https`},
		{"hooks.example/x", `url: scheme ""`},
		{"https:///path", "without a host"},
		{"https://h:99999/", "out of range"},
		{"http://[::1", "url: not a URL"},
	} {
		err := HTTPURL("url", tc.raw)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.raw, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error echoes the URL: %v", tc.raw, err)
		}
	}
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		addr      string
		emptyHost bool
		want      string
	}{
		{"kafka:9092", false, ""},
		{"[::1]:9000", false, ""},
		{":9464", true, ""},
		{":9464", false, "host is missing"},
		{"kafka", false, "want host:port"},
		{"kafka:0", false, "want 1-65535"},
		{"kafka:http", false, "want 1-65535"},
		{"tcp://kafka:9092", false, "want host:port"},
	} {
		err := HostPort("brokers[0]", tc.addr, tc.emptyHost)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.addr, err, tc.want)
		}
	}
}
