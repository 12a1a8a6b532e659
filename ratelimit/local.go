package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Local is a Limiter for a single process: one golang.org/x/time/rate
// limiter per key. N processes each with a Local send N times the quota; use
// Redis for a fleet.
type Local struct {
	now      func() time.Time
	limiters map[string]*rate.Limiter // nil entry: unlimited; read-only after NewLocal

	mu        sync.Mutex
	throttled map[string]time.Time // key -> throttled until
}

// NewLocal returns a Local holding quotas (key -> quota). Keys absent from
// quotas, and quotas with Rate <= 0, are unlimited.
func NewLocal(quotas map[string]Quota) *Local {
	l := &Local{
		now:       time.Now,
		limiters:  make(map[string]*rate.Limiter, len(quotas)),
		throttled: make(map[string]time.Time),
	}
	for k, q := range quotas {
		if q.unlimited() {
			continue
		}
		l.limiters[k] = rate.NewLimiter(rate.Limit(q.Rate), q.burst())
	}
	return l
}

// Take implements Limiter. A denied request is not counted: its reservation
// is cancelled at once.
func (l *Local) Take(ctx context.Context, key string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := l.now()
	l.mu.Lock()
	until, ok := l.throttled[key]
	if ok && !until.After(now) {
		delete(l.throttled, key)
		ok = false
	}
	l.mu.Unlock()
	if ok {
		return until.Sub(now), nil
	}
	lim := l.limiters[key]
	if lim == nil {
		return 0, nil
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() { // cannot happen with burst >= 1; answer the slowest honest wait
		return time.Duration(float64(time.Second) / float64(lim.Limit())), nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	return 0, nil
}

// Throttle implements Limiter, for this process only.
func (l *Local) Throttle(ctx context.Context, key string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	until := l.now().Add(d)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.throttled[key]; !ok || cur.Before(until) {
		l.throttled[key] = until
	}
	return nil
}
