package redisproc_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/redisproc"
)

// required: a missing redis-server or redis-sentinel fails instead of
// skipping (CI).
func required() bool { return os.Getenv("REQUIRE_REDIS") == "1" || os.Getenv("CI") == "true" }

func skipMissing(tb testing.TB, err error) {
	tb.Helper()
	if (errors.Is(err, redisproc.ErrNotInstalled) || errors.Is(err, redisproc.ErrSentinelNotInstalled)) && !required() {
		tb.Skipf("%v (set REQUIRE_REDIS=1 to make this a failure)", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// TestSentinelFailover: a primary, a replica and three Sentinels on
// loopback; a write to the primary is on the replica; once the primary is
// killed, every Sentinel names the replica as primary within a few
// seconds, and the promoted replica takes writes through a failover client.
func TestSentinelFailover(t *testing.T) {
	ctx := context.Background()
	primary, err := redisproc.Start(t.TempDir())
	skipMissing(t, err)
	t.Cleanup(primary.Stop)
	replica, err := redisproc.StartReplica(t.TempDir(), primary)
	skipMissing(t, err)
	t.Cleanup(replica.Stop)
	cfg := redisproc.SentinelConfig{Master: "m", Primary: primary.Addr, Quorum: 2,
		DownAfter: time.Second, FailoverTimeout: 5 * time.Second}
	var sentinels []*redisproc.Sentinel
	var addrs []string
	for i := 0; i < 3; i++ {
		s, err := redisproc.StartSentinel(t.TempDir(), cfg)
		skipMissing(t, err)
		t.Cleanup(s.Stop)
		sentinels = append(sentinels, s)
		addrs = append(addrs, s.Addr)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := redisproc.WaitSentinels(wctx, cfg.Master, sentinels, 1); err != nil {
		t.Fatal(err)
	}

	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: cfg.Master, SentinelAddrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v: the replica did not acknowledge", n, err)
	}

	killed := time.Now()
	primary.Stop()
	for _, s := range sentinels {
		var got string
		for time.Since(killed) < 20*time.Second {
			if got, err = s.Primary(ctx, cfg.Master); err == nil && got == replica.Addr {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != replica.Addr {
			t.Fatalf("sentinel %s names %q (%v) 20 s after the primary was killed, want the replica %s", s.Addr, got, err, replica.Addr)
		}
	}
	t.Logf("every sentinel named the replica primary %s after the kill", time.Since(killed).Round(10*time.Millisecond))
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "before" {
		t.Fatalf("GET k after the failover = %q, %v; want the replicated write", v, err)
	}
	if err := c.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}
}
