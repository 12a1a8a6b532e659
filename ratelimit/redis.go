package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyPrefix starts every Redis key the limiter writes. A key's quota state is
// KeyPrefix+"{key}" and its throttle KeyPrefix+"{key}:throttle"; the braces
// are a Cluster hash tag, so both land in one slot and one script.
const KeyPrefix = "orderflow:ratelimit:"

// scripter is what Redis needs of a go-redis client: running scripts
// (EVALSHA, falling back to EVAL). A client, ring, cluster or fake fits.
type scripter interface {
	Eval(ctx context.Context, script string, keys []string, args ...interface{}) *redis.Cmd
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...interface{}) *redis.Cmd
	EvalRO(ctx context.Context, script string, keys []string, args ...interface{}) *redis.Cmd
	EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...interface{}) *redis.Cmd
	ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd
	ScriptLoad(ctx context.Context, script string) *redis.StringCmd
}

// takeScript is the GCRA of github.com/go-redis/redis_rate/v10 (v10.0.1,
// MIT; from rwz/redis-gcra), unchanged in its arithmetic and its stored value
// (the theoretical arrival time in seconds since 2017-01-01 on Redis's
// clock), preceded by the throttle check: a throttle in force answers its
// wait before any quota is consumed. redis_rate's own Go API cannot be used
// here: it runs its script on its own, so the throttle check would cost a
// second round trip or consume quota while throttled. TestMatchesRedisRate
// holds the two to the same answers.
//
// KEYS[1] -> orderflow:ratelimit:{<key>}            (GCRA TAT, float seconds since 2017-01-01)
// KEYS[2] -> orderflow:ratelimit:{<key>}:throttle   (throttled until, ms since the Unix epoch, Redis clock)
// ARGV[1] -> burst
// ARGV[2] -> rate (requests per period)
// ARGV[3] -> period, seconds (float)
// ARGV[4] -> cost (requests asked for)
//
// Returns {allowed (0|1), wait in seconds as a string (0 when allowed), why ("ok"|"rate"|"throttle")}.
var takeScript = redis.NewScript(`
redis.replicate_commands()

local t = redis.call("TIME")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local until_ms = tonumber(redis.call("GET", KEYS[2]) or "0") or 0
if until_ms > now_ms then
  return {0, tostring((until_ms - now_ms) / 1000), "throttle"}
end

local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst

local jan_1_2017 = 1483228800
local now = (tonumber(t[1]) - jan_1_2017) + (tonumber(t[2]) / 1000000)

local tat = redis.call("GET", KEYS[1])
if not tat then
  tat = now
else
  tat = tonumber(tat)
end
tat = math.max(tat, now)

local new_tat = tat + increment
local allow_at = new_tat - burst_offset
local diff = now - allow_at

if diff < 0 then
  return {0, tostring(diff * -1), "rate"}
end

local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", KEYS[1], new_tat, "EX", math.ceil(reset_after))
end
return {1, "0", "ok"}
`)

// throttleScript records a throttle, keeping the later of the one in force
// and the new one. The value is compared with TIME by takeScript, so the
// throttle ends on Redis's clock even where key expiry lags (miniredis only
// expires keys on FastForward); the PX only collects the key.
//
// KEYS[1] -> orderflow:ratelimit:{<key>}:throttle
// ARGV[1] -> throttle duration, ms (integer > 0)
//
// Returns the throttled-until time, ms since the Unix epoch.
var throttleScript = redis.NewScript(`
redis.replicate_commands()

local t = redis.call("TIME")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local d = tonumber(ARGV[1])
local until_ms = now_ms + d
local cur = tonumber(redis.call("GET", KEYS[1]) or "0") or 0
if cur < until_ms then
  redis.call("SET", KEYS[1], string.format("%d", until_ms), "PX", d)
  return until_ms
end
return cur
`)

// Redis is a Limiter shared by every process using the same Redis: a GCRA per
// key on Redis's clock, checked with the key's throttle in one script call
// (one round trip).
type Redis struct {
	rdb    scripter
	now    func() time.Time
	quotas map[string]Quota // limited keys only; read-only after NewRedis

	mu        sync.Mutex
	throttled map[string]time.Time // unlimited keys: this process's throttles
}

// NewRedis returns a Redis limiter holding quotas (key -> quota) in rdb.
// Keys absent from quotas, and quotas with Rate <= 0, are unlimited: Take
// answers 0 without a Redis call, and Throttle on them holds for this process
// only.
func NewRedis(rdb redis.UniversalClient, quotas map[string]Quota) *Redis {
	return newRedis(rdb, quotas)
}

func newRedis(rdb scripter, quotas map[string]Quota) *Redis {
	r := &Redis{
		rdb:       rdb,
		now:       time.Now,
		quotas:    make(map[string]Quota, len(quotas)),
		throttled: make(map[string]time.Time),
	}
	for k, q := range quotas {
		if !q.unlimited() {
			r.quotas[k] = q
		}
	}
	return r
}

func quotaKey(key string) string    { return KeyPrefix + "{" + key + "}" }
func throttleKey(key string) string { return KeyPrefix + "{" + key + "}:throttle" }

// Take implements Limiter.
func (r *Redis) Take(ctx context.Context, key string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	q, ok := r.quotas[key]
	if !ok {
		return r.localThrottle(key), nil
	}
	// One request costs one emission interval of 1/Rate seconds: a rate of
	// one request per period of 1/Rate seconds keeps fractional rates exact.
	period := 1 / q.Rate
	v, err := takeScript.Run(ctx, r.rdb, []string{quotaKey(key), throttleKey(key)},
		q.burst(), 1, period, 1).Slice()
	if err != nil {
		return 0, fmt.Errorf("ratelimit: take %q: %w", key, err)
	}
	if len(v) != 3 {
		return 0, fmt.Errorf("ratelimit: take %q: script answered %d values, want 3", key, len(v))
	}
	if allowed, _ := v[0].(int64); allowed == 1 {
		return 0, nil
	}
	s, _ := v[1].(string)
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("ratelimit: take %q: bad wait %q: %w", key, s, err)
	}
	wait := time.Duration(secs * float64(time.Second))
	if wait <= 0 { // denied, but rounding ate the wait: never answer "go" for a denial
		wait = time.Millisecond
	}
	return wait, nil
}

// Throttle implements Limiter: for a limited key, in Redis for every
// process; for an unlimited key, in this process only.
func (r *Redis) Throttle(ctx context.Context, key string, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if _, ok := r.quotas[key]; !ok {
		r.mu.Lock()
		defer r.mu.Unlock()
		until := r.now().Add(d)
		if cur, ok := r.throttled[key]; !ok || cur.Before(until) {
			r.throttled[key] = until
		}
		return ctx.Err()
	}
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if err := throttleScript.Run(ctx, r.rdb, []string{throttleKey(key)}, ms).Err(); err != nil {
		return fmt.Errorf("ratelimit: throttle %q: %w", key, err)
	}
	return nil
}

// localThrottle is the wait of an unlimited key's throttle in this process.
func (r *Redis) localThrottle(key string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.throttled[key]
	if !ok {
		return 0
	}
	if d := until.Sub(r.now()); d > 0 {
		return d
	}
	delete(r.throttled, key)
	return 0
}
