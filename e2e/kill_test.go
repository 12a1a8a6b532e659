package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/orders"
	"orderflow/providers/sim"
	"orderflow/tasks"
)

// workerProc is a worker process, stopped by its PID when the test ends.
type workerProc struct {
	cmd *exec.Cmd
	log string
}

func startWorkerProc(tb testing.TB, bin string, env []string, name string) *workerProc {
	tb.Helper()
	logPath := filepath.Join(tb.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &workerProc{cmd: cmd, log: logPath}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		f.Close()
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			tb.Logf("%s log (tail):\n%s", name, b)
		}
	})
	return p
}

func simEnv(s *sim.Sim, redisURL string) []string {
	return []string{
		"REDIS_URL=" + redisURL,
		"ADMIN_ADDR=127.0.0.1:0",
		"LOG_FORMAT=text",
		"XPORTCN_BASE_URL=" + s.XportcnURL(), "XPORTCN_ACCESS_KEY=sim-ak", "XPORTCN_ACCESS_SECRET=sim-secret-x", "XPORTCN_USER_ID=sim-user",
		"DEPAL_BASE_URL=" + s.DepalURL(), "DEPAL_APP_KEY=simapp", "DEPAL_APP_SECRET=sim-secret-d",
		"XPORTCN_RATE=0", "DEPAL_RATE=0",
		"POLL_SCHEDULE=200ms,500ms,1s",
	}
}

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
	env := simEnv(s, srv.URL())
	a := startWorkerProc(t, bin, env, "worker-a")

	rdb := srv.Client(t)
	st := orders.NewStore(rdb, orders.Config{})
	client := asynq.NewClientFromRedisClient(rdb)
	batch := testkit.Batch("kill", 60)
	ctx := context.Background()
	for _, p := range batch {
		if _, err := tasks.Submit(ctx, st, client, time.Hour, p.Req); err != nil {
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
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	inflight := 0
	for _, p := range batch {
		if r, err := st.Get(ctx, p.Key()); err == nil && r.CreateAttempts > 0 && len(r.ProviderOrderIDs) == 0 {
			inflight++
		}
	}
	t.Logf("worker A killed with %d creates sent and not recorded", inflight)

	startWorkerProc(t, bin, env, "worker-b")
	recs := testkit.WaitEnded(t, st, batch, 4*time.Minute)
	testkit.CheckStates(t, batch, recs)
	if d := s.Counters().Duplicates; d != 0 {
		t.Errorf("simulator counted %d duplicates, want 0", d)
	}
	fmt.Fprintf(os.Stderr, "kill test: %d orders ended; simulator counters: created %v, duplicates %d\n",
		len(recs), s.Counters().OrdersCreated, s.Counters().Duplicates)
}
