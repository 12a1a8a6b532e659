package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
)

// grantsOver runs one taker per limiter for window, each sleeping the wait it
// is answered, and returns the grants and the time from start to the end.
func grantsOver(tb testing.TB, window time.Duration, key string, lims ...Limiter) (int, time.Duration) {
	tb.Helper()
	ctx := context.Background()
	var granted atomic.Int64
	start := time.Now()
	end := start.Add(window)
	var wg sync.WaitGroup
	errs := make(chan error, len(lims))
	for _, l := range lims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				w, err := l.Take(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				if w == 0 {
					granted.Add(1)
					continue
				}
				if rest := time.Until(end); w > rest {
					w = rest
				}
				time.Sleep(w) // the limiter's own answer, not a guess
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("Take: %v", err)
	}
	return int(granted.Load()), time.Since(start)
}

// checkShare asserts that got grants over elapsed respect q (never above
// burst + rate*elapsed) and use it (at least 0.9 of that for window).
func checkShare(tb testing.TB, q Quota, got int, window, elapsed time.Duration) {
	tb.Helper()
	max := float64(q.Burst) + q.Rate*elapsed.Seconds()
	want := float64(q.Burst) + q.Rate*window.Seconds()
	if float64(got) > max+0.5 {
		tb.Errorf("granted %d in %v, quota allows at most %.1f", got, elapsed, max)
	}
	if float64(got) < 0.9*want {
		tb.Errorf("granted %d in %v, want at least 0.9 of %.1f = %.1f", got, window, want, 0.9*want)
	}
}

func TestRedisBurstThenRate(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, s *redistest.Server) {
		q := Quota{Rate: 20, Burst: 5}
		l := NewRedis(s.Client(t), map[string]Quota{"p": q})
		ctx := context.Background()
		for i := 0; i < q.Burst; i++ {
			w, err := l.Take(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			if w != 0 {
				t.Fatalf("take %d of the burst: wait %v, want 0", i+1, w)
			}
		}
		w, err := l.Take(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if interval := time.Second / 20; w <= 0 || w > interval {
			t.Fatalf("take after the burst: wait %v, want in (0, %v]", w, interval)
		}
		// The bucket is empty now: over the window only the rate is left.
		window := 1500 * time.Millisecond
		got, elapsed := grantsOver(t, window, "p", l)
		checkShare(t, Quota{Rate: q.Rate}, got, window, elapsed)
	})
}

func TestRedisPodsShareOneQuota(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, s *redistest.Server) {
		q := Quota{Rate: 20, Burst: 5}
		quotas := map[string]Quota{"p": q}
		// Two clients, two limiters: two pods over one Redis.
		a := NewRedis(s.Client(t), quotas)
		b := NewRedis(s.Client(t), quotas)
		window := 1500 * time.Millisecond
		got, elapsed := grantsOver(t, window, "p", a, b)
		checkShare(t, q, got, window, elapsed)
	})
}

func TestRedisThrottleSlowsEveryPod(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, s *redistest.Server) {
		quotas := map[string]Quota{"p": {Rate: 1, Burst: 1}, "other": {Rate: 1, Burst: 1}}
		a := NewRedis(s.Client(t), quotas)
		b := NewRedis(s.Client(t), quotas)
		ctx := context.Background()
		const d = 300 * time.Millisecond
		start := time.Now()
		if err := a.Throttle(ctx, "p", d); err != nil {
			t.Fatal(err)
		}
		w, err := b.Take(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if w <= d/2 || w > d {
			t.Fatalf("other pod's Take while throttled: wait %v, want in (%v, %v]", w, d/2, d)
		}
		if w, _ := b.Take(ctx, "other"); w != 0 {
			t.Fatalf("Take of an unthrottled key: wait %v, want 0", w)
		}
		// Wait, as the limiter says, until the throttle is over; with a
		// burst of 1 the first grant proves no quota was consumed meanwhile.
		deadline := start.Add(5 * time.Second)
		for {
			w, err := b.Take(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			if w == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still waiting %v after the throttle of %v", w, d)
			}
			time.Sleep(w)
		}
		if el := time.Since(start); el < d-20*time.Millisecond {
			t.Fatalf("granted after %v, before the throttle of %v ended", el, d)
		}
	})
}

