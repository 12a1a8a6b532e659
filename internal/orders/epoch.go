package orders

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// epochKey holds the Redis server run id orderflow last saw and since when.
const epochKey = "orderflow:redis-epoch"

// epochScript notes a new Redis server run (a restart, or a failover to
// another server) and returns since when the current one has been seen.
//
// KEYS[1] -> the epoch hash (fields run, since)
// ARGV[1] -> the server's run id now
// ARGV[2] -> now, unix ms
// Returns since (unix ms): "0" when no earlier run was ever noted.
var epochScript = redis.NewScript(`
local run = redis.call('HGET', KEYS[1], 'run')
if run == ARGV[1] then return redis.call('HGET', KEYS[1], 'since') end
local since = ARGV[2]
if not run then since = '0' end
redis.call('HSET', KEYS[1], 'run', ARGV[1], 'since', since)
return since
`)

// Epoch returns since when the Redis server now answering has been the one
// orderflow writes to: after a restart (AOF may have lost its last second of
// writes) or a failover (asynchronous replication may have lost more), the
// time orderflow first saw the new server. Zero when there was no such
// change, or when the server does not report a run id (miniredis).
func (s *Store) Epoch(ctx context.Context) (time.Time, error) {
	info, err := s.rdb.Info(ctx, "server").Result()
	var refused redis.Error
	if errors.As(err, &refused) {
		return time.Time{}, nil // a server without INFO server (miniredis) has no run id
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("orders: redis epoch: %w", err)
	}
	run := infoField(info, "run_id")
	if run == "" {
		return time.Time{}, nil
	}
	since, err := epochScript.Run(ctx, s.rdb, []string{epochKey}, run, s.cfg.Now().UnixMilli()).Text()
	if err != nil {
		return time.Time{}, fmt.Errorf("orders: redis epoch: %w", err)
	}
	ms, err := strconv.ParseInt(since, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}, nil //nolint:nilerr // an unreadable epoch is no known change
	}
	return time.UnixMilli(ms), nil
}

// infoField returns a field of an INFO answer.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
