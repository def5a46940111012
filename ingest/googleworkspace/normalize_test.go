package googleworkspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestNormalizeMapsTokenActivity(t *testing.T) {
	const base = `{"kind":"admin#reports#activity","id":{"time":"2026-10-27T02:13:07.412Z","uniqueQualifier":"-45","applicationName":"token","customerId":"C03az79cb"},"actor":{"callerType":"USER","email":"ops@example.com","profileId":"1049"},"ipAddress":"102.89.0.1","events":[%s]}`
	tests := []struct {
		name   string
		events string
		want   func(t *testing.T, evs []schemas.Event)
	}{
		{"activity read is access with bytes", `{"type":"auth","name":"activity","parameters":[{"name":"api_name","value":"gmail"},{"name":"method_name","value":"gmail.users.messages.get"},{"name":"client_id","value":"c1"},{"name":"num_response_bytes","intValue":"51234"},{"name":"app_name","value":"CRM"}]}`,
			func(t *testing.T, evs []schemas.Event) {
				e := evs[0]
				check(t, e.Action.Category, schemas.CategoryAccess)
				check(t, e.Action.Name, "activity:gmail.users.messages.get")
				check(t, e.Integration.ID, "c1")
				check(t, e.Integration.Name, "CRM")
				check(t, e.TargetApp, "gmail")
				check(t, e.Resource.ID, "gmail.users.messages.get")
				check(t, e.Network.IP, "102.89.0.1")
				check(t, e.Principal.ID, "ops@example.com")
				check(t, e.Tenant, "C03az79cb")
				check(t, e.EventID, "2026-10-27T02:13:07.412Z/-45/0")
				check(t, e.Time.UnixMilli(), int64(1793067187412))
				check(t, e.Bytes, int64(51234))
				if !strings.HasPrefix(e.Credential.ID, "g-") || e.Credential.Type != "oauth_token" {
					t.Errorf("credential %+v", e.Credential)
				}
			}},
		{"activity write is modify", `{"name":"activity","parameters":[{"name":"method_name","value":"drive.files.create"},{"name":"client_id","value":"c1"}]}`,
			func(t *testing.T, evs []schemas.Event) { check(t, evs[0].Action.Category, schemas.CategoryModify) }},
		{"authorize carries scopes", `{"name":"authorize","parameters":[{"name":"client_id","value":"c1"},{"name":"scope","multiValue":["s1","s2"]}]}`,
			func(t *testing.T, evs []schemas.Event) {
				check(t, evs[0].Action.Category, schemas.CategoryAuthorize)
				check(t, strings.Join(evs[0].Scopes, ","), "s1,s2")
			}},
		{"revoke", `{"name":"revoke","parameters":[{"name":"client_id","value":"c1"}]}`,
			func(t *testing.T, evs []schemas.Event) { check(t, evs[0].Action.Category, schemas.CategoryRevoke) }},
		{"an unknown event name is category other and does not sink the record's other events", `{"name":"teleport","parameters":[{"name":"client_id","value":"c1"}]},{"name":"activity","parameters":[{"name":"client_id","value":"c1"}]}`,
			func(t *testing.T, evs []schemas.Event) {
				if len(evs) != 2 {
					t.Fatalf("%d events, want 2", len(evs))
				}
				check(t, evs[0].Action.Category, schemas.CategoryOther)
				check(t, evs[0].Action.Name, "teleport")
				check(t, evs[1].Action.Category, schemas.CategoryAccess)
			}},
		{"an event naming no app is skipped, the others kept", `{"name":"activity","parameters":[]},{"name":"revoke","parameters":[{"name":"client_id","value":"c1"}]}`,
			func(t *testing.T, evs []schemas.Event) {
				if len(evs) != 1 || evs[0].EventID != "2026-10-27T02:13:07.412Z/-45/1" {
					t.Fatalf("events %+v, want only the revoke at index 1", evs)
				}
			}},
		{"client_type is the token's client kind", `{"name":"activity","parameters":[{"name":"client_id","value":"c1"},{"name":"client_type","value":"NATIVE_DESKTOP"}]}`,
			func(t *testing.T, evs []schemas.Event) {
				check(t, evs[0].Credential.Type, "oauth_token_native_desktop")
			}},
		{"several events get distinct ids", `{"name":"authorize","parameters":[{"name":"client_id","value":"c1"}]},{"name":"activity","parameters":[{"name":"client_id","value":"c1"}]}`,
			func(t *testing.T, evs []schemas.Event) {
				if len(evs) != 2 || evs[0].EventID == evs[1].EventID {
					t.Fatalf("events %d, ids %q", len(evs), []string{evs[0].EventID, evs[1].EventID})
				}
			}},
	}
	s := NewNormalizer("fallback")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := json.RawMessage(strings.Replace(base, "%s", tc.events, 1))
			evs, err := s.Normalize(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if !bytes.Equal(e.Raw, raw) {
					t.Error("raw record not kept")
				}
			}
			tc.want(t, evs)
		})
	}
}