func TestRedisThrottleKeepsTheLonger(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, s *redistest.Server) {
		l := NewRedis(s.Client(t), map[string]Quota{"p": {Rate: 100, Burst: 10}})
		ctx := context.Background()
		if err := l.Throttle(ctx, "p", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := l.Throttle(ctx, "p", 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		w, err := l.Take(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if w < 9*time.Second {
			t.Fatalf("wait %v after Throttle(10s) then Throttle(100ms), want about 10s", w)
		}
	})
}

// countingScripter fails every call and counts them.
type countingScripter struct{ calls atomic.Int64 }

func (c *countingScripter) cmd(ctx context.Context) *redis.Cmd {
	c.calls.Add(1)
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(redis.ErrClosed)
	return cmd
}
func (c *countingScripter) Eval(ctx context.Context, _ string, _ []string, _ ...interface{}) *redis.Cmd {
	return c.cmd(ctx)
}
func (c *countingScripter) EvalSha(ctx context.Context, _ string, _ []string, _ ...interface{}) *redis.Cmd {
	return c.cmd(ctx)
}
func (c *countingScripter) EvalRO(ctx context.Context, _ string, _ []string, _ ...interface{}) *redis.Cmd {
	return c.cmd(ctx)
}
func (c *countingScripter) EvalShaRO(ctx context.Context, _ string, _ []string, _ ...interface{}) *redis.Cmd {
	return c.cmd(ctx)
}
func (c *countingScripter) ScriptExists(ctx context.Context, _ ...string) *redis.BoolSliceCmd {
	c.calls.Add(1)
	cmd := redis.NewBoolSliceCmd(ctx)
	cmd.SetErr(redis.ErrClosed)
	return cmd
}
func (c *countingScripter) ScriptLoad(ctx context.Context, _ string) *redis.StringCmd {
	c.calls.Add(1)
	cmd := redis.NewStringCmd(ctx)
	cmd.SetErr(redis.ErrClosed)
	return cmd
}

var _ scripter = (*countingScripter)(nil)

func TestRedisUnlimitedMakesNoRedisCall(t *testing.T) {
	fake := &countingScripter{}
	l := newRedis(fake, map[string]Quota{"zero": {}, "negative": {Rate: -1, Burst: 5}, "limited": {Rate: 1, Burst: 1}})
	ctx := context.Background()
	for _, key := range []string{"zero", "negative", "absent"} {
		t.Run(key, func(t *testing.T) {
			for i := 0; i < 100; i++ {
				w, err := l.Take(ctx, key)
				if err != nil || w != 0 {
					t.Fatalf("Take = %v, %v; want 0, nil", w, err)
				}
			}
			if err := l.Throttle(ctx, key, time.Minute); err != nil {
				t.Fatal(err)
			}
			if w, err := l.Take(ctx, key); err != nil || w < 59*time.Second {
				t.Fatalf("Take after a local Throttle(1m) = %v, %v; want about 1m", w, err)
			}
		})
	}
	if n := fake.calls.Load(); n != 0 {
		t.Fatalf("unlimited keys made %d Redis calls, want 0", n)
	}
	// The fake is wired: a limited key does call it (and reports its error).
	if _, err := l.Take(ctx, "limited"); err == nil || fake.calls.Load() == 0 {
		t.Fatalf("limited Take: err %v after %d calls, want an error from the fake", err, fake.calls.Load())
	}
}

func TestRedisOneRoundTrip(t *testing.T) {
	s := redistest.Mini(t)
	c := s.Client(t)
	l := NewRedis(c, map[string]Quota{"p": {Rate: 10, Burst: 2}})
	ctx := context.Background()
	if _, err := l.Take(ctx, "p"); err != nil { // loads the script on first use
		t.Fatal(err)
	}
	var n atomic.Int64
	c.AddHook(countHook{&n})
	for i := 0; i < 3; i++ {
		if _, err := l.Take(ctx, "p"); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("3 Takes sent %d commands, want 3", got)
	}
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// TestMatchesRedisRate runs the same requests through redis_rate v10's own
// AllowN and through Take, on a miniredis whose TIME is set by the test, and
// asserts the same grants and waits.
func TestMatchesRedisRate(t *testing.T) {
	for _, q := range []Quota{{Rate: 10, Burst: 3}, {Rate: 2.5, Burst: 1}, {Rate: 0.5, Burst: 4}} {
		t.Run(fmt.Sprintf("rate=%g,burst=%d", q.Rate, q.Burst), func(t *testing.T) {
			s := redistest.Mini(t)
			c := s.Client(t)
			ours := NewRedis(c, map[string]Quota{"p": q})
			theirs := redis_rate.NewLimiter(c)
			lim := redis_rate.Limit{Rate: 1, Period: time.Duration(float64(time.Second) / q.Rate), Burst: q.Burst}
			ctx := context.Background()
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			step := time.Duration(float64(time.Second) / q.Rate / 3)
			var allowed, denied int
			for i := 0; i < 40; i++ {
				s.Mini.SetTime(now)
				res, err := theirs.Allow(ctx, "p", lim)
				if err != nil {
					t.Fatal(err)
				}
				w, err := ours.Take(ctx, "p")
				if err != nil {
					t.Fatal(err)
				}
				if (res.Allowed == 1) != (w == 0) {
					t.Fatalf("step %d: redis_rate allowed=%d, Take wait %v", i, res.Allowed, w)
				}
				if res.Allowed == 1 {
					allowed++
				} else {
					denied++
					if diff := res.RetryAfter - w; diff > time.Millisecond || diff < -time.Millisecond {
						t.Fatalf("step %d: redis_rate retry after %v, Take wait %v", i, res.RetryAfter, w)
					}
				}
				if i%4 != 3 { // bursts of three, then a pause
					now = now.Add(step / 4)
				} else {
					now = now.Add(step * 2)
				}
			}
			if allowed == 0 || denied == 0 {
				t.Fatalf("%d allowed, %d denied: the sequence must exercise both", allowed, denied)
			}
		})
	}
}
