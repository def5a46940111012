package salesforce

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// DefaultLogTypes are the event log file types read by default: per-call logs
// of SOAP (API), REST, Bulk API 1.0 and 2.0, and ApiTotalUsage, which also
// names the connected app.
var DefaultLogTypes = []string{"API", "RestApi", "BulkApi", "BulkApi2", "ApiTotalUsage"}

// Event log file intervals (EventLogFile.Interval).
const (
	IntervalHourly = "Hourly"
	IntervalDaily  = "Daily"
)

// logFile is one EventLogFile row of the listing query.
type logFile struct {
	ID        string  `json:"Id"`
	EventType string  `json:"EventType"`
	LogDate   string  `json:"LogDate"`
	Interval  string  `json:"Interval"`
	LogFile   string  `json:"LogFile"`
	Sequence  float64 `json:"Sequence"`
}

// elfState is what travels in the window's Next while the EventLogFile
// stream is read: the files still to download from the current listing page
// and the listing's nextRecordsUrl.
type elfState struct {
	Files []logFile `json:"files,omitempty"`
	More  string    `json:"more,omitempty"`
}

func (s *Source) elfListQuery(start time.Time) string {
	types := make([]string, len(s.cfg.EventLogTypes))
	for i, t := range s.cfg.EventLogTypes {
		types[i] = "'" + t + "'"
	}
	// LogDate is the start of the hour (hourly) or day (daily) the file
	// covers: a file overlapping the window starts at or after the window
	// start truncated to its interval.
	from := start.UTC().Truncate(time.Hour)
	if s.cfg.EventLogInterval == IntervalDaily {
		from = from.Truncate(24 * time.Hour)
	}
	return "SELECT Id, EventType, LogDate, Interval, LogFile, Sequence FROM EventLogFile WHERE EventType IN (" +
		strings.Join(types, ",") + ") AND Interval = '" + s.cfg.EventLogInterval + "' AND LogDate >= " +
		from.Format("2006-01-02T15:04:05Z") + " ORDER BY LogDate ASC, Id ASC"
}

// maxLogFile bounds one CSV download (Salesforce's own limit on a log file
// is far smaller for hourly files; a daily API file of a busy org is large).
const maxLogFile = 1 << 30

// readLogFile parses an event log CSV (header row of column names, then one
// row per event, every value quoted) into one JSON object per row, columns
// as keys and values as strings. Rows with the wrong number of fields fail
// the whole file: a truncated download must be retried, not half-read.
func readLogFile(body io.Reader, eventType string) ([]json.RawMessage, error) {
	br := bufio.NewReader(body)
	if b, _ := br.Peek(3); string(b) == "\ufeff" {
		br.Discard(3) // a UTF-8 byte order mark
	}
	r := csv.NewReader(br)
	r.ReuseRecord = false
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil // an empty file: no events in the interval
	}
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	var out []json.RawMessage
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", line, err)
		}
		row := make(map[string]string, len(header))
		for i, name := range header {
			if rec[i] != "" {
				row[name] = rec[i]
			}
		}
		if row["EVENT_TYPE"] == "" {
			row["EVENT_TYPE"] = eventType
		}
		b, _ := json.Marshal(row) // sorted keys: the same row always has the same bytes
		out = append(out, b)
	}
}

// elfRow is one row of an event log file, as readLogFile writes it.
type elfRow map[string]string

// elfRowOf recognizes an event log row: a flat JSON object of strings with an
// EVENT_TYPE column (no query-API record has one).
func elfRowOf(raw json.RawMessage) (elfRow, bool) {
	if !strings.Contains(string(raw), `"EVENT_TYPE"`) {
		return nil, false
	}
	var row elfRow
	if json.Unmarshal(raw, &row) != nil || row["EVENT_TYPE"] == "" {
		return nil, false
	}
	return row, true
}

