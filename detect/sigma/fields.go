package sigma

import (
	"encoding/json"
	"strings"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Aliases map a field name a rule may use (lower case) to a tokenwatch
// normalized field, per source ("" applies to every source). They are
// consulted only when the raw vendor record has no such field; after them a
// rule may name any normalized field directly (integration.id, network.ip,
// action.name, credential.type, …: schemas.Event's JSON names).
var Aliases = map[string]map[string]string{
	"": {
		"src_ip":     "network.ip",
		"sourceip":   "network.ip",
		"ipaddress":  "network.ip",
		"useragent":  "network.user_agent",
		"user_agent": "network.user_agent",
		"app_id":     "integration.id",
	},
	// Reports API token activity nests the event name under events[]; the
	// normalized action is one event's name (or name:method).
	"google_workspace": {"eventname": "action.name", "eventservice": "target_app"},
	"microsoft":        {"appid": "integration.id"},
	"github":           {"token_type": "credential.type"},
}

// RawAliases map a field name a rule may use (lower case) to another field
// of the same source's raw record, per source, for a vendor that documents
// one name for searching and writes another in its records. They are
// consulted when the raw record has no field by the rule's name, before
// Aliases.
var RawAliases = map[string]map[string]string{
	// GitHub's audit log search qualifier is operation: ("Search based on
	// operation", docs.github.com … reviewing-the-audit-log-for-your-organization),
	// the streamed and REST records' field operation_type; SigmaHQ's GitHub
	// rules spell the qualifier.
	"github": {"operation": "operation_type"},
	// Entra's audit log exported by a diagnostic setting (Azure Monitor,
	// Log Analytics' AuditLogs) names the activity operationName; Graph's
	// directoryAudit, which tokenwatch reads, activityDisplayName ("the
	// activity name or the operation name", learn.microsoft.com/graph/api/
	// resources/directoryaudit). SigmaHQ's Entra audit rules spell the former.
	"microsoft": {"operationname": "activityDisplayName"},
}

// record is one event as a rule sees it: the raw vendor record first, then
// the normalized event. Both are decoded at most once, on first use.
type record struct {
	ev         *schemas.Event
	raw, norm  any
	rawDone    bool
	normDone   bool
	normalized bool // lookups fell back to the normalized event
}

func newRecord(ev *schemas.Event) *record { return &record{ev: ev} }

func (r *record) rawValue() any {
	if !r.rawDone {
		r.rawDone = true
		if len(r.ev.Raw) > 0 {
			_ = json.Unmarshal(r.ev.Raw, &r.raw)
		}
	}
	return r.raw
}

func (r *record) normValue() any {
	if !r.normDone {
		r.normDone = true
		ev := *r.ev
		ev.Raw = nil
		if b, err := json.Marshal(&ev); err == nil {
			_ = json.Unmarshal(b, &r.norm)
		}
	}
	return r.norm
}

// lookup returns every value at path (case-insensitive keys, dotted, lists
// fanned out) and whether the field exists.
func (r *record) lookup(path []string) ([]any, bool) {
	if vals, ok := walk(r.rawValue(), path); ok {
		return vals, true
	}
	name := strings.Join(path, ".")
	if to, ok := RawAliases[r.ev.Source][name]; ok {
		if vals, ok := walk(r.rawValue(), strings.Split(to, ".")); ok {
			return vals, true
		}
	}
	for _, src := range []string{r.ev.Source, ""} {
		if to, ok := Aliases[src][name]; ok {
			return walk(r.normValue(), strings.Split(to, "."))
		}
	}
	return walk(r.normValue(), path)
}

func walk(v any, path []string) ([]any, bool) {
	if len(path) == 0 {
		if list, ok := v.([]any); ok {
			return list, true
		}
		return []any{v}, true
	}
	switch x := v.(type) {
	case map[string]any:
		var out []any
		found := false
		// A key may itself hold dots ("actor_location.country_code" flattened
		// by a stream): try the longest key first.
		for j := len(path); j >= 1; j-- {
			want := strings.Join(path[:j], ".")
			for k, child := range x {
				if strings.EqualFold(k, want) {
					if vals, ok := walk(child, path[j:]); ok {
						out = append(out, vals...)
						found = true
					}
				}
			}
			if found {
				return out, true
			}
		}
	case []any:
		var out []any
		found := false
		for _, e := range x {
			if vals, ok := walk(e, path); ok {
				out = append(out, vals...)
				found = true
			}
		}
		return out, found
	}
	return nil, false
}
