package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

// redrive sends dead-lettered alerts to one sink again while `run` goes on.
// It must not open what the running process owns: with an SSF transmitter
// configured, building it would replay and rewrite the transmitter's outbox
// under the running one (whose next SETs would be lost at its restart).
func TestRedriveLeavesTheSSFStateAlone(t *testing.T) {
	b, err := embedded.Start(1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "ssf.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "ssf-streams.json")
	cfg := filepath.Join(dir, "c.yaml")
	y := "kafka: {brokers: [" + b.Addrs()[0] + "]}\n" +
		"deliver:\n  sinks:\n    - {name: archive, kind: file, config: {path: " + filepath.Join(dir, "out.jsonl") + "}}\n" +
		"respond:\n  ssf:\n    issuer: https://tw.example\n    listen: '127.0.0.1:1'\n    signing_key: file:" + keyFile + "\n    key_id: k1\n" +
		"    state_file: " + state + "\n" +
		"    streams: [{id: idp, audience: https://idp.example, endpoint_url: https://idp.example/ssf/events}]\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tokenwatch(t, "config", "check", cfg); code != 0 {
		t.Fatalf("the config does not load: %s", errOut)
	}
	code, out, errOut := tokenwatch(t, "redrive", "--config", cfg, "--sink", "archive", "--idle", "200ms")
	if code != 0 || !strings.Contains(out, "redrive archive: 0 sent") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, f := range []string{state, state + ".queue", state + ".told"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("redrive touched %s (%v)", f, err)
		}
	}
}
