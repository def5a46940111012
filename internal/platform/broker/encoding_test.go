package broker

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// An event message names its encoding, a reader follows the name, and a
// record without one (written before the header, or by hand) is JSON: a
// topic holding both, as during a change of kafka.encoding, reads whole.
func TestEventMessagesNameTheirEncoding(t *testing.T) {
	ev := schemas.Event{EventID: "e1", Source: "slack", Tenant: "acme", Time: schemas.UnixMilli(1_790_000_000_000),
		Integration: schemas.Integration{ID: "A01"}, Scopes: []string{"channels:history"}}
	for _, enc := range []string{schemas.EncodingMsgpack, schemas.EncodingJSON, ""} {
		m, err := EventMessage(enc, []byte("acme/A01"), &ev)
		if err != nil {
			t.Fatal(err)
		}
		want := enc
		if want == "" {
			want = schemas.EncodingJSON
		}
		if len(m.Headers) != 1 || m.Headers[0].Key != HeaderEncoding || string(m.Headers[0].Value) != want || string(m.Key) != "acme/A01" {
			t.Errorf("%q: message %+v", enc, m)
		}
		var got schemas.Event
		if err := DecodeEvent(m, &got); err != nil || !reflect.DeepEqual(got, ev) {
			t.Errorf("%q: decoded %+v, %v", enc, got, err)
		}
	}
	plain := kafka.Message{Value: []byte(`{"event_id":"e2","tenant":"acme","time":"2026-09-21T10:00:00.000Z"}`)}
	var got schemas.Event
	if err := DecodeEvent(plain, &got); err != nil || got.EventID != "e2" {
		t.Errorf("record without a header: %+v, %v", got, err)
	}
	mislabelled := kafka.Message{Value: plain.Value, Headers: []kafka.Header{Header(HeaderEncoding, schemas.EncodingMsgpack)}}
	if err := DecodeEvent(mislabelled, &schemas.Event{}); err == nil || !strings.Contains(err.Error(), "msgpack") {
		t.Errorf("JSON labelled msgpack: %v", err)
	}
	unknown := kafka.Message{Value: plain.Value, Headers: []kafka.Header{Header(HeaderEncoding, "avro")}}
	if err := DecodeEvent(unknown, &schemas.Event{}); err == nil || !strings.Contains(err.Error(), `"avro"`) {
		t.Errorf("unknown encoding: %v", err)
	}
}

func TestConfigRefusesUnknownEncoding(t *testing.T) {
	c := DefaultConfig()
	if c.Encoding != schemas.EncodingMsgpack || c.Validate() != nil {
		t.Fatalf("default %q: %v", c.Encoding, c.Validate())
	}
	c.Encoding = "JSON"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "kafka.encoding") {
		t.Errorf("kafka.encoding JSON: %v", err)
	}
}

// Every kafka.compression value is valid, and nothing else is.
func TestConfigRefusesUnknownCompression(t *testing.T) {
	if len(Compressions) != len(compressions) {
		t.Fatalf("Compressions %v does not list every codec of %v", Compressions, compressions)
	}
	for _, name := range Compressions {
		c := DefaultConfig()
		c.Compression = name
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "LZ4", "3", "brotli"} {
		c := DefaultConfig()
		c.Compression = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "kafka.compression") {
			t.Errorf("kafka.compression %q: %v", bad, err)
		}
	}
}

// A dead letter always fits in one produce request: a record that would make
// it too large keeps its start and says it was cut, and how long it was.
func TestDeadLetterFitsAProduceRequest(t *testing.T) {
	bin := bytes.Repeat([]byte{0xff, 0x00, 0x81}, 340_000) // not UTF-8: base64, 4/3 the size
	text := bytes.Repeat([]byte("\x01"), 1_000_000)        // each byte escaped as \u0001 in JSON
	small := []byte(`{"broken":`)
	for name, rec := range map[string][]byte{"binary": bin, "escaped text": text, "small": small} {
		m := DeadLetterMessage("decode", "detect", "tokenwatch.events[0]@7", "msgpack event: bad", rec)
		if len(m.Value) > deadLetterBytes {
			t.Errorf("%s: dead letter of %d bytes, over %d", name, len(m.Value), deadLetterBytes)
		}
		var d schemas.DeadLetter
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatal(err)
		}
		got, err := d.Bytes()
		if err != nil || !bytes.HasPrefix(rec, got) || len(got) == 0 {
			t.Errorf("%s: record %d bytes (%v), want a start of the %d", name, len(got), err, len(rec))
		}
		if cut := len(got) < len(rec); cut != d.RecordTruncated || (cut && d.RecordLength != len(rec)) {
			t.Errorf("%s: kept %d of %d bytes, truncated %v, length %d", name, len(got), len(rec), d.RecordTruncated, d.RecordLength)
		}
	}
}
