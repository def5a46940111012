package delivertest

import (
	"bytes"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	ocsfOnce   sync.Once
	ocsfSchema *jsonschema.Schema
	ocsfErr    error
)

// ValidateOCSF checks that body (one JSON document) is an OCSF Detection
// Finding as schemas/testdata/ocsf_detection_finding.schema.json describes
// it.
func ValidateOCSF(t testing.TB, body []byte) {
	t.Helper()
	ocsfOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		path := filepath.Join(filepath.Dir(here), "..", "..", "schemas", "testdata", "ocsf_detection_finding.schema.json")
		c := jsonschema.NewCompiler()
		ocsfSchema, ocsfErr = c.Compile(path)
	})
	if ocsfErr != nil {
		t.Fatalf("OCSF schema: %v", ocsfErr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	if err := ocsfSchema.Validate(v); err != nil {
		t.Fatalf("not an OCSF Detection Finding: %v\n%s", err, body)
	}
}
