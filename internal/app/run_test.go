package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/redisproc"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
)

// workerEnv is a worker on redisURL serving Depal (never called: no order
// is submitted), its listener on a free loopback port.
func workerEnv(redisURL string) map[string]string {
	return map[string]string{
		"REDIS_URL": redisURL, "ADMIN_ADDR": "127.0.0.1:0",
		"DEPAL_BASE_URL": "http://127.0.0.1:1/depal", "DEPAL_APP_KEY": "k", "DEPAL_APP_SECRET": "s",
	}
}

// startWorker runs app.Run on env until the test ends and returns its Info.
func startWorker(t *testing.T, env map[string]string) app.Info {
	t.Helper()
	s, err := fromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan app.Info, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, s, nil, func(i app.Info) { infoc <- i }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case info := <-infoc:
		return info
	case err := <-done:
		t.Fatalf("Run ended before it started: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not start")
	}
	return app.Info{}
}

// TestStartRefusesAWrongRedisURL: a Redis that cannot be reached, wants
// another password, or has no such database stops the start with an error
// naming REDIS_URL, what failed and where, and no password.
func TestStartRefusesAWrongRedisURL(t *testing.T) {
	const password = "s3cret-Redis-pw"
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	plain := redistest.Real(t)
	locked := redistest.Real(t, "requirepass "+password)
	cases := []struct {
		name, url, want string
	}{
		{"closed port", fmt.Sprintf("redis://127.0.0.1:%d", port),
			fmt.Sprintf("REDIS_URL: cannot connect: dial tcp 127.0.0.1:%d: connect: connection refused (redis://127.0.0.1:%d/0, no password given)", port, port)},
		{"missing password", locked.URL(), "REDIS_URL: the server wants a password (AUTH): NOAUTH"},
		{"wrong password", "redis://:wrong-" + password + "@" + locked.Addr + "/0", "REDIS_URL: AUTH refused: WRONGPASS"},
		{"DB 99", plain.URL() + "/99", "REDIS_URL: SELECT refused: ERR DB index is out of range (" + plain.URL() + "/99, no password given)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := fromEnv(workerEnv(c.url))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			began := time.Now()
			err = app.Run(ctx, s, nil, func(app.Info) { t.Error("the worker started") })
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("Run = %v\nwant an error starting %q", err, c.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if took := time.Since(began); took > app.RedisCheckTimeout+2*time.Second {
				t.Errorf("the refusal took %s", took)
			}
		})
	}
}

// TestStartRefusesARedisThatRefusesWrites: a Redis that answers but takes
// no write (OOM under noeviction) stops the start.
func TestStartRefusesARedisThatRefusesWrites(t *testing.T) {
	srv := redistest.Real(t)
	rdb := srv.Client(t)
	oom(t, rdb)
	s, err := fromEnv(workerEnv(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	err = app.Run(t.Context(), s, nil, func(app.Info) { t.Error("the worker started") })
	if want := "REDIS_URL: the test write (SET orderflow:probe PX) was refused: OOM"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Run = %v, want an error starting %q", err, want)
	}
}

// oom makes srv refuse every write (maxmemory 1, noeviction) until the
// test ends.
func oom(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.ConfigSet(ctx, "maxmemory", "0").Err() })
}

// TestReadyzWhenRedisRefusesWrites: /readyz writes to Redis, so a Redis
// that answers PING but refuses writes (out of memory under noeviction, a
// read-only replica) makes the pod not ready, with the reason, and ready
// again when it takes writes again.
func TestReadyzWhenRedisRefusesWrites(t *testing.T) {
	srv := redistest.Real(t)
	rdb := srv.Client(t)
	info := startWorker(t, workerEnv(srv.URL()))
	readyz := func() (int, string) {
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(info.AdminURL + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait := func(what string, code int, body string) {
		t.Helper()
		var gotCode int
		var gotBody string
		err := testkit.Poll(context.Background(), 10*time.Second, func() bool {
			gotCode, gotBody = readyz()
			return gotCode == code && strings.Contains(gotBody, body)
		})
		if err != nil {
			t.Fatalf("%s: /readyz answered %d %q, want %d with %q", what, gotCode, gotBody, code, body)
		}
	}
	wait("a healthy Redis", http.StatusOK, "ready")
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	oom(t, rdb)
	wait("out of memory", http.StatusServiceUnavailable, "not ready: redis write probe (SET orderflow:probe PX) failed: OOM command not allowed")
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING while out of memory: %v (the probe must see what PING does not)", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	wait("memory back", http.StatusOK, "ready")

	// A replica of a master that is not there: read-only, PING still fine.
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "REPLICAOF", "127.0.0.1", port).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Do(ctx, "REPLICAOF", "NO", "ONE").Err() })
	wait("a read-only replica", http.StatusServiceUnavailable, "not ready: redis write probe (SET orderflow:probe PX) failed: READONLY")
	if err := rdb.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	wait("a primary again", http.StatusOK, "ready")
}

