package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers/sim"

	"github.com/hibiken/asynq"
)

// TestRedisOutage: the worker outlives its Redis going away (healthy, not
// ready), and when Redis comes back (AOF replayed) it resumes; no order is
// lost or created twice.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Real(t, "appendonly yes", "appendfsync always")
	s := testkit.StartSim(t, sim.Config{Clock: sim.NewAccelClock(3600), Timeline: testkit.FastTimeline,
		Latency: 50 * time.Millisecond})
	env := map[string]string{
		"REDIS_URL": srv.URL(), "ADMIN_ADDR": "127.0.0.1:0",
		"XPORTCN_BASE_URL": s.XportcnURL(), "XPORTCN_ACCESS_KEY": "sim-ak", "XPORTCN_ACCESS_SECRET": "sim-secret-x",
		"DEPAL_BASE_URL": s.DepalURL(), "DEPAL_APP_KEY": "simapp", "DEPAL_APP_SECRET": "sim-secret-d",
		"XPORTCN_RATE": "1000", "XPORTCN_BURST": "1000", "DEPAL_RATE": "1000", "DEPAL_BURST": "1000", // the ceiling: not the subject here
		"POLL_SCHEDULE": "200ms,500ms,1s", "TEST_TIMINGS": "1", "TASK_CHECK_INTERVAL": "100ms",
		// The restart below changes the Redis server: "not found" is
		// distrusted for the settle window after it (default 2m).
		"CREATE_SETTLE_WINDOW": settleWindow.String(),
		"RETRY_BACKOFF_MAX":    retryBackoffMax.String(),
	}
	settings, err := app.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan app.Info, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, settings, testLogger(), func(i app.Info) { infoc <- i }) }()
	var info app.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	status := func(path string) int {
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(info.AdminURL + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	st := orders.NewStore(rdb, orders.Config{})
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	batch := testkit.Batch("outage", 40)
	for _, p := range batch {
		if _, err := pipeline.Submit(context.Background(), st, client, insp, p.Req); err != nil {
			t.Fatal(err)
		}
	}
	// Let the pipeline get going, then take Redis away mid-flight.
	testkit.WaitFor(t, 20*time.Second, "some orders created", func() bool {
		c := s.Counters()
		return c.OrdersCreated["xportcn"]+c.OrdersCreated["depal"] >= 5
	})
	srv.Stop()
	testkit.WaitFor(t, 10*time.Second, "/readyz to report not ready", func() bool { return status("/readyz") == http.StatusServiceUnavailable })
	time.Sleep(3 * time.Second) // an outage long enough for every loop to hit it
	if c := status("/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz during the outage = %d, want 200 (the process is alive)", c)
	}
	select {
	case err := <-done:
		t.Fatalf("the worker stopped during the outage: %v", err)
	default:
	}
	srv.Restart(t)
	testkit.WaitFor(t, 15*time.Second, "/readyz to recover", func() bool { return status("/readyz") == http.StatusOK })

	recs := testkit.WaitEnded(t, st, batch, 4*time.Minute)
	testkit.CheckStates(t, batch, recs)
	if d := s.Counters().Duplicates; d != 0 {
		t.Errorf("simulator counted %d duplicates, want 0", d)
	}
}
