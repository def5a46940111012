package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New("hunter2-token")
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(struct{ S Secret }{s})
	y, _ := yaml.Marshal(struct{ S Secret }{s})
	for name, out := range map[string]string{"String": s.String(), "%v": fmt.Sprintf("%v", s), "%#v": fmt.Sprintf("%#v", s),
		"slog": logs.String(), "json": string(j), "yaml": string(y)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s shows the secret: %s", name, out)
		}
	}
	if s.Reveal() != "hunter2-token" {
		t.Fatal("Reveal lost the value")
	}
	if got := Redact("GET https://x/hook?t=hunter2-token failed", s); strings.Contains(got, "hunter2") {
		t.Errorf("Redact: %s", got)
	}
}

func TestSecretsResolveFromEnvAndFiles(t *testing.T) {
	t.Setenv("TW_TEST_SECRET", "from-env")
	f := filepath.Join(t.TempDir(), "s")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	var c struct {
		A, B, C Secret
	}
	if err := yaml.Unmarshal([]byte("a: env:TW_TEST_SECRET\nb: file:"+f+"\nc: literal\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.A.Reveal() != "from-env" || c.B.Reveal() != "from-file" || c.C.Reveal() != "literal" {
		t.Fatalf("%q %q %q", c.A.Reveal(), c.B.Reveal(), c.C.Reveal())
	}
	err := yaml.Unmarshal([]byte("a: env:TW_SURELY_UNSET_VAR\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "TW_SURELY_UNSET_VAR") {
		t.Fatalf("unset variable: %v", err)
	}
}
