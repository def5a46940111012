package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

const bomPrefix = "\xEF\xBB\xBF"

// A UTF-8 BOM (saved by Windows tools) at the start of a file or of a page
// must not make the first page, or the whole file, a dead letter.
func TestReadRecordsIgnoresAByteOrderMark(t *testing.T) {
	const a, b = `{"id":1}`, `{"id":2}`
	page := func(rs ...string) string {
		return `{"kind":"admin#reports#activities","items":[` + strings.Join(rs, ",") + `]}`
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(bomPrefix + a + "\n" + b + "\n"))
	zw.Close()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"one page", bomPrefix + page(a, b), []string{a, b}},
		{"pretty-printed page", bomPrefix + "{\n  \"kind\": \"admin#reports#activities\",\n  \"items\": [\n    " + a + "\n  ]\n}\n", []string{a}},
		{"json array", bomPrefix + "[" + a + "," + b + "]", []string{a, b}},
		{"json lines", bomPrefix + a + "\n" + b + "\n", []string{a, b}},
		{"pages as lines, each with a BOM", bomPrefix + page(a) + "\n" + bomPrefix + page(b) + "\n", []string{a, b}},
		{"gzip", gz.String(), []string{a, b}},
		{"only a BOM", bomPrefix + "\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ReadRecords(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(tc.want) {
				t.Fatalf("got %d records %+v, want %d", len(recs), recs, len(tc.want))
			}
			for i, r := range recs {
				if r.Err != nil || string(r.Data) != tc.want[i] {
					t.Errorf("record %d = %s (err %v), want %s", i, r.Data, r.Err, tc.want[i])
				}
			}
		})
	}
}

// A .gz cut short yields the records of its decodable prefix and one
// record with Err (a dead letter) for the truncated tail, not nothing.
func TestReadRecordsOfATruncatedGzipKeepsThePrefix(t *testing.T) {
	var lines []string
	for i := 0; i < 2000; i++ {
		lines = append(lines, `{"id":`+strings.Repeat("1", 1+i%7)+`,"pad":"`+strings.Repeat("x", i%50)+`"}`)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Join(lines, "\n") + "\n"))
	zw.Close()
	for _, keep := range []int{gz.Len() - 8, gz.Len() / 2, gz.Len() / 5} { // the trailer gone; half; a fifth
		recs, err := ReadRecords(bytes.NewReader(gz.Bytes()[:keep]))
		if err != nil {
			t.Fatalf("keep %d bytes: %v", keep, err)
		}
		if len(recs) < 2 {
			t.Fatalf("keep %d bytes: %d records", keep, len(recs))
		}
		good := recs[:len(recs)-1]
		for i, r := range good {
			if r.Err != nil || string(r.Data) != lines[i] {
				t.Fatalf("keep %d bytes: record %d = %s (err %v), want %s", keep, i, r.Data, r.Err, lines[i])
			}
		}
		last := recs[len(recs)-1]
		if last.Err == nil || !strings.Contains(last.Err.Error(), "gzip stream truncated") {
			t.Fatalf("keep %d bytes: last record %+v, want the truncation", keep, last)
		}
		if keep == gz.Len()-8 && len(good) != len(lines) {
			t.Fatalf("only the trailer lost: %d of %d records read", len(good), len(lines))
		}
		// Normalized, the tail is a parse dead letter naming the truncation.
		b := NormalizeRecords(idNormalizer{}, "t.jsonl.gz", recs)
		if len(b.Events) != len(good) || len(b.Dead) != 1 || !strings.Contains(b.Dead[0].Reason, "truncated") {
			t.Fatalf("keep %d bytes: %d events, dead %+v", keep, len(b.Events), b.Dead)
		}
	}
}

type idNormalizer struct{}

func (idNormalizer) Name() string { return "test" }
func (idNormalizer) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return []schemas.Event{{EventID: string(raw)}}, nil
}
