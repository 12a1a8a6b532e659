// Package ratelimit holds each provider's request quota: a GCRA in Redis
// (Redis's own clock, one round trip, shared by every pod) for the fleet, and
// golang.org/x/time/rate for a single process. Both honour a provider's own
// "too many requests" answer recorded with Throttle.
//
// A limiter never blocks: Take answers how long to wait, and the caller
// decides whether to sleep or to defer the work (see package gate).
package ratelimit

import (
	"context"
	"math"
	"time"
)

// Quota is a key's request quota.
type Quota struct {
	// Rate is the sustained rate in requests per second. Rate <= 0 (or NaN,
	// or +Inf) means unlimited: Take always answers 0 and never touches Redis.
	Rate float64
	// Burst is how many requests may go at once after a quiet period.
	// Burst < 1 means 1.
	Burst int
}

// unlimited reports whether q imposes no limit.
func (q Quota) unlimited() bool {
	return !(q.Rate > 0) || math.IsInf(q.Rate, 1)
}

// burst is q.Burst with its zero value applied.
func (q Quota) burst() int {
	if q.Burst < 1 {
		return 1
	}
	return q.Burst
}

// Limiter holds each key's (provider's) quota. Implementations are safe for
// concurrent use. A key with no quota is unlimited.
type Limiter interface {
	// Take asks for one request for key now. wait == 0: go (the request is
	// counted). wait > 0: not allowed before wait has passed (nothing
	// counted). It also honours a Throttle in force.
	Take(ctx context.Context, key string) (wait time.Duration, err error)
	// Throttle records a provider's own "too many requests": every Take for
	// key, in every process sharing the limiter, answers a wait until d has
	// passed. A shorter Throttle never cuts a longer one short.
	Throttle(ctx context.Context, key string, d time.Duration) error
}

var (
	_ Limiter = (*Redis)(nil)
	_ Limiter = (*Local)(nil)
)

// Wait blocks until l grants one request for key, sleeping the waits it
// answers; it returns early with the context's error, or the limiter's.
func Wait(ctx context.Context, l Limiter, key string) error {
	for {
		wait, err := l.Take(ctx, key)
		if err != nil || wait <= 0 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ArrivalSpread is how much closer together than granted two requests may
// reach the provider: connection set-up, scheduling on a busy host, a
// Redis pause between two grants. Headroom leaves room for it.
const ArrivalSpread = 100 * time.Millisecond

// Headroom returns the quota to configure workers with against a
// provider's quota p: the same rate (no throughput is lost) and a burst
// smaller by the requests one ArrivalSpread holds at that rate, at least 1.
// Grants are made at Redis's time but counted by the provider when they
// arrive; without it, requests delayed unequally arrive bunched and a full
// bucket counts them over.
func Headroom(p Quota) Quota {
	return Quota{Rate: p.Rate, Burst: max(1, p.Burst-int(math.Ceil(p.Rate*ArrivalSpread.Seconds())))}
}
