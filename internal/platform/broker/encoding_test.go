package broker

import (
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
