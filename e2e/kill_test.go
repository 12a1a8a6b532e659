package e2e

import (
	"context"
	"fmt"
	"os"
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
// in its planned state and nothing created twice.
func TestWorkerKilledDuringCreates(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a process and waits for asynq's lease recovery (~1 min)")
	}
	srv := redistest.Real(t)
	bin := testkit.BuildWorker(t)
	s := testkit.StartSim(t, sim.Config{
		Clock:    sim.NewAccelClock(3600),
		Timeline: testkit.FastTimeline,
		Latency:  300 * time.Millisecond, // creates stay in flight long enough to be cut
		Faults:   sim.Faults{Seed: 3, CommitThenDrop: 0.1},
	})
	env := workerEnv(s, srv.URL(), 0, 0)
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
	// Kill A once creates are under way but not all done.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := s.Counters()
		if c.Requests["xportcn"]["create"]+c.Requests["depal"]["create"] >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no creates reached the simulator: %+v", c.Requests)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	inflight := 0
	for _, p := range batch {
		if r, err := st.Get(ctx, p.Key()); err == nil && r.CreateAttempts > 0 && len(r.ProviderOrderIDs) == 0 {
			inflight++
		}
	}
	t.Logf("worker A killed with %d creates sent and not recorded", inflight)

	startWorkerProcess(t, bin, "worker-b", env)
	recs := testkit.WaitEnded(t, st, batch, 4*time.Minute)
	testkit.CheckStates(t, batch, recs)
	if d := s.Counters().Duplicates; d != 0 {
		t.Errorf("simulator counted %d duplicates, want 0", d)
	}
	fmt.Fprintf(os.Stderr, "kill test: %d orders ended; simulator counters: created %v, duplicates %d\n",
		len(recs), s.Counters().OrdersCreated, s.Counters().Duplicates)
}
