package ingest

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func TestReadRecordsAcceptsEveryShape(t *testing.T) {
	const a, b = `{"id":1}`, `{"id":2}`
	page := func(rs ...string) string {
		return `{"kind":"admin#reports#activities","items":[` + strings.Join(rs, ",") + `],"nextPageToken":"x"}`
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(a + "\n" + b + "\n"))
	zw.Close()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"json array", "[" + a + "," + b + "]", []string{a, b}},
		{"json lines", a + "\n\n" + b + "\n", []string{a, b}},
		{"one page", page(a, b), []string{a, b}},
		{"pages as lines", page(a) + "\n" + page(b), []string{a, b}},
		{"array of pages", "[" + page(a) + "," + page(b) + "]", []string{a, b}},
		{"slack entries", `{"entries":[` + a + `],"response_metadata":{"next_cursor":""}}`, []string{a}},
		{"graph value", `{"@odata.context":"x","value":[` + a + `]}`, []string{a}},
		{"record with an items field is a record", `{"items":[1],"id":3}`, []string{`{"items":[1],"id":3}`}},
		{"gzip", gz.String(), []string{a, b}},
		{"empty", "  \n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ReadRecords(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(recs), len(tc.want))
			}
			for i, r := range recs {
				if r.Err != nil || string(r.Data) != tc.want[i] {
					t.Errorf("record %d = %s (err %v), want %s", i, r.Data, r.Err, tc.want[i])
				}
			}
		})
	}
}

func TestReadRecordsKeepsMalformedLinesAsErrors(t *testing.T) {
	in := `{"id":1}` + "\n" + `{"id":` + "\n" + `"just a string"` + "\n" + `{"id":4}`
	recs, err := ReadRecords(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4", len(recs))
	}
	if recs[0].Err != nil || recs[3].Err != nil {
		t.Errorf("good lines failed: %v %v", recs[0].Err, recs[3].Err)
	}
	if recs[1].Err == nil || recs[1].Pos != "line 2" || string(recs[1].Data) != `{"id":` {
		t.Errorf("malformed line: %+v", recs[1])
	}
	if recs[2].Err == nil {
		t.Errorf("a bare string is not a record: %+v", recs[2])
	}
}
