package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// everyField is an Event with every field, at every depth, set to a value of
// its own (strings name their field path), so a field the codec drops,
// swaps or truncates shows in the comparison.
func everyField(t testing.TB) schemas.Event {
	var ev schemas.Event
	n := 0
	var fill func(v reflect.Value, path string)
	fill = func(v reflect.Value, path string) {
		n++
		switch {
		case v.Type() == reflect.TypeOf(schemas.Time{}):
			v.Set(reflect.ValueOf(schemas.UnixMilli(1_790_000_000_000 + int64(n)*1_001)))
			return
		case v.Type() == reflect.TypeOf(json.RawMessage{}):
			v.SetBytes([]byte(`{"vendor":"record","n":[1,2.5,null],"s":"é\"\\u0000"}`))
			return
		}
		switch v.Kind() {
		case reflect.String:
			v.SetString(path + " ✓")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int64:
			v.SetInt(int64(n) * 1_000_003)
		case reflect.Uint16, reflect.Uint32:
			v.SetUint(uint64(n) * 7)
		case reflect.Float64:
			v.SetFloat(float64(n) + 0.125)
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			for i := range 2 {
				fill(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), path)
		case reflect.Struct:
			for i := range v.NumField() {
				fill(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		default:
			t.Fatalf("%s: kind %s has no filler: teach everyField", path, v.Kind())
		}
	}
	fill(reflect.ValueOf(&ev).Elem(), "ev")
	return ev
}

// Every encoding gives back the event it was given, full, empty or partly
// set, and the JSON of a MessagePack round trip is byte for byte the
// original's: the two encodings carry the same record.
func TestEventEncodingsRoundTrip(t *testing.T) {
	full := everyField(t)
	partial := schemas.Event{EventID: "e1", Source: "github", Tenant: "acme", Time: schemas.UnixMilli(1_790_000_000_123),
		Integration: schemas.Integration{ID: "app-1"}, Action: schemas.Action{Name: "git.clone", Category: schemas.CategoryAccess},
		Geo: &schemas.Geo{Country: "NG"}, Scopes: []string{}, Raw: json.RawMessage(`{}`)}
	for name, ev := range map[string]schemas.Event{"full": full, "zero": {}, "partial": partial} {
		want, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range schemas.Encodings {
			b, err := schemas.AppendEvent(nil, enc, &ev)
			if err != nil {
				t.Fatalf("%s %s: encode: %v", name, enc, err)
			}
			var got schemas.Event
			if err := schemas.DecodeEvent(enc, b, &got); err != nil {
				t.Fatalf("%s %s: decode: %v", name, enc, err)
			}
			if name == "full" && !reflect.DeepEqual(got, ev) {
				t.Errorf("%s %s: round trip changed the event\n got %+v\nwant %+v", name, enc, got, ev)
			}
			if j, _ := json.Marshal(&got); !bytes.Equal(j, want) {
				t.Errorf("%s %s: JSON after the round trip\n got %s\nwant %s", name, enc, j, want)
			}
		}
	}
	if b, _ := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &full); len(b) == 0 {
		t.Fatal("empty record")
	} else if j, _ := schemas.AppendEvent(nil, schemas.EncodingJSON, &full); len(b) >= len(j) {
		t.Errorf("msgpack record %d bytes, JSON %d: the binary encoding should be the smaller", len(b), len(j))
	}
}

// A record is a map keyed by the JSON names, so a reader skips a field a
// newer writer added, and reads the record in any MessagePack tool as its
// JSON twin.
func TestMsgpackEventIsAMapOfJSONNames(t *testing.T) {
	ev := schemas.Event{EventID: "e1", Source: "okta", Tenant: "acme", Time: schemas.UnixMilli(1_790_000_000_000), Integration: schemas.Integration{ID: "0oa1"}}
	b, err := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &ev)
	if err != nil {
		t.Fatal(err)
	}
	var generic bytes.Buffer
	if _, err := msgp.UnmarshalAsJSON(&generic, b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(generic.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["event_id"] != "e1" || m["tenant"] != "acme" || m["time"] != float64(1_790_000_000_000) {
		t.Errorf("record as JSON: %s", generic.Bytes())
	}
	// A newer writer's extra field, appended to the map.
	sz, rest, _ := msgp.ReadMapHeaderBytes(b)
	newer := msgp.AppendMapHeader(nil, sz+1)
	newer = msgp.AppendString(newer, "added_later")
	newer = msgp.AppendArrayHeader(newer, 1)
	newer = msgp.AppendMapHeader(newer, 1)
	newer = msgp.AppendString(newer, "k")
	newer = msgp.AppendFloat64(newer, 1.5)
	newer = append(newer, rest...)
	var got schemas.Event
	if err := schemas.DecodeEvent(schemas.EncodingMsgpack, newer, &got); err != nil || !reflect.DeepEqual(got, ev) {
		t.Errorf("record with an unknown field: %v, %+v", err, got)
	}
}

func TestDecodeEventRefusesBadRecords(t *testing.T) {
	ev := everyField(t)
	good, _ := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &ev)
	for _, c := range []struct {
		name, enc string
		b         []byte
		want      string
	}{
		{"truncated", schemas.EncodingMsgpack, good[:len(good)/2], "msgpack event"},
		{"trailing bytes", schemas.EncodingMsgpack, append(append([]byte{}, good...), 0xc0), "1 bytes after the record"},
		{"not a map", schemas.EncodingMsgpack, msgp.AppendString(nil, "event"), "msgpack event"},
		{"wrong type", schemas.EncodingMsgpack, msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "time"), "yesterday"), "Time"},
		{"array claiming 4 billion scopes", schemas.EncodingMsgpack, append(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "scopes"), 0xdd, 0xff, 0xff, 0xff, 0xff), "limit exceeded"},
		{"JSON given as msgpack", schemas.EncodingMsgpack, []byte(`{"event_id":"x"}`), "msgpack event"},
		{"msgpack given as JSON", schemas.EncodingJSON, good, ""},
		{"unknown encoding", "protobuf", good, `unknown event encoding "protobuf"`},
	} {
		var got schemas.Event
		err := schemas.DecodeEvent(c.enc, c.b, &got)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if _, err := schemas.AppendEvent(nil, "xml", &ev); err == nil {
		t.Error("encoded in an unknown encoding")
	}
}