func TestNormalizeActorApplicationInfoAndKey(t *testing.T) {
	s := NewNormalizer("")
	dwd := `{"id":{"time":"2026-10-27T02:13:07.412Z","uniqueQualifier":"7","applicationName":"token","customerId":"C1"},"actor":{"callerType":"USER","email":"ceo@example.com","profileId":"1049","applicationInfo":{"oauthClientId":"109876543210987654321","applicationName":"Backup Robot","impersonation":true}},"events":[{"type":"auth","name":"activity","parameters":[{"name":"api_name","value":"gmail"},{"name":"method_name","value":"gmail.users.messages.list"}]}]}`
	evs, err := s.Normalize(json.RawMessage(dwd))
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
	e := evs[0]
	check(t, e.Integration.ID, "109876543210987654321")
	check(t, e.Integration.Name, "Backup Robot")
	check(t, e.Principal.ID, "ceo@example.com")
	check(t, e.Impersonation, true)
	key := `{"id":{"time":"2026-10-27T02:13:07.412Z","uniqueQualifier":"8","applicationName":"token","customerId":"C1"},"actor":{"callerType":"KEY","key":"SYSTEM"},"events":[{"type":"auth","name":"activity","parameters":[{"name":"client_id","value":"c9"}]}]}`
	if evs, err = s.Normalize(json.RawMessage(key)); err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
	check(t, evs[0].Principal.ID, "key:SYSTEM")
	check(t, evs[0].Principal.Type, "api_key")
	check(t, evs[0].Credential.Type, "api_key")
	check(t, evs[0].Credential.ID, "SYSTEM")
}

// TestIdentityIsStable: one app and one user's grant → one integration id and
// one credential id, whatever optional fields the record carries.
func TestIdentityIsStable(t *testing.T) {
	const rec = `{"id":{"time":"2026-10-27T02:13:07.412Z","uniqueQualifier":"1","applicationName":"token","customerId":"C1"},"actor":%s,"events":[{"type":"auth","name":%s,"parameters":[%s]}]}`
	variants := []struct{ actor, name, params string }{
		{`{"callerType":"USER","email":"ops@example.com","profileId":"1049"}`, `"activity"`, `{"name":"client_id","value":"c1"}`},
		{`{"callerType":"USER","email":"ops@example.com","profileId":"1049"}`, `"activity"`, `{"name":"client_id","value":"c1"},{"name":"app_name","value":"CRM"},{"name":"client_type","value":"WEB"},{"name":"num_response_bytes","intValue":"5"}`},
		{`{"callerType":"USER","email":"ops@example.com","profileId":"1049","applicationInfo":{"oauthClientId":"c1","applicationName":"CRM"}}`, `"authorize"`, `{"name":"client_id","value":"c1"},{"name":"scope","multiValue":["s"]}`},
		{`{"callerType":"USER","email":"ops@example.com","profileId":"1049","applicationInfo":{"oauthClientId":"c1","impersonation":false}}`, `"request"`, ``},
		{`{"email":"ops@example.com","profileId":"1049"}`, `"a_new_event_name"`, `{"name":"client_id","value":"c1"}`},
	}
	s := NewNormalizer("")
	var integ, cred string
	for i, v := range variants {
		raw := fmt.Sprintf(rec, v.actor, v.name, v.params)
		evs, err := s.Normalize(json.RawMessage(raw))
		if err != nil || len(evs) != 1 {
			t.Fatalf("variant %d: %v %v", i, evs, err)
		}
		if err := ingesttest.CheckEvent(evs[0], SourceName); err != nil {
			t.Error(err)
		}
		if i == 0 {
			integ, cred = evs[0].Integration.ID, evs[0].Credential.ID
		}
		if evs[0].Integration.ID != integ || evs[0].Credential.ID != cred {
			t.Errorf("variant %d: integration %q credential %q, want %q %q", i, evs[0].Integration.ID, evs[0].Credential.ID, integ, cred)
		}
	}
}

