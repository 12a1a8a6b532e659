package orders

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// epochKey holds the Redis server run id orderflow last saw and since when.
const epochKey = "orderflow:redis-epoch"

// epochScript notes a new Redis server run (a restart, or a failover to
// another server) and returns since when the current one has been seen,
// in one round trip: it reads the run id itself (INFO server).
//
// KEYS[1] -> the epoch hash (fields run, since)
// ARGV[1] -> now, unix ms
// Returns since (unix ms): "0" when no earlier run was ever noted, or
// when the server reports no run id (miniredis).
var epochScript = redis.NewScript(`
local info = redis.pcall('INFO', 'server')
if type(info) ~= 'string' then return '0' end
local now = string.match(info, 'run_id:(%w+)')
if not now then return '0' end
local run = redis.call('HGET', KEYS[1], 'run')
if run == now then return redis.call('HGET', KEYS[1], 'since') end
local since = ARGV[1]
if not run then since = '0' end
redis.call('HSET', KEYS[1], 'run', now, 'since', since)
return since
`)

// Epoch returns since when the Redis server now answering has been the one
// orderflow writes to: after a restart (AOF may have lost its last second of
// writes) or a failover (asynchronous replication may have lost more), the
// time orderflow first saw the new server. Zero when there was no such
// change, or when the server does not report a run id (miniredis).
func (s *Store) Epoch(ctx context.Context) (time.Time, error) {
	return parseEpoch(epochScript.Run(ctx, s.rdb, []string{epochKey}, s.cfg.Now().UnixMilli()))
}

// parseEpoch reads epochScript's answer.
func parseEpoch(cmd *redis.Cmd) (time.Time, error) {
	since, err := cmd.Text()
	if err != nil {
		return time.Time{}, fmt.Errorf("orders: redis epoch: %w", err)
	}
	ms, err := strconv.ParseInt(since, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}, nil //nolint:nilerr // an unreadable epoch is no known change
	}
	return time.UnixMilli(ms), nil
}

// GetWithEpoch is Get and Epoch in one round trip: what a step that may
// soon need to trust a provider's "not found" reads first. (A record of an
// earlier release's form takes Get's second round trip.)
func (s *Store) GetWithEpoch(ctx context.Context, k Key) (*Record, time.Time, error) {
	keys, args := []string{epochKey}, []any{s.cfg.Now().UnixMilli()}
	pipe := s.rdb.Pipeline()
	stored := pipe.Get(ctx, RecordKey(k))
	since := epochScript.EvalSha(ctx, pipe, keys, args...)
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	if redis.HasErrorPrefix(since.Err(), "NOSCRIPT") {
		since = epochScript.Run(ctx, s.rdb, keys, args...)
	}
	epoch, err := parseEpoch(since)
	if err != nil {
		return nil, time.Time{}, err
	}
	v, err := stored.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, time.Time{}, ErrNotFound
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		r, err := s.Get(ctx, k)
		return r, epoch, err
	case err != nil:
		return nil, time.Time{}, fmt.Errorf("orders: get %s: %w", k, err)
	}
	r, err := decodeRecord(k, v)
	if err != nil {
		return nil, time.Time{}, err
	}
	return r, epoch, nil
}
