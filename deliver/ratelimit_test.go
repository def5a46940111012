package deliver

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestRateLimitedPacesAlertsNotCalls(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RateLimitConfig
		batches []int // alerts per Send
		want    time.Duration
	}{
		{"burst is free", RateLimitConfig{PerSecond: 10, Burst: 5}, []int{5}, 0},
		{"steady one by one", RateLimitConfig{PerSecond: 10, Burst: 1}, []int{1, 1, 1, 1, 1}, 400 * time.Millisecond},
		{"a batch counts each alert", RateLimitConfig{PerSecond: 2, Burst: 1}, []int{3}, time.Second},
		{"batch larger than burst waits in steps", RateLimitConfig{PerSecond: 4, Burst: 2}, []int{6}, time.Second},
		{"default burst is ceil(rate)", RateLimitConfig{PerSecond: 1.5}, []int{2, 1}, time.Second / 3 * 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := &scriptedSink{}
				s, err := NewRateLimited(inner, tt.cfg)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				for _, n := range tt.batches {
					if err := s.Send(context.Background(), make([]schemas.Alert, n)); err != nil {
						t.Fatal(err)
					}
				}
				got := time.Since(start)
				if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("took %v, want %v", got, tt.want)
				}
				if int(inner.calls.Load()) != len(tt.batches) {
					t.Errorf("inner sink called %d times, want %d", inner.calls.Load(), len(tt.batches))
				}
			})
		})
	}
}

func TestRateLimitedGivesUpBeforeTheDeadlineWithoutSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &scriptedSink{}
		s, _ := NewRateLimited(inner, RateLimitConfig{PerSecond: 1, Burst: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := s.Send(ctx, make([]schemas.Alert, 2)); err == nil || IsPermanent(err) {
			t.Fatalf("err = %v, want a retryable error", err)
		}
		if inner.calls.Load() != 0 {
			t.Fatal("sent despite the limit")
		}
	})
}

func TestNewRateLimitedZeroIsUnlimited(t *testing.T) {
	inner := &scriptedSink{}
	s, err := NewRateLimited(inner, RateLimitConfig{})
	if err != nil || s != Sink(inner) {
		t.Fatalf("got %v, %v; want the sink itself", s, err)
	}
	if _, err := NewRateLimited(inner, RateLimitConfig{PerSecond: -1}); err == nil {
		t.Fatal("negative rate accepted")
	}
}
