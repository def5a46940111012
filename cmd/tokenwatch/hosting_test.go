package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/detect/geo/hosting"
)

// The sources in the shape their publishers document them.
const (
	awsRangesJSON = `{
  "syncToken": "1764633790",
  "createDate": "2026-12-01-23-03-10",
  "prefixes": [
    {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON", "network_border_group": "ap-northeast-2"},
    {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "S3", "network_border_group": "ap-northeast-2"},
    {"ip_prefix": "52.0.0.0/15", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"}
  ],
  "ipv6_prefixes": [
    {"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"}
  ]
}`
	gcpCloudJSON = `{
  "syncToken": "1764630000000",
  "creationTime": "2026-12-01T15:00:00.000000",
  "prefixes": [
    {"ipv4Prefix": "34.1.208.0/20", "service": "Google Cloud", "scope": "africa-south1"},
    {"ipv6Prefix": "2600:1900:8000::/44", "service": "Google Cloud", "scope": "us-east4"}
  ]
}`
	torBulkExitList = "185.220.101.1\n185.220.101.2\n2a0b:f4c2::1\n"
	asnListTXT      = "# datacenter ASNs\nAS200019 # ALEXHOST SRL\n3223 # Voxility LLP\nAS20473\n"
)

func rangesServer(t *testing.T, bodies map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func refreshArgs(srv *httptest.Server, out string, extra ...string) []string {
	return append([]string{"refresh", "--out", out,
		"--aws", srv.URL + "/ip-ranges.json",
		"--gcp", srv.URL + "/cloud.json",
		"--tor", srv.URL + "/torbulkexitlist"}, extra...)
}

func TestHostingRefreshWritesRangesFile(t *testing.T) {
	srv := rangesServer(t, map[string]string{
		"/ip-ranges.json": awsRangesJSON, "/cloud.json": gcpCloudJSON,
		"/torbulkexitlist": torBulkExitList, "/ASN.txt": asnListTXT,
	})
	out := filepath.Join(t.TempDir(), "ranges.tsv")
	var stdout, stderr bytes.Buffer
	if err := runHosting(context.Background(), refreshArgs(srv, out, "--asn-list", srv.URL+"/ASN.txt"), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"3.5.140.0/22\tcloud\tAWS\n", "52.0.0.0/15\tcloud\tAWS\n", "2600:1f18::/33\tcloud\tAWS\n",
		"34.1.208.0/20\tcloud\tGoogle Cloud\n", "2600:1900:8000::/44\tcloud\tGoogle Cloud\n",
		"185.220.101.1/32\ttor\tTor exit\n", "2a0b:f4c2::1/128\ttor\tTor exit\n",
		"AS200019\thosting\tALEXHOST SRL\n", "AS3223\thosting\tVoxility LLP\n", "AS20473\thosting\t\n",
		"syncToken 1764633790, createDate 2026-12-01-23-03-10",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("file lacks %q:\n%s", want, b)
		}
	}
	if n := strings.Count(string(b), "3.5.140.0/22\t"); n != 1 {
		t.Errorf("3.5.140.0/22 written %d times, want once", n)
	}
	r, err := hosting.ParseRanges(bytes.NewReader(b), out)
	if err != nil {
		t.Fatal(err)
	}
	for ip, class := range map[string]string{"3.5.141.9": "cloud", "2600:1f18::1": "cloud", "34.1.220.1": "cloud", "185.220.101.2": "tor"} {
		if l, ok := r.LookupIP(netip.MustParseAddr(ip)); !ok || l.Class != class {
			t.Errorf("%s = %+v %v, want %s", ip, l, ok, class)
		}
	}
	if l, ok := r.LookupASN(200019); !ok || l.Class != "hosting" {
		t.Errorf("AS200019 = %+v %v", l, ok)
	}
	if !strings.Contains(stdout.String(), "aws 4") || !strings.Contains(stdout.String(), "tor 3") {
		t.Errorf("stdout = %q", stdout.String())
	}
	// No temporary file is left beside it.
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("directory holds %d files, want 1", len(ents))
	}
}

func TestHostingRefreshMalformedSourceWritesNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		bodies map[string]string
		want   string
	}{
		"aws not json":   {map[string]string{"/ip-ranges.json": "<html>rate limited</html>", "/cloud.json": gcpCloudJSON, "/torbulkexitlist": torBulkExitList}, "not AWS ip-ranges.json"},
		"aws bad prefix": {map[string]string{"/ip-ranges.json": `{"prefixes":[{"ip_prefix":"3.5.140.0/33"}]}`, "/cloud.json": gcpCloudJSON, "/torbulkexitlist": torBulkExitList}, "prefixes[0].ip_prefix"},
		"gcp bad prefix": {map[string]string{"/ip-ranges.json": awsRangesJSON, "/cloud.json": `{"prefixes":[{"ipv4Prefix":"nope"}]}`, "/torbulkexitlist": torBulkExitList}, "gcp"},
		"tor html":       {map[string]string{"/ip-ranges.json": awsRangesJSON, "/cloud.json": gcpCloudJSON, "/torbulkexitlist": "185.220.101.1\n<html>\n"}, "line 2: not an IP address"},
		"tor missing":    {map[string]string{"/ip-ranges.json": awsRangesJSON, "/cloud.json": gcpCloudJSON}, "HTTP 404"},
		"tor empty":      {map[string]string{"/ip-ranges.json": awsRangesJSON, "/cloud.json": gcpCloudJSON, "/torbulkexitlist": ""}, "no entries"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := rangesServer(t, tc.bodies)
			dir := t.TempDir()
			out := filepath.Join(dir, "ranges.tsv")
			if err := os.WriteFile(out, []byte("AS1\thosting\told\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := runHosting(context.Background(), refreshArgs(srv, out), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if b, _ := os.ReadFile(out); string(b) != "AS1\thosting\told\n" {
				t.Errorf("the old file was touched: %q", b)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("directory holds %d files, want the old one only", len(ents))
			}
		})
	}
}

func TestHostingRefreshASNListMalformed(t *testing.T) {
	srv := rangesServer(t, map[string]string{"/ASN.txt": "AS200019\nALEXHOST\n"})
	out := filepath.Join(t.TempDir(), "ranges.tsv")
	err := runHosting(context.Background(), []string{"refresh", "--out", out, "--aws", "", "--gcp", "", "--tor", "", "--asn-list", srv.URL + "/ASN.txt"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "line 2: not an AS number") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}
}

func TestHostingRefreshUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"fetch"}, {"refresh"}, {"refresh", "--out", "x", "--asn-class", "residential"}} {
		var stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"hosting"}, args...), &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("hosting %v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}
