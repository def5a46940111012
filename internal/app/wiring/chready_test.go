package wiring

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
)

// A server killed between the readiness ping and the schema read (CI saw
// "read schema_migrations: connection reset by peer" in the fault suite) is an
// outage like a refused ping, at every step; a server exception is an answer
// and stops the start.
func TestUnansweredClassifiesEveryStep(t *testing.T) {
	cfg := clickhouse.Config{Addr: []string{"127.0.0.1:9000"}, Database: "tokenwatch"}
	reset := fmt.Errorf("query processing: failed to read first block packet: read tcp: %w", syscall.ECONNRESET)
	denied := fmt.Errorf("query: %w", &ch.Exception{Code: 497, Name: "ACCESS_DENIED", Message: "not enough privileges"})
	for _, step := range []string{"ping", "read system.tables", "read schema_migrations"} {
		for _, tc := range []struct {
			err  error
			down bool
		}{{reset, true}, {denied, false}} {
			got := unanswered(cfg, step, tc.err)
			if errors.Is(got, errClickHouseUnreachable) != tc.down {
				t.Errorf("%s: %v: unreachable=%v, want %v", step, tc.err, !tc.down, tc.down)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("%s: %v does not wrap its cause", step, got)
			}
		}
	}
}