// TestNormalizeDocumentedShapes: Activity records written from the Reports
// API reference (actor.applicationInfo, actor.key, a new event name).
func TestNormalizeDocumentedShapes(t *testing.T) {
	ingesttest.GoldenEvents(t, NewNormalizer(""), ingesttest.ReadLines(t, "testdata/golden/documented.jsonl"),
		"testdata/golden/documented.normalized.jsonl", *ingesttest.Update)
}

func TestNormalizeRejectsWithReason(t *testing.T) {
	tests := []struct{ name, raw, reason string }{
		{"malformed", `{"id":`, "decode activity"},
		{"missing time", `{"id":{"uniqueQualifier":"1"},"events":[{"name":"activity","parameters":[{"name":"client_id","value":"c"}]}]}`, "no id.time"},
		{"bad time", `{"id":{"time":"yesterday"},"events":[{"name":"activity"}]}`, "id.time"},
		{"no client", `{"id":{"time":"2026-10-27T02:13:07Z"},"events":[{"name":"activity","parameters":[]}]}`, "no client_id"},
		{"other application", `{"id":{"time":"2026-10-27T02:13:07Z","applicationName":"drive"},"events":[{"name":"activity"}]}`, "not token activity"},
		{"no events", `{"id":{"time":"2026-10-27T02:13:07Z"}}`, "no events"},
	}
	s := NewNormalizer("")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Normalize(json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.reason)
			}
		})
	}
}

func TestNormalizeGolden(t *testing.T) {
	recs, err := ingest.ReadFile("testdata/pages/page1.json")
	if err != nil {
		t.Fatal(err)
	}
	b := ingest.NormalizeRecords(NewNormalizer(""), "page1.json", recs)
	if len(b.Dead) != 0 {
		t.Fatalf("dead letters: %+v", b.Dead)
	}
	var got bytes.Buffer
	enc := json.NewEncoder(&got)
	for i := range b.Events {
		b.Events[i].Raw = nil // the golden file checks the mapping, not the copy
		if err := enc.Encode(&b.Events[i]); err != nil {
			t.Fatal(err)
		}
	}
	ingesttest.Golden(t, ingesttest.GoldenFile, got.Bytes(), *ingesttest.Update)
}

// FuzzNormalize: no panic, every event that comes out is complete, and the
// mapping is deterministic (ingesttest.CheckNormalize); seeds are the records
// of the sample pages.
func FuzzNormalize(f *testing.F) {
	var seeds [][]byte
	pages, _ := filepath.Glob("testdata/pages/*.json")
	for _, p := range pages {
		recs, _ := ingest.ReadFile(p)
		for _, r := range recs {
			seeds = append(seeds, r.Data)
		}
	}
	seeds = append(seeds, []byte(`{"id":{"time":"2026-10-27T02:13:07Z"},"events":[{"name":"activity","parameters":[{"name":"client_id","value":"c"}]}]}`))
	ingesttest.FuzzNormalize(f, NewNormalizer("t"), seeds...)
}

func check[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}
