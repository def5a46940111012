package wiring_test

import (
	stdjson "encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// The roles decode every event from Kafka; goccy/go-json does it ~7× faster
// than encoding/json (1.3 µs vs 9 µs per scenario event on the dev machine),
// which is why the pipeline uses it for JSON records; MessagePack, the
// default encoding of the internal topics, is cheaper still.
func benchEvents(b *testing.B) [][]byte {
	evs, _ := scenarioEvents(b)
	out := make([][]byte, 0, 2000)
	for i := range evs[:2000] {
		v, _ := stdjson.Marshal(&evs[i])
		out = append(out, v)
	}
	return out
}

func BenchmarkDecodeStd(b *testing.B) {
	msgs := benchEvents(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ev schemas.Event
		stdjson.Unmarshal(msgs[i%len(msgs)], &ev)
	}
}

func BenchmarkDecodeGoccy(b *testing.B) {
	msgs := benchEvents(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ev schemas.Event
		gojson.Unmarshal(msgs[i%len(msgs)], &ev)
	}
}

// The same events as the roles read them by default (kafka.encoding:
// msgpack): compare with BenchmarkDecodeGoccy in one run.
func BenchmarkDecodeMsgpack(b *testing.B) {
	evs, _ := scenarioEvents(b)
	msgs := make([][]byte, 0, 2000)
	for i := range evs[:2000] {
		v, err := schemas.AppendEvent(nil, schemas.EncodingMsgpack, &evs[i])
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, v)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ev schemas.Event
		if err := schemas.DecodeEvent(schemas.EncodingMsgpack, msgs[i%len(msgs)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}