// The zero Time travels as its epoch milliseconds and comes back zero, so
// an unset time stays unset.
func TestZeroTimeRoundTrips(t *testing.T) {
	ev := schemas.Event{TokenIssuedAt: &schemas.Time{}, Time: schemas.NewTime(time.Time{})}
	b, _ := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &ev)
	var got schemas.Event
	if err := schemas.DecodeEvent(schemas.EncodingMsgpack, b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Time.IsZero() || got.TokenIssuedAt == nil || !got.TokenIssuedAt.IsZero() {
		t.Errorf("zero times came back as %v and %v", got.Time, got.TokenIssuedAt)
	}
}

// FuzzDecodeEvent: any bytes decode or fail cleanly, and a record that
// decodes encodes to one that decodes to the same event.
func FuzzDecodeEvent(f *testing.F) {
	ev := everyField(f)
	full, _ := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &ev)
	f.Add(full)
	small := schemas.Event{EventID: "e", Time: schemas.UnixMilli(1), Raw: json.RawMessage(`[]`)}
	b, _ := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &small)
	f.Add(b)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev schemas.Event
		if schemas.DecodeEvent(schemas.EncodingMsgpack, b, &ev) != nil {
			return
		}
		again, err := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &ev)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var ev2 schemas.Event
		if err := schemas.DecodeEvent(schemas.EncodingMsgpack, again, &ev2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		j1, _ := json.Marshal(&ev)
		j2, _ := json.Marshal(&ev2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("unstable:\n%s\n%s", j1, j2)
		}
	})
}

// event_msgp.go is what the generator makes of event.go today: a field
// added to Event without `go generate ./schemas` would not travel.
func TestMsgpackCodeIsGenerated(t *testing.T) {
	out := filepath.Join(t.TempDir(), "event_msgp.go")
	cmd := exec.Command("go", "tool", "msgp", "-file", "event.go", "-o", out, "-tests=false", "-io=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool msgp: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("event_msgp.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, have) {
		t.Fatal("schemas/event_msgp.go is stale: run `go generate ./schemas` and commit it")
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	ev := everyField(b)
	ev.Raw = nil // as on the peers benchmark's topic
	for _, enc := range schemas.Encodings {
		rec, _ := schemas.AppendEvent(nil, enc, &ev)
		b.Run(enc, func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				var got schemas.Event
				if err := schemas.DecodeEvent(enc, rec, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := everyField(b)
	ev.Raw = nil
	for _, enc := range schemas.Encodings {
		b.Run(enc, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = schemas.AppendEvent(buf[:0], enc, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A binary record that fails to decode is dead-lettered whole: a JSON string
// would replace its non-UTF-8 bytes, so it travels as base64.
func TestDeadLetterKeepsBinaryRecords(t *testing.T) {
	ev := everyField(t)
	bin, _ := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &ev)
	for _, rec := range [][]byte{bin, []byte(`{"broken":`), []byte("texte accentué")} {
		d := schemas.NewDeadLetter("decode", "detect", "tokenwatch.events[0]@1", "bad", rec)
		j, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		var back schemas.DeadLetter
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.Bytes()
		if err != nil || !bytes.Equal(got, rec) {
			t.Errorf("dead letter of %q gave back %q (%v)", rec[:min(len(rec), 12)], got, err)
		}
		if text := !bytes.Equal(rec, bin); text != (back.Record != "") {
			t.Errorf("%q: record %q, base64 %q", rec[:min(len(rec), 12)], back.Record, back.RecordBase64)
		}
	}
}

// A vendor record as large as a Kafka record may be (1 MiB less the rest)
// travels in both encodings: the array limit must not cap it.
func TestLargeRawRecordTravels(t *testing.T) {
	ev := schemas.Event{EventID: "big", Time: schemas.UnixMilli(1_790_000_000_000)}
	ev.Raw = json.RawMessage(`{"blob":"` + strings.Repeat("x", 1000_000) + `"}`)
	for _, enc := range schemas.Encodings {
		b, err := schemas.AppendEvent(nil, enc, &ev)
		if err != nil {
			t.Fatal(err)
		}
		var got schemas.Event
		if err := schemas.DecodeEvent(enc, b, &got); err != nil || !bytes.Equal(got.Raw, ev.Raw) {
			t.Errorf("%s: %d-byte raw record: %v", enc, len(ev.Raw), err)
		}
	}
}
