package schemas

import (
	"fmt"

	gojson "github.com/goccy/go-json"
)

// Encodings of events on the internal topics (tokenwatch.events and the
// detect stage's re-key topics). A record names its encoding in a header
// (broker.HeaderEncoding); a record without one is JSON, which is what
// records written before the header, by hand or by another tool are.
//
// MessagePack is the default: decoding it costs a fraction of JSON's (no
// text scanning, no escapes, field names matched by length-prefixed bytes)
// and the vendor record rides along as opaque bytes instead of being
// re-validated as JSON by every consumer. JSON stays available
// (kafka.encoding: json) for anyone who reads the topics with kcat.
const (
	EncodingJSON    = "json"
	EncodingMsgpack = "msgpack"
)

// Encodings lists the valid event encodings.
var Encodings = []string{EncodingMsgpack, EncodingJSON}

// CheckEncoding reports whether enc names an encoding.
func CheckEncoding(enc string) error {
	switch enc {
	case EncodingMsgpack, EncodingJSON:
		return nil
	}
	return fmt.Errorf("unknown event encoding %q (want %s or %s)", enc, EncodingMsgpack, EncodingJSON)
}

// AppendEvent appends ev, encoded in enc, to b.
func AppendEvent(b []byte, enc string, ev *Event) ([]byte, error) {
	switch enc {
	case EncodingMsgpack:
		return ev.MarshalMsg(b)
	case EncodingJSON, "":
		v, err := gojson.Marshal(ev)
		return append(b, v...), err
	}
	return b, CheckEncoding(enc)
}

// DecodeEvent decodes b, encoded in enc ("" is JSON), into ev, which must be
// the zero Event: a MessagePack record sets only the fields it holds. A
// MessagePack record's Raw is taken as it is, not checked to be JSON, and
// shares b's memory: b must not change while ev is in use (a consumed Kafka
// message's value never does).
func DecodeEvent(enc string, b []byte, ev *Event) error {
	switch enc {
	case EncodingJSON, "":
		return gojson.Unmarshal(b, ev)
	case EncodingMsgpack:
		rest, err := ev.UnmarshalMsg(b)
		if err != nil {
			return fmt.Errorf("msgpack event: %w", err)
		}
		if len(rest) != 0 {
			return fmt.Errorf("msgpack event: %d bytes after the record", len(rest))
		}
		// Raw stays opaque: tokenwatch's normalizers wrote it from the
		// vendor's JSON, and scanning it again costs more than the whole
		// rest of the record (JSON decoding must scan it to find its end).
		return nil
	}
	return CheckEncoding(enc)
}

// timeToMillis and timeFromMillis carry Time in MessagePack as epoch
// milliseconds; the zero Time round-trips to itself.
func timeToMillis(t Time) int64 { return t.UnixMilli() }

func timeFromMillis(ms int64) Time { return UnixMilli(ms) }
