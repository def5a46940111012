package schemas

import (
	"strconv"
	"strings"
)

// EvidenceQuery is the pivot an analyst pastes into ClickHouse to see an
// alert's evidence in time order:
//
//	SELECT * FROM events WHERE event_id IN ('e1', 'e2') ORDER BY time_ms, event_id
//
// Event ids come from vendor data, so each is a properly escaped string
// literal. With maxLen > 0 only as many ids as keep the query within maxLen
// bytes are included; included says how many. It returns "" when there are no
// ids. table is spliced in unquoted: callers pass an identifier.
func EvidenceQuery(table string, eventIDs []string, maxLen int) (query string, included int) {
	if len(eventIDs) == 0 {
		return "", 0
	}
	head := "SELECT * FROM " + table + " WHERE event_id IN ("
	const tail = ") ORDER BY time_ms, event_id"
	var b strings.Builder
	b.WriteString(head)
	for i, id := range eventIDs {
		lit := QuoteString(id)
		sep := ""
		if i > 0 {
			sep = ", "
		}
		if maxLen > 0 && i > 0 && b.Len()+len(sep)+len(lit)+len(tail) > maxLen {
			break
		}
		b.WriteString(sep)
		b.WriteString(lit)
		included++
	}
	b.WriteString(tail)
	return b.String(), included
}

// QuoteString writes s as a ClickHouse single-quoted string literal,
// escaping backslashes, quotes and control characters.
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if r < 0x20 {
				b.WriteString(`\x` + strconv.FormatInt(int64(r)|0x100, 16)[1:])
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
