// Package corpus generates a seeded, labelled evaluation corpus: raw audit
// records in every connector's own vendor format (Google Reports activities
// pages, GitHub audit-log entries, Okta System Log events, Slack audit
// entries, Microsoft signIns / directoryAudits / Graph activity logs,
// Salesforce ApiEvent rows) for a benign population of integrations with
// daily and weekly rhythm and human-like noise, plus labelled attack
// scenarios modelled on public incidents.
//
// It is separate from internal/scenario, whose single-source output the demo
// depends on byte for byte. Same Options, same bytes.
//
// A corpus directory holds one gzip JSON-lines file per source and
// labels.json (the Manifest: which file is which source and tenant, and the
// labelled attacks). internal/eval scores the detectors against it.
package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Options shape the generated corpus.
type Options struct {
	Seed  uint64
	Start time.Time
	Days  int
	// Integrations is the population size across all sources, the scenario
	// victims included.
	Integrations int
}

// DefaultOptions is the corpus `make eval` scores: ~300 integrations over six
// sources and 42 days (30+ days of history after a week of learning, and
// room for a 30-day dormancy).
func DefaultOptions() Options {
	return Options{Seed: 20260901, Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), Days: 42, Integrations: 300}
}

// Sources, in the order files are written.
var Sources = []string{"google_workspace", "github", "okta", "slack", "microsoft", "salesforce"}

// LabelsFile is the manifest's name in a corpus directory.
const LabelsFile = "labels.json"

// FileName is the raw file of a source in a corpus directory.
func FileName(source string) string { return source + ".jsonl.gz" }

// Label is one injected attack: where it happened, when, and which detectors
// should catch it.
type Label struct {
	Scenario      string    `json:"scenario"`
	Incident      string    `json:"incident"` // the public incident it is modelled on
	Source        string    `json:"source"`
	Tenant        string    `json:"tenant"`
	IntegrationID string    `json:"integration_id"`
	Start         time.Time `json:"start"` // first attacker event
	End           time.Time `json:"end"`   // last attacker event
	Expected      []string  `json:"expected_detectors"`
	Events        int       `json:"events"`
}

// File names one raw file and how to normalize it: the tenant label passed
// to ingest.NewNormalizer (records that carry their own tenant — Google
// customerId, GitHub org — keep it).
type File struct {
	Source  string `json:"source"`
	Tenant  string `json:"tenant"`
	Path    string `json:"path"` // relative to the corpus directory
	Records int    `json:"records"`
}

// Manifest is labels.json.
type Manifest struct {
	Seed         uint64    `json:"seed"`
	Start        time.Time `json:"start"`
	Days         int       `json:"days"`
	Integrations int       `json:"integrations"`
	Files        []File    `json:"files"`
	Labels       []Label   `json:"labels"`
}

// Corpus is a generated corpus in memory.
type Corpus struct {
	Manifest Manifest
	// Data holds each File's gzip bytes, by File.Path.
	Data map[string][]byte
}

// Generate builds the corpus for opt.
func Generate(opt Options) (*Corpus, error) {
	if opt.Days < 40 {
		return nil, fmt.Errorf("corpus: days %d: need at least 40 (a week of learning and a 30-day dormancy)", opt.Days)
	}
	if opt.Integrations < 40 {
		return nil, fmt.Errorf("corpus: integrations %d: need at least 40", opt.Integrations)
	}
	g := newGen(opt)
	g.population()
	g.benign()
	g.attacks()
	c := &Corpus{Manifest: Manifest{Seed: opt.Seed, Start: opt.Start, Days: opt.Days, Integrations: len(g.ints)}, Data: map[string][]byte{}}
	for _, src := range Sources {
		lines, n, err := g.render(src)
		if err != nil {
			return nil, err
		}
		gz, err := gzipBytes(lines)
		if err != nil {
			return nil, err
		}
		f := File{Source: src, Tenant: sourceTenant[src], Path: FileName(src), Records: n}
		c.Manifest.Files = append(c.Manifest.Files, f)
		c.Data[f.Path] = gz
	}
	sort.SliceStable(g.labels, func(i, j int) bool { return g.labels[i].Start.Before(g.labels[j].Start) })
	c.Manifest.Labels = g.labels
	return c, nil
}

// Write generates the corpus for opt into dir (created if missing).
func Write(dir string, opt Options) (*Manifest, error) {
	c, err := Generate(opt)
	if err != nil {
		return nil, err
	}
	return &c.Manifest, c.WriteDir(dir)
}

// WriteDir writes the files and labels.json into dir.
func (c *Corpus) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range c.Manifest.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Path), c.Data[f.Path], 0o644); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(&c.Manifest, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, LabelsFile), append(b, '\n'), 0o644)
}

// ReadManifest reads dir/labels.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, LabelsFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, LabelsFile), err)
	}
	for i, f := range m.Files {
		if f.Source == "" || f.Path == "" {
			return nil, fmt.Errorf("%s: files[%d] needs a source and a path", LabelsFile, i)
		}
	}
	return &m, nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
