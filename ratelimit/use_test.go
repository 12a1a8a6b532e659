package ratelimit

import (
	"context"
	"testing"
	"time"

	"orderflow/internal/redistest"
)

// TestRedisUse: the burst spent after some takes, and a throttle in force.
func TestRedisUse(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		l := NewRedis(s.Client(t), map[string]Quota{"p": {Rate: 0.01, Burst: 5}})
		u, err := l.Use(ctx, "p")
		if err != nil || u.InUse != 0 || u.Quota.Burst != 5 || u.Throttled != 0 {
			t.Fatalf("fresh Use = %+v, %v; want nothing in use of 5", u, err)
		}
		for range 3 {
			if w, err := l.Take(ctx, "p"); err != nil || w != 0 {
				t.Fatalf("Take = %v, %v", w, err)
			}
		}
		u, err = l.Use(ctx, "p")
		// At 0.01/s, 3 requests take 300 s to refill: still ≈ 3 a second later.
		if err != nil || u.InUse < 2.9 || u.InUse > 3.001 {
			t.Fatalf("after 3 takes Use = %+v, %v; want ≈3 in use", u, err)
		}
		if err := l.Throttle(ctx, "p", time.Minute); err != nil {
			t.Fatal(err)
		}
		u, err = l.Use(ctx, "p")
		if err != nil || u.Throttled < 50*time.Second || u.Throttled > time.Minute {
			t.Fatalf("throttled Use = %+v, %v; want ≈1m of throttle", u, err)
		}
		u, err = l.Use(ctx, "unlimited")
		if err != nil || u.Quota.Rate != 0 || u.InUse != 0 {
			t.Fatalf("unlimited Use = %+v, %v", u, err)
		}
	})
}
