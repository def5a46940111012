package broker

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// An attempt's context ends shutdownGrace after the consumer's does, not
// before: a sink retrying inside it keeps going while the consumer runs,
// and a shutdown leaves the batch in hand that long to finish.
func TestRetryAttemptOutlivesShutdownByTheGraceOnly(t *testing.T) {
	defer func(g time.Duration) { shutdownGrace = g }(shutdownGrace)
	shutdownGrace = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var aliveAfterCancel bool
	var ended time.Duration
	err := retry(ctx, slog.New(slog.DiscardHandler), func(actx context.Context) error {
		time.Sleep(50 * time.Millisecond) // the consumer runs: the attempt must be alive
		if actx.Err() != nil {
			t.Fatal("attempt context ended while the consumer ran")
		}
		start := time.Now()
		cancel()
		time.Sleep(20 * time.Millisecond)
		aliveAfterCancel = actx.Err() == nil
		<-actx.Done()
		ended = time.Since(start)
		return errors.New("gave up")
	})
	if err == nil || !aliveAfterCancel {
		t.Fatalf("err %v, attempt alive right after shutdown %v: want the grace to apply", err, aliveAfterCancel)
	}
	if ended < shutdownGrace {
		t.Fatalf("attempt ended %s after shutdown, before the %s grace", ended, shutdownGrace)
	}
}
