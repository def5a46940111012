// Package file appends alerts and incidents as JSON lines to a local file:
// tokenwatch's JSON or OCSF Detection Finding (class 2004), one object per
// line, for a log shipper (Fluent Bit, Vector, the Splunk forwarder) or an
// OCSF data lake loader to pick up. No rotation: the file is opened in
// append mode on each write batch, so logrotate's create or copytruncate
// both work.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind in config.
const Kind = "file"

func init() {
	deliver.Register(Kind, func(name string, decode func(any) error) (deliver.Sink, error) {
		cfg := DefaultConfig()
		if err := decode(&cfg); err != nil {
			return nil, fmt.Errorf("file %s: %w", name, err)
		}
		return New(name, cfg)
	})
}

// Config is the sink's YAML config.
type Config struct {
	// Path is the file to append to; its directory must exist.
	Path string `yaml:"path"`
	// Format is "json" or "ocsf".
	Format string `yaml:"format"`
	// Mode is the permission of a file the sink creates.
	Mode os.FileMode `yaml:"mode"`
	// Fsync makes each write durable before it counts as delivered.
	Fsync bool `yaml:"fsync"`
	// Archive says nobody is paged from this file: it also records shadow
	// alerts (detectors on trial), which every other sink skips. Leave it
	// off when a shipper forwards the file to something that alerts.
	Archive bool `yaml:"archive"`
}

// DefaultConfig: JSON, mode 0600, fsync on.
func DefaultConfig() Config { return Config{Format: deliver.FormatJSON, Mode: 0o600, Fsync: true} }

// Validate checks cfg.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("path: required")
	}
	if err := deliver.ValidateFormat(c.Format); err != nil {
		return err
	}
	if c.Mode == 0 || c.Mode&^0o777 != 0 {
		return fmt.Errorf("mode %o: want permission bits like 0600", c.Mode)
	}
	return nil
}

// Line is one JSON line: the kind ("alert" or "incident") and the record,
// so one file can hold both. In OCSF format the line is the finding itself
// (class_uid and activity_id say what it is).
type Line struct {
	Kind     string            `json:"kind"`
	Alert    *schemas.Alert    `json:"alert,omitempty"`
	Incident *schemas.Incident `json:"incident,omitempty"`
}

// Sink appends to one file.
type Sink struct {
	name string
	cfg  Config
	mu   sync.Mutex
}

var _ deliver.IncidentSink = (*Sink)(nil)

// New validates cfg; the file is not touched until the first write.
func New(name string, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("file %s: %w", name, err)
	}
	return &Sink{name: name, cfg: cfg}, nil
}

// Name implements deliver.Sink.
func (s *Sink) Name() string { return s.name }

// Idempotent implements deliver.Idempotent: lines carry ids, so the runtime
// sends whole batches (a retry may repeat lines of a batch that failed half
// way; readers dedup on the id).
func (s *Sink) Idempotent() bool { return true }

// Archives implements deliver.Archiver: an archive file records shadow
// alerts too.
func (s *Sink) Archives() bool { return s.cfg.Archive }

// Send appends one line per alert, in one write.
func (s *Sink) Send(ctx context.Context, alerts []schemas.Alert) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i := range alerts {
		var v any = Line{Kind: "alert", Alert: &alerts[i]}
		if s.cfg.Format == deliver.FormatOCSF {
			v = schemas.AlertOCSF(&alerts[i])
		}
		if err := enc.Encode(v); err != nil {
			return &deliver.PermanentError{Err: fmt.Errorf("file %s: encode alert %s: %w", s.name, alerts[i].ID, err)}
		}
	}
	return s.append(b.Bytes())
}

// SendIncident implements deliver.IncidentSink: one line per incident
// version (readers keep the highest version of each id).
func (s *Sink) SendIncident(ctx context.Context, inc schemas.Incident, _ deliver.Receipt) (deliver.Receipt, error) {
	var v any = Line{Kind: "incident", Incident: &inc}
	if s.cfg.Format == deliver.FormatOCSF {
		v = schemas.IncidentOCSF(&inc)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", &deliver.PermanentError{Err: fmt.Errorf("file %s: encode incident %s: %w", s.name, inc.ID, err)}
	}
	return "", s.append(b.Bytes())
}

func (s *Sink) append(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, s.cfg.Mode)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &deliver.PermanentError{Err: fmt.Errorf("file %s: directory %s does not exist", s.name, filepath.Dir(s.cfg.Path))}
		}
		return fmt.Errorf("file %s: %w", s.name, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("file %s: write: %w", s.name, err)
	}
	if s.cfg.Fsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("file %s: fsync: %w", s.name, err)
		}
	}
	return f.Close()
}
