package deliver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// scriptedSink returns the errors in script, one per call, then nil.
type scriptedSink struct {
	script []error
	calls  atomic.Int32
}

func (s *scriptedSink) Name() string { return "scripted" }
func (s *scriptedSink) Send(context.Context, []schemas.Alert) error {
	n := int(s.calls.Add(1)) - 1
	if n < len(s.script) {
		return s.script[n]
	}
	return nil
}

var errDown = errors.New("connection refused")

// synctest gives the bubble a fake clock that gobreaker's time.Now reads, so
// the cool-down passes instantly and exactly.
func TestBreakerOpensAfterConsecutiveFailuresAndHalfOpensAfterCoolDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &scriptedSink{script: []error{errDown, errDown, errDown, errDown}}
		var changes []string
		b, err := NewBreaker(sink, BreakerConfig{Failures: 3, CoolDown: time.Minute}, func(name, from, to string) {
			changes = append(changes, from+">"+to)
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range 3 {
			if err := b.Send(ctx, nil); !errors.Is(err, errDown) {
				t.Fatalf("send %d: %v, want the sink's error", i, err)
			}
		}
		if b.State() != "open" {
			t.Fatalf("state %s after 3 failures, want open", b.State())
		}
		err = b.Send(ctx, nil)
		var ra *RetryAfterError
		if !errors.Is(err, ErrCircuitOpen) || !errors.As(err, &ra) || ra.After != time.Minute {
			t.Fatalf("open circuit: %v, want RetryAfterError(ErrCircuitOpen, 1m)", err)
		}
		if got := sink.calls.Load(); got != 3 {
			t.Fatalf("sink called %d times, want 3 (open circuit must not call it)", got)
		}

		time.Sleep(time.Minute - time.Second)
		if b.State() != "open" {
			t.Fatalf("state %s before cool-down, want open", b.State())
		}
		time.Sleep(time.Second + time.Millisecond)
		if b.State() != "half-open" {
			t.Fatalf("state %s after cool-down, want half-open", b.State())
		}
		// The trial fails (4th scripted error): back to open.
		if err := b.Send(ctx, nil); !errors.Is(err, errDown) {
			t.Fatalf("trial: %v", err)
		}
		if b.State() != "open" {
			t.Fatalf("state %s after failed trial, want open", b.State())
		}
		time.Sleep(time.Minute + time.Millisecond)
		if err := b.Send(ctx, nil); err != nil {
			t.Fatalf("second trial: %v", err)
		}
		if b.State() != "closed" {
			t.Fatalf("state %s after good trial, want closed", b.State())
		}
		want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
		if len(changes) != len(want) {
			t.Fatalf("state changes %v, want %v", changes, want)
		}
		for i := range want {
			if changes[i] != want[i] {
				t.Fatalf("state changes %v, want %v", changes, want)
			}
		}
	})
}

func TestBreakerIgnoresPermanentErrorsAndCancellation(t *testing.T) {
	perm := &PermanentError{Err: errors.New("HTTP 400")}
	sink := &scriptedSink{script: []error{errDown, perm, errDown, context.Canceled, errDown, errDown}}
	b, err := NewBreaker(sink, BreakerConfig{Failures: 2, CoolDown: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b.Send(context.Background(), nil)
		if b.State() != "closed" {
			// The 400 reset the run; the cancellation did not count; so only
			// the 5th call makes two consecutive failures.
			break
		}
	}
	if got := sink.calls.Load(); got != 5 {
		t.Fatalf("circuit opened after %d calls, want 5", got)
	}
	if b.State() != "open" {
		t.Fatalf("state %s, want open", b.State())
	}
}

func TestBreakerConfigValidate(t *testing.T) {
	for _, c := range []BreakerConfig{{Failures: 0, CoolDown: time.Second}, {Failures: 1}} {
		if _, err := NewBreaker(&scriptedSink{}, c, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := DefaultBreakerConfig().Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
}
