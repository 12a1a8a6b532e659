package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Use is a key's quota use now, for a person (the console).
type Use struct {
	// Quota is the key's quota; zero Rate: unlimited.
	Quota Quota
	// InUse is how much of the burst is spent now (0 … Burst requests):
	// it refills at Quota.Rate.
	InUse float64
	// Throttled is how long a provider's own "too many requests" still
	// holds (0: none).
	Throttled time.Duration
}

// useScript reads a key's GCRA state and throttle with Redis's clock, in
// one read-only step (see takeScript for what they hold).
//
// KEYS[1] -> orderflow:ratelimit:{<key>}
// KEYS[2] -> orderflow:ratelimit:{<key>}:throttle
// Returns {seconds, microseconds, TAT or "", throttled-until ms or ""}.
var useScript = redis.NewScript(`
local t = redis.call("TIME")
return {t[1], t[2], redis.call("GET", KEYS[1]) or "", redis.call("GET", KEYS[2]) or ""}
`)

// Use reads key's quota use now: one round trip for a limited key, none
// for an unlimited one (its throttle is this process's).
func (r *Redis) Use(ctx context.Context, key string) (Use, error) {
	q, ok := r.quotas[key]
	if !ok {
		return Use{Throttled: r.localThrottle(key)}, ctx.Err()
	}
	v, err := useScript.Run(ctx, r.rdb, []string{quotaKey(key), throttleKey(key)}).StringSlice()
	if err != nil {
		return Use{}, fmt.Errorf("ratelimit: use %q: %w", key, err)
	}
	if len(v) != 4 {
		return Use{}, fmt.Errorf("ratelimit: use %q: script answered %d values, want 4", key, len(v))
	}
	sec, err1 := strconv.ParseInt(v[0], 10, 64)
	usec, err2 := strconv.ParseInt(v[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Use{}, fmt.Errorf("ratelimit: use %q: bad TIME %q %q", key, v[0], v[1])
	}
	u := Use{Quota: Quota{Rate: q.Rate, Burst: q.burst()}}
	if v[2] != "" {
		tat, err := strconv.ParseFloat(v[2], 64)
		if err != nil {
			return Use{}, fmt.Errorf("ratelimit: use %q: bad stored state %q", key, v[2])
		}
		const jan1st2017 = 1483228800 // takeScript's epoch
		now := float64(sec-jan1st2017) + float64(usec)/1e6
		u.InUse = min(float64(u.Quota.Burst), max(0, (tat-now)*q.Rate))
	}
	if v[3] != "" {
		until, err := strconv.ParseInt(v[3], 10, 64)
		if err != nil {
			return Use{}, fmt.Errorf("ratelimit: use %q: bad throttle %q", key, v[3])
		}
		if d := time.Duration(until-(sec*1000+usec/1000)) * time.Millisecond; d > 0 {
			u.Throttled = d
		}
	}
	return u, nil
}
