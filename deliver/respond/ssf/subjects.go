package ssf

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// maxSubjectsPerStream bounds the subjects (added and removed together) one
// stream keeps: every change rewrites state_file, and matching looks at the
// subjects sharing a member with the event's.
const maxSubjectsPerStream = 1000

// members are a complex subject's members (user, tenant, application, …),
// each as canonical JSON (encoding/json sorts map keys).
type members map[string]string

// complexMembers checks that sub is a complex subject with at least one
// member, each a subject identifier with a format, and returns its members.
// tokenwatch's event subjects are all complex, and SSF matches a simple
// subject only to an identical simple one: a simple subject would never
// match, so it is refused rather than silently kept.
func complexMembers(sub map[string]any) (members, error) {
	if f, _ := sub["format"].(string); f != "complex" {
		return nil, fmt.Errorf("subject: format %q: this transmitter's events have complex subjects (application, tenant, user); "+
			"add one of those, e.g. {\"format\":\"complex\",\"application\":{\"format\":\"opaque\",\"id\":\"…\"}}", f)
	}
	out := members{}
	for k, v := range sub {
		if k == "format" {
			continue
		}
		m, ok := v.(map[string]any)
		if f, _ := m["format"].(string); !ok || f == "" {
			return nil, fmt.Errorf("subject.%s: want a subject identifier with a format (RFC 9493)", k)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("subject.%s: %w", k, err)
		}
		out[k] = string(b)
	}
	if len(out) == 0 {
		return nil, errors.New("subject: a complex subject needs at least one member")
	}
	return out, nil
}

// key is the canonical form of the whole subject.
func (m members) key() string {
	b, _ := json.Marshal(map[string]string(m))
	return string(b)
}

// matches is SSF 1.0 "Subject Matching" for complex subjects: every member
// defined on both sides is identical. It also wants one member in common:
// otherwise a subject {user} would match every event that names no user
// (all of an application's risk changes, in every tenant).
func (m members) matches(ev members) bool {
	common := false
	for f, v := range m {
		if w, ok := ev[f]; ok {
			if w != v {
				return false
			}
			common = true
		}
	}
	return common
}

// subjectSet holds whole subjects, indexed by member, so an event is
// checked only against the subjects that share one of its members.
type subjectSet struct {
	subs  map[string]members
	index map[string]map[string]bool // field\x00member → subject keys
}

func newSubjectSet() *subjectSet {
	return &subjectSet{subs: map[string]members{}, index: map[string]map[string]bool{}}
}

func (s *subjectSet) len() int { return len(s.subs) }

func (s *subjectSet) has(m members) bool { _, ok := s.subs[m.key()]; return ok }

func (s *subjectSet) put(m members) {
	k := m.key()
	if _, ok := s.subs[k]; ok {
		return
	}
	s.subs[k] = m
	for f, v := range m {
		ik := f + "\x00" + v
		if s.index[ik] == nil {
			s.index[ik] = map[string]bool{}
		}
		s.index[ik][k] = true
	}
}

func (s *subjectSet) del(m members) {
	k := m.key()
	if _, ok := s.subs[k]; !ok {
		return
	}
	delete(s.subs, k)
	for f, v := range m {
		ik := f + "\x00" + v
		delete(s.index[ik], k)
		if len(s.index[ik]) == 0 {
			delete(s.index, ik)
		}
	}
}

// matches reports whether a subject in the set matches the event's.
func (s *subjectSet) matches(ev members) bool {
	for f, v := range ev {
		for k := range s.index[f+"\x00"+v] {
			if s.subs[k].matches(ev) {
				return true
			}
		}
	}
	return false
}

// keys are the subjects' canonical forms, sorted (state_file).
func (s *subjectSet) keys() []string {
	out := make([]string, 0, len(s.subs))
	for k := range s.subs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// putKey restores a subject saved by keys.
func (s *subjectSet) putKey(k string) error {
	var m members
	if err := json.Unmarshal([]byte(k), &m); err != nil || len(m) == 0 {
		return errors.New("not a saved complex subject")
	}
	for f, v := range m {
		// A file from before whole subjects were kept holds members alone.
		if f == "format" || len(v) == 0 || v[0] != '{' {
			return errors.New("not a saved complex subject (a member alone, from an older version)")
		}
	}
	s.put(m)
	return nil
}
