package ssf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// savedStream is what state_file keeps of a stream: all of a stream created
// through the API; for a configured one only what the API may change (its
// status and subjects), the rest coming from the config.
type savedStream struct {
	ID                  string   `json:"stream_id"`
	Aud                 string   `json:"aud"`
	Static              bool     `json:"static,omitempty"`
	Endpoint            string   `json:"endpoint_url,omitempty"`
	AuthorizationHeader string   `json:"authorization_header,omitempty"`
	EventsRequested     []string `json:"events_requested,omitempty"`
	Description         string   `json:"description,omitempty"`
	Status              string   `json:"status"`
	Reason              string   `json:"reason,omitempty"`
	// ConfigStatus is a configured stream's streams[].status when Status
	// was saved: a changed config status wins over the saved one.
	ConfigStatus string   `json:"config_status,omitempty"`
	Added        []string `json:"added,omitempty"`
	Removed      []string `json:"removed,omitempty"`
	// Method is the delivery method; empty (a file from before poll) is push.
	Method string `json:"delivery_method,omitempty"`
}

// save writes the streams to state_file (0600: it holds the receivers'
// authorization headers), through a temporary file and a rename so a crash
// leaves the old state or the new. A failure is logged: the streams go on
// in memory.
func (t *Transmitter) save() {
	if t.cfg.StateFile == "" {
		return
	}
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	var out []savedStream
	for _, s := range t.list() {
		s.mu.Lock()
		v := savedStream{ID: s.id, Aud: s.aud, Static: s.static, Status: s.status, Reason: s.reason, Added: s.added.keys(), Removed: s.removed.keys()}
		if s.static {
			v.ConfigStatus = s.configStatus
		} else {
			v.Method, v.Endpoint, v.AuthorizationHeader, v.EventsRequested, v.Description = s.deliveryMethod(), s.endpoint, s.auth.Reveal(), s.requested, s.description
		}
		s.mu.Unlock()
		out = append(out, v)
	}
	if err := writeState(t.cfg.StateFile, map[string]any{"version": stateVersion, "streams": out}); err != nil {
		t.log.Warn("SSF streams not saved; they go on in memory", "state_file", t.cfg.StateFile, "err", err)
	}
}

// toldFile is where what was told of incidents is kept: beside state_file,
// not in it, so a stream change does not rewrite up to seenIncidents
// entries, nor an incident the streams.
func (t *Transmitter) toldFile() string { return t.cfg.StateFile + ".told" }

// saveTold writes what was told of incidents (the flusher calls it).
func (t *Transmitter) saveTold() {
	t.toldMu.Lock()
	defer t.toldMu.Unlock()
	if err := writeState(t.toldFile(), map[string]any{"told": t.toldNow()}); err != nil {
		t.log.Warn("SSF incident levels not saved; a restart may repeat a level without previous_level", "file", t.toldFile(), "err", err)
	}
}

// stateVersion 2: events_requested empty means none (before: all).
const stateVersion = 2

// savedTold is what receivers were told of one incident and integration.
type savedTold struct {
	Incident    string `json:"incident"`
	Integration string `json:"integration"`
	Level       string `json:"level,omitempty"`
	Compromised bool   `json:"compromised,omitempty"`
}

// toldNow is seen, oldest first (so a load keeps the recency).
func (t *Transmitter) toldNow() []savedTold {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]savedTold, 0, t.seen.Len())
	for _, k := range t.seen.Keys() {
		v, ok := t.seen.Peek(k)
		inc, integ, _ := strings.Cut(k, "\x00")
		if ok {
			out = append(out, savedTold{Incident: inc, Integration: integ, Level: v.level, Compromised: v.compromised})
		}
	}
	return out
}

