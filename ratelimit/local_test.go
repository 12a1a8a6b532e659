package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a time source the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newLocal(tb testing.TB, quotas map[string]Quota) (*Local, *fakeClock) {
	tb.Helper()
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLocal(quotas)
	l.now = clk.Now
	return l, clk
}

func mustTake(tb testing.TB, l Limiter, key string) time.Duration {
	tb.Helper()
	w, err := l.Take(context.Background(), key)
	if err != nil {
		tb.Fatalf("Take(%q): %v", key, err)
	}
	return w
}

func TestLocalBurstThenRate(t *testing.T) {
	l, clk := newLocal(t, map[string]Quota{"p": {Rate: 10, Burst: 3}})
	for i := 0; i < 3; i++ {
		if w := mustTake(t, l, "p"); w != 0 {
			t.Fatalf("take %d of the burst: wait %v, want 0", i+1, w)
		}
	}
	w := mustTake(t, l, "p")
	if w != 100*time.Millisecond {
		t.Fatalf("after the burst: wait %v, want 100ms", w)
	}
	// Denied takes are not counted: asking again and again changes nothing.
	for i := 0; i < 5; i++ {
		if w2 := mustTake(t, l, "p"); w2 != w {
			t.Fatalf("repeated denied take %d: wait %v, want %v (a denial must not be counted)", i, w2, w)
		}
	}
	clk.Add(w)
	if w := mustTake(t, l, "p"); w != 0 {
		t.Fatalf("after waiting: wait %v, want 0", w)
	}
	// Then one per 100ms, never more.
	got := 0
	for i := 0; i < 100; i++ { // 1s in 10ms steps
		clk.Add(10 * time.Millisecond)
		if mustTake(t, l, "p") == 0 {
			got++
		}
	}
	if got != 10 {
		t.Fatalf("granted %d in 1s at 10/s, want 10", got)
	}
}

func TestLocalZeroValues(t *testing.T) {
	tests := []struct {
		name  string
		q     Quota
		key   string
		takes int // consecutive zero waits expected before a wait
	}{
		{"burst zero means one", Quota{Rate: 1}, "p", 1},
		{"burst negative means one", Quota{Rate: 1, Burst: -3}, "p", 1},
		{"rate zero is unlimited", Quota{Rate: 0, Burst: 1}, "p", -1},
		{"rate negative is unlimited", Quota{Rate: -5}, "p", -1},
		{"absent key is unlimited", Quota{Rate: 1, Burst: 1}, "other", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newLocal(t, map[string]Quota{"p": tt.q})
			n := 0
			for ; n < 1000; n++ {
				if mustTake(t, l, tt.key) != 0 {
					break
				}
			}
			if tt.takes < 0 && n != 1000 {
				t.Fatalf("unlimited: waited after %d takes", n)
			}
			if tt.takes >= 0 && n != tt.takes {
				t.Fatalf("granted %d at once, want %d", n, tt.takes)
			}
		})
	}
}

func TestLocalThrottle(t *testing.T) {
	l, clk := newLocal(t, map[string]Quota{"p": {Rate: 100, Burst: 1}})
	ctx := context.Background()
	if err := l.Throttle(ctx, "p", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Throttle(ctx, "p", time.Second); err != nil { // shorter: ignored
		t.Fatal(err)
	}
	if w := mustTake(t, l, "p"); w != 2*time.Second {
		t.Fatalf("throttled: wait %v, want 2s", w)
	}
	if w := mustTake(t, l, "unlimited"); w != 0 {
		t.Fatalf("other key: wait %v, want 0", w)
	}
	clk.Add(1500 * time.Millisecond)
	if w := mustTake(t, l, "p"); w != 500*time.Millisecond {
		t.Fatalf("throttled, 1.5s later: wait %v, want 500ms", w)
	}
	clk.Add(500 * time.Millisecond)
	// The throttle consumed nothing: the whole burst is there.
	if w := mustTake(t, l, "p"); w != 0 {
		t.Fatalf("after the throttle: wait %v, want 0", w)
	}
}

func TestLocalCancelledContext(t *testing.T) {
	l, _ := newLocal(t, map[string]Quota{"p": {Rate: 1, Burst: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Take(ctx, "p"); err == nil {
		t.Fatal("Take with a cancelled context: no error")
	}
	if w := mustTake(t, l, "p"); w != 0 {
		t.Fatalf("a cancelled Take consumed quota: wait %v", w)
	}
}
