package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redisproc"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers/sim"
)

// sentinelMaster is the name the Sentinels monitor the primary under.
const sentinelMaster = "orderflow"

// sentinelSet is a primary, its replica and three Sentinels on loopback.
type sentinelSet struct {
	primary, replica *redisproc.Server
	sentinels        []*redisproc.Sentinel
}

// url is the workers' REDIS_URL: asynq's redis-sentinel:// form, every
// Sentinel's address and the master name.
func (ss *sentinelSet) url() string {
	addrs := make([]string, len(ss.sentinels))
	for i, s := range ss.sentinels {
		addrs[i] = s.Addr
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "?master=" + sentinelMaster
}

// client is a go-redis client that follows the Sentinels, like the workers.
func (ss *sentinelSet) client(tb testing.TB) *redis.Client {
	tb.Helper()
	addrs := make([]string, len(ss.sentinels))
	for i, s := range ss.sentinels {
		addrs[i] = s.Addr
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sentinelMaster, SentinelAddrs: addrs})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// startSentinelSet starts the set, waits until the Sentinels know each
// other and the replica, and stops every process by its PID when the test
// ends. A missing redis-server or redis-sentinel skips, or fails with
// REQUIRE_REDIS=1 or CI=true.
func startSentinelSet(tb testing.TB, downAfter time.Duration) *sentinelSet {
	tb.Helper()
	check := func(err error) {
		tb.Helper()
		missing := errors.Is(err, redisproc.ErrNotInstalled) || errors.Is(err, redisproc.ErrSentinelNotInstalled)
		switch {
		case missing && (redistest.Required() || os.Getenv("CI") == "true"):
			tb.Fatalf("REQUIRE_REDIS=1 or CI=true but %v", err)
		case missing:
			tb.Skipf("%v (set REQUIRE_REDIS=1 to make this a failure)", err)
		case err != nil:
			tb.Fatal(err)
		}
	}
	ss := &sentinelSet{}
	var err error
	ss.primary, err = redisproc.Start(tb.TempDir())
	check(err)
	tb.Cleanup(ss.primary.Stop)
	ss.replica, err = redisproc.StartReplica(tb.TempDir(), ss.primary)
	check(err)
	tb.Cleanup(ss.replica.Stop)
	cfg := redisproc.SentinelConfig{Master: sentinelMaster, Primary: ss.primary.Addr, Quorum: 2,
		DownAfter: downAfter, FailoverTimeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		s, err := redisproc.StartSentinel(tb.TempDir(), cfg)
		check(err)
		tb.Cleanup(s.Stop)
		ss.sentinels = append(ss.sentinels, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisproc.WaitSentinels(ctx, sentinelMaster, ss.sentinels, 1); err != nil {
		tb.Fatal(err)
	}
	return ss
}

// readiness polls a worker's /readyz every 100 ms and sums the time it
// answered anything but 200.
type readiness struct {
	mu       sync.Mutex
	notReady time.Duration
	longest  time.Duration
	since    time.Time // start of the current not-ready stretch; zero when ready
	stop     chan struct{}
	done     chan struct{}
}

func watchReady(url string) *readiness {
	r := &readiness{stop: make(chan struct{}), done: make(chan struct{})}
	c := http.Client{Timeout: 500 * time.Millisecond}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			ok := false
			if resp, err := c.Get(url); err == nil {
				ok = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			r.note(ok, time.Now())
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *readiness) note(ok bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !ok && r.since.IsZero():
		r.since = now
	case ok && !r.since.IsZero():
		d := now.Sub(r.since)
		r.notReady += d
		r.longest = max(r.longest, d)
		r.since = time.Time{}
	}
}

// end stops polling and returns the time not ready (a stretch still open
// counts up to now) and the longest stretch.
func (r *readiness) end() (total, longest time.Duration, readyAtEnd bool) {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	total, longest, readyAtEnd = r.notReady, r.longest, r.since.IsZero()
	if !readyAtEnd {
		d := time.Since(r.since)
		total += d
		longest = max(longest, d)
	}
	return total, longest, readyAtEnd
}

// TestSentinelFailover: two worker processes on REDIS_URL=redis-sentinel://
// (three Sentinels over a primary and a replica, asynchronous replication)
// run 30 orders; the primary is killed (SIGKILL) once creates are under
// way. The Sentinels promote the replica, the workers follow it by
// themselves (ready again without a restart), every order ends in its
// planned state with exactly the simulator's orders for its outOrderId,
// and the simulator counts no duplicate. It logs how long each worker's
// /readyz (polled every 100 ms) was not ready.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Redis, Sentinels and worker processes")
	}
	const downAfter = time.Second
	// Build the worker while the Sentinels find each other (~6 s).
	built := make(chan error, 1)
	binDir := t.TempDir()
	var bin string
	go func() {
		var err error
		bin, err = testkit.BuildWorkerInto(context.Background(), binDir)
		built <- err
	}()
	ss := startSentinelSet(t, downAfter)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	simLog := testkit.NewSimLog()
	s := testkit.StartSim(t, sim.Config{Clock: sim.NewAccelClock(3600), Timeline: testkit.FastTimeline,
		Latency: 50 * time.Millisecond, Faults: sim.Faults{Seed: 5, CommitThenDrop: 0.1}, Logger: simLog.Logger()})

	var watches []*readiness
	for i := 0; i < 2; i++ {
		port, err := redisproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		admin := fmt.Sprintf("127.0.0.1:%d", port)
		startWorkerProcess(t, bin, fmt.Sprintf("worker-%d", i+1),
			append(workerEnv(s, ss.url(), 0, 0), "ADMIN_ADDR="+admin))
		readyURL := "http://" + admin + "/readyz"
		testkit.WaitFor(t, 30*time.Second, "worker "+admin+" ready", func() bool {
			resp, err := http.Get(readyURL)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		watches = append(watches, watchReady(readyURL))
	}

	rdb := ss.client(t)
	st := orders.NewStore(rdb, orders.Config{})
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	batch := testkit.Batch("failover", 30)
	for _, p := range batch {
		if res, err := pipeline.Submit(context.Background(), st, client, insp, p.Req); err != nil || res.Outcome != pipeline.Accepted {
			t.Fatalf("submit %s = %+v, %v; want accepted", p.Key(), res, err)
		}
	}
	testkit.WaitFor(t, 20*time.Second, "some orders created", func() bool {
		c := s.Counters()
		return c.OrdersCreated["xportcn"]+c.OrdersCreated["depal"] >= 5
	})
	created := s.Counters().OrdersCreated
	killed := time.Now()
	ss.primary.Stop()
	testkit.WaitFor(t, 20*time.Second, "every Sentinel to name the replica primary", func() bool {
		for _, sn := range ss.sentinels {
			if a, err := sn.Primary(context.Background(), sentinelMaster); err != nil || a != ss.replica.Addr {
				return false
			}
		}
		return true
	})
	promoted := time.Since(killed)

	// Tasks running at the kill whose completion asynq could not write
	// stay active until asynq's lease recovery re-runs them: 60-120 s after
	// the kill (a 30 s lease, a 30 s margin, a check every minute).
	recs := testkit.WaitEnded(t, st, batch, 150*time.Second)
	ended := time.Since(killed)
	testkit.CheckStates(t, batch, recs)
	if bad, _ := testkit.CheckCreates(s, batch, recs, simLog.Partial()); len(bad) > 0 {
		t.Errorf("%d orders' creates wrong:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	c := s.Counters()
	if c.Duplicates != 0 {
		t.Errorf("simulator counted %d duplicates (%v), want 0", c.Duplicates, simLog.Duplicates())
	}
	// The workers noticed the new server (its INFO run_id) after the kill,
	// so "not found" is distrusted for the settle window from then on.
	runID, since := newEpoch(t, rdb)
	if info, err := rdb.Info(context.Background(), "server").Result(); err != nil || !strings.Contains(info, "run_id:"+runID+"\r\n") {
		t.Errorf("orderflow:redis-epoch run %q is not the promoted replica's run_id (INFO: %v)", runID, err)
	}
	if since.Before(killed.Add(-time.Second)) {
		t.Errorf("orderflow:redis-epoch since %s, before the kill at %s: the failover was not noted", since, killed)
	}
	t.Logf("primary killed with simulator orders %v created; the Sentinels promoted the replica %s later (down-after-milliseconds %d); every order ended %s after the kill; simulator orders %v, duplicates %d",
		created, promoted.Round(10*time.Millisecond), downAfter.Milliseconds(), ended.Round(100*time.Millisecond), c.OrdersCreated, c.Duplicates)
	for i, w := range watches {
		total, longest, ok := w.end()
		t.Logf("worker-%d not ready for %s in all (longest stretch %s)", i+1, total.Round(10*time.Millisecond), longest.Round(10*time.Millisecond))
		if !ok {
			t.Errorf("worker-%d not ready at the end: it did not follow the failover", i+1)
		}
		// The workers find the new primary through the Sentinels: not ready
		// for about the time the Sentinels took, not until a restart.
		if limit := promoted + 10*time.Second; longest > limit {
			t.Errorf("worker-%d was not ready for %s at a stretch, more than the promotion (%s) + 10 s", i+1, longest, promoted)
		}
	}
}

// newEpoch reads the Redis server run the workers last noted (the hash
// orderflow:redis-epoch: run id and since when, unix ms).
func newEpoch(tb testing.TB, rdb *redis.Client) (string, time.Time) {
	tb.Helper()
	h, err := rdb.HGetAll(context.Background(), "orderflow:redis-epoch").Result()
	if err != nil {
		tb.Fatal(err)
	}
	ms, err := strconv.ParseInt(h["since"], 10, 64)
	if err != nil {
		tb.Fatalf("orderflow:redis-epoch = %v: since: %v", h, err)
	}
	return h["run"], time.UnixMilli(ms)
}