// TestReadyProbeThrottled: Ready writes at most once per
// app.ReadyProbeInterval; calls in between answer the last probe's result.
func TestReadyProbeThrottled(t *testing.T) {
	srv := redistest.Mini(t)
	b := setup(t, srv)
	ctx := context.Background()
	if err := b.w.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if !srv.Mini.Exists("orderflow:probe") {
		t.Fatal("Ready wrote no probe key")
	}
	srv.Mini.Del("orderflow:probe")
	for range 50 {
		if err := b.w.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Mini.Exists("orderflow:probe") && time.Since(began) < app.ReadyProbeInterval {
		t.Fatal("Ready wrote again within ReadyProbeInterval")
	}
	time.Sleep(app.ReadyProbeInterval - time.Since(began) + 50*time.Millisecond)
	if err := b.w.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if !srv.Mini.Exists("orderflow:probe") {
		t.Fatal("Ready did not probe again after ReadyProbeInterval")
	}
	if ttl := srv.Mini.TTL("orderflow:probe"); ttl <= 0 || ttl > 10*time.Second {
		t.Errorf("probe key TTL %s, want (0, 10s]", ttl)
	}
}

// TestCheckIntervalSettings: an idle pod's looks at its empty queues do
// not follow TASK_CHECK_INTERVAL down (the intake servers wait for
// announced tasks, the others look at most every 200ms), while
// DELAYED_TASK_CHECK_INTERVAL sets how often due scheduled and retried
// tasks are moved; both show in the scripts an idle worker runs on a real
// Redis (asynq's dequeue and forward scripts are EVALSHA).
func TestCheckIntervalSettings(t *testing.T) {
	srv := redistest.Real(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	evalsha := func() int64 {
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_evalsha:calls="); ok {
				calls, _, _ := strings.Cut(rest, ",")
				n, err := strconv.ParseInt(calls, 10, 64)
				if err != nil {
					t.Fatalf("commandstats %q: %v", l, err)
				}
				return n
			}
		}
		return 0
	}
	// rate is the EVALSHA calls per second of an idle worker with env's
	// intervals, over 2 s after a second of warm-up.
	rate := func(t *testing.T, task, delayed string) float64 {
		env := workerEnv(srv.URL())
		env["TASK_CHECK_INTERVAL"], env["DELAYED_TASK_CHECK_INTERVAL"] = task, delayed
		var r float64
		t.Run(task+","+delayed, func(t *testing.T) {
			startWorker(t, env)
			time.Sleep(time.Second)
			n0, t0 := evalsha(), time.Now()
			time.Sleep(2 * time.Second)
			r = float64(evalsha()-n0) / time.Since(t0).Seconds()
		})
		return r
	}
	// The worker serves Depal: its intake queue (a look a second), its
	// create and poll queues and the notify queue (at most every 1s at
	// TASK_CHECK_INTERVAL=1s, every 200ms below it).
	slow := rate(t, "1s", "10s")   // about 4 dequeues/s, 0.8 forwards/s
	fast := rate(t, "10ms", "10s") // about 16 dequeues/s; 400 when each server looked every 10 ms
	fwd := rate(t, "1s", "50ms")   // about 160 forwards/s
	t.Logf("EVALSHA/s: task 1s, delayed 10s: %.0f; task 10ms: %.0f; delayed 50ms: %.0f", slow, fast, fwd)
	if slow > 20 {
		t.Errorf("TASK_CHECK_INTERVAL=1s, DELAYED_TASK_CHECK_INTERVAL=10s: %.0f EVALSHA/s, want under 20", slow)
	}
	if fast > 40 {
		t.Errorf("TASK_CHECK_INTERVAL=10ms: %.0f EVALSHA/s, want under 40 (the intake waits, the rest looks every 200ms)", fast)
	}
	if fwd < 60 {
		t.Errorf("DELAYED_TASK_CHECK_INTERVAL=50ms: %.0f EVALSHA/s, want at least 60 (4 queues, 2 sets, every 50 ms)", fwd)
	}
}
