package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers/sim"
)

// TestWorkerKilledDuringCreates kills a worker process (SIGKILL) while
// creates are in flight, starts another, and still ends with every order
// in its planned state, each with exactly the simulator's orders for its
// outOrderId, and nothing created twice. It proves the kill cut creates:
// the simulator (behind a gauge at its HTTP server) holds every answer for
// its Latency after committing, the worker is killed only while the gauge
// shows creates arrived and not returned, and the creates whose client was
// gone when their handler returned, between just before the kill and just
// after, are counted; the test fails when that is 0 (a vacuous pass).
func TestWorkerKilledDuringCreates(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a process and waits for asynq's lease recovery (~1 min)")
	}
	srv := redistest.Real(t)
	bin := testkit.BuildWorker(t)
	simLog := testkit.NewSimLog()
	s, gauge, urls := testkit.StartSimGauged(t, sim.Config{
		Clock:    sim.NewAccelClock(3600),
		Timeline: testkit.FastTimeline,
		Latency:  300 * time.Millisecond, // every answer held 300 ms after the create committed
		Faults:   sim.Faults{Seed: 3, CommitThenDrop: 0.1},
		Logger:   simLog.Logger(),
	})
	env := workerEnvURLs(urls.Xportcn, urls.Depal, srv.URL(), 0, 0)
	a := startWorkerProcess(t, bin, "worker-a", env)

	rdb := srv.Client(t)
	st := orders.NewStore(rdb, orders.Config{})
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	batch := testkit.Batch("kill", 60)
	ctx := context.Background()
	for _, p := range batch {
		if _, err := pipeline.Submit(ctx, st, client, insp, p.Req); err != nil {
			t.Fatal(err)
		}
	}
	// Kill A once creates are under way (5 arrived), at a moment the gauge
	// shows at least 2 of them in flight.
	var arrived, returned, cutBefore int64
	testkit.WaitFor(t, 30*time.Second, "creates in flight at the simulator", func() bool {
		arrived, returned, cutBefore = gauge.Counts()
		return arrived >= 5 && arrived-returned >= 2
	})
	a.kill()
	// The simulator sees the dead client's connections close: the creates
	// in flight return with their request context done.
	var cutAfter int64
	_ = testkit.Poll(ctx, 2*time.Second, func() bool {
		var arr, ret int64
		arr, ret, cutAfter = gauge.Counts()
		return arr == ret
	})
	cut := cutAfter - cutBefore
	sent := 0
	for _, p := range batch {
		if r, err := st.Get(ctx, p.Key()); err == nil && r.CreateAttempts > 0 && len(r.ProviderOrderIDs) == 0 {
			sent++
		}
	}
	c := s.Counters()
	t.Logf("worker A killed with %d creates in flight at the simulator (%d arrived, %d returned); %d of them cut by the kill (made, never answered); records with a create sent and no provider ids: %d; simulator orders so far %v",
		arrived-returned, arrived, returned, cut, sent, c.OrdersCreated)
	if cut == 0 {
		t.Fatalf("the kill cut no create (in flight before it: %d): the test proves nothing", arrived-returned)
	}

	startWorkerProcess(t, bin, "worker-b", env)
	recs := testkit.WaitEnded(t, st, batch, 4*time.Minute)
	testkit.CheckStates(t, batch, recs)
	if bad, _ := testkit.CheckCreates(s, batch, recs, simLog.Partial()); len(bad) > 0 {
		t.Errorf("%d orders' creates wrong:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if d := s.Counters().Duplicates; d != 0 {
		t.Errorf("simulator counted %d duplicates (%v), want 0", d, simLog.Duplicates())
	}
	fmt.Fprintf(os.Stderr, "kill test: %d creates cut by the kill; %d orders ended; simulator counters: created %v, duplicates %d\n",
		cut, len(recs), s.Counters().OrdersCreated, s.Counters().Duplicates)
}
