package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// RawRecord is one vendor record read from a file, or the reason it could not be.
type RawRecord struct {
	Data json.RawMessage
	// Err is set when the bytes in Data are not a JSON record; the caller
	// dead-letters them with Err as the reason.
	Err error
	// Pos says where in the input the record sat ("line 12", "item 3 of page 2").
	Pos string
}

// ReadRecords reads raw vendor records from r in any of the shapes an operator
// is likely to have saved: a JSON array of records, JSON lines (one record per
// line), or whole API response pages (objects with an "items", "entries",
// "records", "value" or "records" array), one or several, optionally as an array
// of pages or one page per line. gzip input is detected and decompressed. A
// line that is not JSON does not stop the read: it comes back with Err set.
//
// A UTF-8 byte order mark (which Windows tools put at the start of saved
// files) is ignored at the start of the input and of every line. A gzip
// stream cut short (a copy or upload interrupted) yields the records of its
// decodable prefix and, last, one record with Err set for the truncated tail.
func ReadRecords(r io.Reader) ([]RawRecord, error) {
	br := bufio.NewReader(r)
	gz := false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
		gz = true
	}
	data, err := io.ReadAll(br)
	var tail *RawRecord
	if err != nil {
		if !gz {
			return nil, err
		}
		// Keep the complete lines read; the partial last one is the tail.
		cut := bytes.LastIndexByte(data, '\n') + 1
		tail = &RawRecord{Data: append([]byte(nil), data[cut:]...), Pos: fmt.Sprintf("byte %d of the decompressed input", cut),
			Err: fmt.Errorf("gzip stream truncated or corrupt after %d decompressed bytes (%v): the records before it were read, the rest of the file is lost", len(data), err)}
		data = data[:cut]
	}
	out, err := readRecords(data)
	if tail != nil {
		out = append(out, *tail)
	}
	return out, err
}

// bom is the UTF-8 byte order mark.
var bom = []byte{0xEF, 0xBB, 0xBF}

// TrimBOM removes a UTF-8 byte order mark at the start of b.
func TrimBOM(b []byte) []byte { return bytes.TrimPrefix(b, bom) }

func readRecords(data []byte) ([]RawRecord, error) {
	data = TrimBOM(data)
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	// One JSON document (array or single page)?
	if json.Valid(trimmed) {
		var out []RawRecord
		if err := appendDocument(&out, trimmed, "document"); err == nil {
			return out, nil
		}
	}
	// Otherwise JSON lines.
	var out []RawRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(TrimBOM(sc.Bytes())) // pages saved one after another, each with its BOM
		if len(line) == 0 {
			continue
		}
		pos := fmt.Sprintf("line %d", n)
		if !json.Valid(line) {
			out = append(out, RawRecord{Data: append([]byte(nil), line...), Err: errors.New("malformed JSON"), Pos: pos})
			continue
		}
		if err := appendDocument(&out, append([]byte(nil), line...), pos); err != nil {
			out = append(out, RawRecord{Data: append([]byte(nil), line...), Err: err, Pos: pos})
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read lines: %w", err)
	}
	return out, nil
}

// pageKeys are the array fields vendor list responses wrap records in.
var pageKeys = []string{"items", "entries", "records", "value"}

func appendDocument(out *[]RawRecord, doc []byte, pos string) error {
	switch doc[0] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(doc, &elems); err != nil {
			return err
		}
		for i, e := range elems {
			if err := appendDocument(out, e, fmt.Sprintf("%s[%d]", pos, i)); err != nil {
				*out = append(*out, RawRecord{Data: e, Err: err, Pos: fmt.Sprintf("%s[%d]", pos, i)})
			}
		}
		return nil
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(doc, &obj); err != nil {
			return err
		}
		for _, k := range pageKeys {
			arr, ok := obj[k]
			if !ok || len(arr) == 0 || arr[0] != '[' || !isPage(obj) {
				continue
			}
			var elems []json.RawMessage
			if err := json.Unmarshal(arr, &elems); err != nil {
				return err
			}
			for i, e := range elems {
				*out = append(*out, RawRecord{Data: e, Pos: fmt.Sprintf("%s.%s[%d]", pos, k, i)})
			}
			return nil
		}
		*out = append(*out, RawRecord{Data: doc, Pos: pos})
		return nil
	}
	return fmt.Errorf("not a JSON object or array: %.20q", string(doc))
}

// isPage tells a list response from a record that happens to have an "items"
// field: list responses carry paging or kind metadata, or nothing else.
func isPage(obj map[string]json.RawMessage) bool {
	if len(obj) == 1 {
		return true
	}
	for k := range obj {
		switch {
		case k == "kind" || k == "nextPageToken" || k == "response_metadata" || k == "nextRecordsUrl" ||
			k == "done" || k == "totalSize" || strings.HasPrefix(k, "@odata"):
			return true
		}
	}
	return false
}

// ReadFile opens path and reads its records.
func ReadFile(path string) ([]RawRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := ReadRecords(f)
	if err != nil {
		return recs, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}