func writeState(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ssf-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadTold restores what was told of incidents; a missing file is none.
func (t *Transmitter) loadTold() error {
	b, err := os.ReadFile(t.toldFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("respond.ssf.state_file: %w", err)
	}
	var st struct {
		Told []savedTold `json:"told"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("respond.ssf.state_file: %s: not the transmitter's state: %w", t.toldFile(), err)
	}
	for _, v := range st.Told {
		t.seen.Add(v.Incident+"\x00"+v.Integration, told{level: v.Level, compromised: v.Compromised})
	}
	return nil
}

// load restores the streams of state_file: the ones created through the
// API, and the status and subjects of configured ones still configured. A
// missing file is a first start.
func (t *Transmitter) load() error {
	if t.cfg.StateFile == "" {
		return nil
	}
	if err := t.loadTold(); err != nil {
		return err
	}
	b, err := os.ReadFile(t.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("respond.ssf.state_file: %w", err)
	}
	var st struct {
		Version int           `json:"version"`
		Streams []savedStream `json:"streams"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("respond.ssf.state_file %s: not the transmitter's state: %w", t.cfg.StateFile, err)
	}
	receivers := map[string]bool{}
	for _, r := range t.cfg.Receivers {
		receivers[r.Audience] = true
	}
	for _, v := range st.Streams {
		s := t.streams[v.ID]
		switch {
		case v.Static && (s == nil || !s.static):
			continue // no longer configured
		case v.Static && s.aud != v.Aud:
			t.log.Warn("SSF state of a configured stream dropped: its audience changed", "stream_id", v.ID, "was", v.Aud, "now", s.aud)
			continue
		case !v.Static && s != nil:
			t.log.Warn("SSF stream in state_file dropped: its id is now a configured stream's", "stream_id", v.ID)
			continue
		case !v.Static && !receivers[v.Aud]:
			// Its receiver is gone from the config: nobody may manage
			// it, so nothing may be sent on it.
			t.log.Warn("SSF stream in state_file dropped: its audience is no longer a configured receiver", "stream_id", v.ID, "aud", v.Aud)
			continue
		case !v.Static:
			s = newStream(v.ID, v.Aud, false)
			s.endpoint, s.auth, s.requested, s.description = v.Endpoint, secret.New(v.AuthorizationHeader), v.EventsRequested, v.Description
			switch v.Method {
			case "", DeliveryPush:
				s.method = DeliveryPush
			case DeliveryPoll:
				s.method = DeliveryPoll
			default:
				return fmt.Errorf("respond.ssf.state_file %s: stream %s: delivery_method %q: want %s or %s", t.cfg.StateFile, v.ID, v.Method, DeliveryPush, DeliveryPoll)
			}
			if st.Version < 2 && len(s.requested) == 0 {
				s.requested = slices.Clone(EventsSupported) // what it delivered when saved
			}
		}
		if !slices.Contains(statuses, v.Status) {
			return fmt.Errorf("respond.ssf.state_file %s: stream %s: status %q: want enabled, paused or disabled", t.cfg.StateFile, v.ID, v.Status)
		}
		switch {
		case v.Static && v.ConfigStatus != s.configStatus:
			// The operator changed streams[].status since: theirs wins,
			// and the receiver, who did not ask for it, is told.
			t.log.Info("SSF configured stream: streams[].status changed, it replaces the status saved", "stream_id", v.ID,
				"status", s.status, "saved", v.Status)
			if s.status != v.Status {
				why := s.reason
				if why == "" {
					why = "set by the transmitter's operator"
					s.reason = why
				}
				t.changed = append(t.changed, statusChange{s: s, from: v.Status, to: s.status, why: why})
			}
		default:
			s.status, s.reason = v.Status, truncate(v.Reason, maxReason)
		}
		if !s.static {
			if s.method == DeliveryPoll {
				// Nothing to reach: the receiver polls.
			} else if err := secureURL(s.endpoint, t.cfg.AllowInsecureHTTP); err != nil {
				s.status, s.reason = StatusDisabled, "endpoint_url no longer allowed: "+err.Error()
				t.log.Warn("SSF stream in state_file disabled", "stream_id", v.ID, "err", err)
			}
			t.add(s)
		}
		for set, keys := range map[*subjectSet][]string{s.added: v.Added, s.removed: v.Removed} {
			for _, k := range keys {
				if err := set.putKey(k); err != nil {
					t.log.Warn("SSF subject in state_file dropped", "stream_id", v.ID, "subject", k, "err", err)
				}
			}
		}
	}
	return nil
}
