package deliver

import (
	"fmt"
	"regexp"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// DefaultEventsTable is the ClickHouse table schemas/migrations creates.
const DefaultEventsTable = "events"

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// ValidateTable checks a [database.]table name for EvidenceQuery; it is
// spliced into SQL unquoted, so only identifiers pass.
func ValidateTable(name string) error {
	if !tableName.MatchString(name) {
		return fmt.Errorf("table %q: want an identifier like events or tokenwatch.events", name)
	}
	return nil
}

// EvidenceQuery is the pivot an analyst pastes into ClickHouse to see an
// alert's evidence in time order (see schemas.EvidenceQuery). With maxLen > 0
// only as many ids as keep the query within maxLen bytes are included (Slack
// caps a text block); included says how many. table must pass ValidateTable.
func EvidenceQuery(table string, eventIDs []string, maxLen int) (query string, included int) {
	return schemas.EvidenceQuery(table, eventIDs, maxLen)
}

// QuoteString writes s as a ClickHouse single-quoted string literal.
func QuoteString(s string) string { return schemas.QuoteString(s) }