// time is TIMESTAMP_DERIVED (ISO 8601, UTC), else TIMESTAMP (yyyyMMddHHmmss.SSS, GMT).
func (r elfRow) time() (time.Time, error) {
	if v := r["TIMESTAMP_DERIVED"]; v != "" {
		return parseTime("TIMESTAMP_DERIVED", v)
	}
	if v := r["TIMESTAMP"]; v != "" {
		if t, err := time.Parse("20060102150405.000", v); err == nil {
			return t.UTC(), nil
		}
		if t, err := time.Parse("20060102150405", v); err == nil {
			return t.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("salesforce: %s log TIMESTAMP %q is not yyyyMMddHHmmss.SSS", r["EVENT_TYPE"], v)
	}
	return time.Time{}, fmt.Errorf("salesforce: %s log row has no TIMESTAMP_DERIVED or TIMESTAMP", r["EVENT_TYPE"])
}

// id is a hash of the row's columns: log rows have no id of their own
// (REQUEST_ID is shared by every event of one transaction), and the same row
// read again (an overlap re-read, or the daily file after the hourly ones)
// gets the same id, so dedup drops it.
func (r elfRow) id() string {
	canon := make(map[string]string, len(r))
	for k, v := range r {
		if k != ResolvedAppField {
			canon[k] = v
		}
	}
	b, _ := json.Marshal(canon)
	return "elf:" + hashID(b)[1:]
}

func (r elfRow) get(cols ...string) string {
	for _, c := range cols {
		if v := usable(r[c]); v != "" {
			return v
		}
	}
	return ""
}

// normalizeLogRow maps one event log row. Every type gives the same
// integration rule (identityOf), the user, client IP and login key; what
// was done and how much depends on the type.
func normalizeLogRow(r elfRow, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := r.time()
	if err != nil {
		return nil, err
	}
	typ := r["EVENT_TYPE"]
	integ, ok := identityOf(r.get("CONNECTED_APP_ID", ResolvedAppField), r.get("CONNECTED_APP_NAME"), r.get("CLIENT_NAME"), r.get("USER_ID_DERIVED", "USER_ID"))
	if !ok {
		return nil, nil
	}
	credType := "session"
	if usable(r["CONNECTED_APP_ID"]) != "" || usable(r[ResolvedAppField]) != "" {
		credType = "oauth_token"
	}
	ev := schemas.Event{
		EventID:     r.id(),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  schemas.Credential{Type: credType, ID: r.get("LOGIN_KEY", "SESSION_KEY")},
		Principal:   principal(r.get("USER_ID_DERIVED", "USER_ID")),
		TargetApp:   "salesforce",
		Network:     schemas.Network{IP: ip(r["CLIENT_IP"]), UserAgent: r.get("USER_AGENT")},
		Outcome:     "unknown",
		Raw:         raw,
	}
	entity := r.get("ENTITY_NAME", "ENTITY_TYPE")
	op := ""
	switch typ {
	case "API":
		// SOAP and other web-service calls: METHOD_NAME is the call (query, create, update…).
		op = r.get("METHOD_NAME")
		ev.Records = count(r["ROWS_PROCESSED"])
		ev.Bytes = count(r["RESPONSE_SIZE"])
		ev.Outcome = requestStatus(r["REQUEST_STATUS"])
	case "RestApi", "ApexRestApi":
		op = r.get("METHOD")
		ev.Records = count(r["ROWS_PROCESSED"])
		ev.Bytes = count(r["RESPONSE_SIZE"])
		ev.HTTP = httpOf(op, r.get("URI"), r["STATUS_CODE"])
		ev.Outcome = statusOutcome(r["STATUS_CODE"], r["REQUEST_STATUS"])
	case "BulkApi", "BulkApiRequest":
		op = r.get("OPERATION_TYPE")
		ev.Records = count(r["ROWS_PROCESSED"])
		ev.Outcome = requestStatus(r["REQUEST_STATUS"])
	case "BulkApi2":
		op = r.get("OPERATION_TYPE")
		ev.Records = count(r["RECORDS_PROCESSED"])
		if mb, err := strconv.ParseFloat(strings.TrimSpace(r["RESULT_SIZE_MB"]), 64); err == nil && mb > 0 && mb < 8e12 {
			ev.Bytes = int64(math.Round(mb * 1024 * 1024))
		}
		ev.Outcome = jobStatus(r["JOB_STATUS"], r["REQUEST_STATUS"])
	case "ApiTotalUsage":
		op = r.get("HTTP_METHOD")
		if fam := r.get("API_FAMILY"); fam != "" && fam != "REST" {
			op = firstNonEmpty(r.get("API_RESOURCE"), op)
		}
		ev.HTTP = httpOf(r.get("HTTP_METHOD"), r.get("API_RESOURCE"), r["STATUS_CODE"])
		ev.Outcome = statusOutcome(r["STATUS_CODE"], "")
	default:
		ev.Action = schemas.Action{Name: "log:" + typ, Category: schemas.CategoryOther}
		return []schemas.Event{ev}, nil
	}
	ev.Action = schemas.Action{Name: strings.ToLower(typ) + ":" + firstNonEmpty(op, "call"), Category: logCategory(typ, op, r)}
	if entity != "" {
		ev.Resource = schemas.Resource{Type: "sobject", ID: entity}
	} else if job := r.get("JOB_ID"); job != "" {
		ev.Resource = schemas.Resource{Type: "bulk_job", ID: job}
	}
	if ev.Outcome == "failure" && ev.Action.Category == schemas.CategoryAccess {
		if code, _ := strconv.Atoi(strings.TrimSpace(r["STATUS_CODE"])); code == http.StatusUnauthorized {
			ev.Action.Category = schemas.CategoryAuthFailure
		}
	}
	return []schemas.Event{ev}, nil
}

// logCategory: writes (DML methods, POST/PATCH/PUT/DELETE on sobjects, Bulk
// insert/update/upsert/delete jobs) are modify; the rest access.
func logCategory(typ, op string, r elfRow) string {
	switch typ {
	case "RestApi", "ApexRestApi", "ApiTotalUsage":
		switch strings.ToUpper(op) {
		case "POST", "PATCH", "PUT", "DELETE":
			uri := strings.ToLower(r.get("URI", "API_RESOURCE"))
			// A POST to /query or /composite/… reads; to /sobjects/… writes.
			if strings.Contains(uri, "/query") || strings.Contains(uri, "/search") || strings.Contains(uri, "/limits") {
				return schemas.CategoryAccess
			}
			return schemas.CategoryModify
		}
		return schemas.CategoryAccess
	}
	if isWrite(op) {
		return schemas.CategoryModify
	}
	return schemas.CategoryAccess
}

func httpOf(method, uri, status string) *schemas.HTTP {
	code, _ := strconv.Atoi(strings.TrimSpace(status))
	if method == "" && uri == "" && code == 0 {
		return nil
	}
	return &schemas.HTTP{Method: method, Route: uri, StatusCode: code}
}

// statusOutcome reads an HTTP STATUS_CODE, else REQUEST_STATUS.
func statusOutcome(status, reqStatus string) string {
	if code, err := strconv.Atoi(strings.TrimSpace(status)); err == nil && code > 0 {
		if code < 400 {
			return "success"
		}
		return "failure"
	}
	return requestStatus(reqStatus)
}

// requestStatus reads REQUEST_STATUS: S success, F failure, U uncategorized,
// A authorization error, R redirect, N not found.
func requestStatus(v string) string {
	switch strings.TrimSpace(v) {
	case "S", "R":
		return "success"
	case "F", "A", "N":
		return "failure"
	}
	return "unknown"
}

func jobStatus(job, reqStatus string) string {
	switch strings.ToLower(strings.TrimSpace(job)) {
	case "jobcomplete", "uploadcomplete", "inprogress", "open":
		return "success"
	case "failed", "aborted":
		return "failure"
	}
	return requestStatus(reqStatus)
}
