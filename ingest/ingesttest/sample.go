package ingesttest

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
)

// Sample is a connector's sample.yaml. Every sample is one entry of the
// config file's ingest.pollers list, under a `pollers:` key, as an operator
// pastes it into the `ingest:` section:
//
//	pollers:
//	  - source: okta
//	    tenant: acme
//	    config:
//	      domain: example.okta.com
//	      token: env:OKTA_API_TOKEN
//
// ingest/all's meta-test decodes the whole entry as the config does
// (poll.Config) and builds the source from it; connector tests take the
// connector's own part from here.
type Sample struct {
	Source, Tenant string
	// Config is the entry's `config:` node, the connector's own keys.
	Config yaml.Node
}

// ParseSample reads the single poller entry of a sample.yaml.
func ParseSample(t testing.TB, doc []byte) Sample {
	t.Helper()
	var s struct {
		Pollers []struct {
			Source string    `yaml:"source"`
			Tenant string    `yaml:"tenant"`
			Config yaml.Node `yaml:"config"`
		} `yaml:"pollers"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(doc)).Decode(&s); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(s.Pollers) != 1 {
		t.Fatalf("sample.yaml: %d entries under pollers:, want 1", len(s.Pollers))
	}
	p := s.Pollers[0]
	return Sample{Source: p.Source, Tenant: p.Tenant, Config: p.Config}
}

// Decode fills a connector's config struct from the sample's `config:` node,
// rejecting keys the struct does not have: the decode a Factory takes.
func (s Sample) Decode(v any) error { return extensiontest.StrictDecode(&s.Config)(v) }
