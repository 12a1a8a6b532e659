package app

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// redisLog collects go-redis's own log lines.
type redisLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *redisLog) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

// stderrLog is go-redis's default: its lines on standard error.
type stderrLog struct{ l *log.Logger }

func (s stderrLog) Printf(_ context.Context, format string, v ...any) { s.l.Printf(format, v...) }

// The worker's second clients (the batch client of the coalescer, the
// readiness probe's) are made from its client's options. They must be
// clients of their own: sharing the first one's push processor, each
// logged "failed to initialize maintnotifications" at every start.
func TestTwinClientsStartCleanly(t *testing.T) {
	var got redisLog
	redis.SetLogger(&got)
	t.Cleanup(func() { redis.SetLogger(stderrLog{log.New(os.Stderr, "redis: ", log.LstdFlags)}) })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	twins := []redis.UniversalClient{tryOnce(rdb), singleAttempt(rdb)}
	for _, c := range append(twins, rdb) {
		t.Cleanup(func() { _ = c.Close() })
	}
	if len(got.lines) != 0 {
		t.Fatalf("go-redis logged %q making the twin clients", got.lines)
	}
	for i, c := range twins {
		o := c.(*redis.Client).Options()
		if o.PushNotificationProcessor == rdb.Options().PushNotificationProcessor ||
			o.MaintNotificationsConfig == rdb.Options().MaintNotificationsConfig {
			t.Fatalf("twin %d shares its push processor or its notification settings with the worker's client", i)
		}
		if o.MaxRetries > 0 { // go-redis keeps -1 (none) as 0
			t.Fatalf("twin %d retries %d times, want none", i, o.MaxRetries)
		}
	}
}
