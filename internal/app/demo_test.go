package app_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/intake"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/providers/sim"
	"orderflow/tasks"
)

// TestEmbeddedDemoLeavesNoTasks runs the embedded default (miniredis and
// the simulator, with its light faults) on the demo orders of make run
// until every order has ended, then asks asynq's Inspector what is left:
// waits are schedule, not failures, and an ended order leaves no task, so
// nothing may be in Retry or Archived and nothing scheduled or pending.
func TestEmbeddedDemoLeavesNoTasks(t *testing.T) {
	// Alongside the other long waits of this package (its own embedded
	// Redis and simulator on free ports): it mostly waits for the demo's
	// timeline.
	t.Parallel()

	s, err := app.FromEnv(func(k string) string {
		return map[string]string{"ADMIN_ADDR": "127.0.0.1:0", "EMBEDDED_REDIS_ADDR": "127.0.0.1:0"}[k]
	})
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
	var info app.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("Run ended before it started: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the embedded worker did not start")
	}

	opt, err := redis.ParseURL(info.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	st := orders.NewStore(rdb, orders.Config{})
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)

	f, err := os.Open("../../examples/demo-orders.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := intake.Decode(f, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var keys []orders.Key
	for _, e := range entries {
		res, err := intake.Submit(context.Background(), st, client, insp, e, intake.Policy{})
		if err != nil || res.Outcome != pipeline.Accepted {
			t.Fatalf("submit %s: %v %+v", e.Req.OutOrderID, err, res)
		}
		keys = append(keys, orders.Key{Provider: e.Req.Provider, OutOrderID: e.Req.OutOrderID})
	}
	want := map[orders.Key]providers.State{}
	for _, e := range entries {
		want[orders.Key{Provider: e.Req.Provider, OutOrderID: e.Req.OutOrderID}] = demoEnd(e.Req)
	}
	var live []string
	err = testkit.Poll(context.Background(), 90*time.Second, func() bool {
		live = live[:0]
		for _, k := range keys {
			r, err := st.Get(context.Background(), k)
			if err != nil || r.State != want[k] {
				live = append(live, fmt.Sprintf("%s (%v %v, want %s; history %s)", k, r.State, err, want[k], historyText(r)))
			}
		}
		return len(live) == 0
	})
	if err != nil {
		t.Fatalf("demo orders not where they should end: %s; tasks:\n%s", strings.Join(live, ", "), leftTasks(t, insp))
	}

	// The last steps (a callback, a poll that ended its order) finish
	// within moments; then nothing may be left but the poll that follows
	// the order parked while it lives at the provider.
	var left string
	deadline := time.Now().Add(15 * time.Second)
	for {
		left = leftTasks(t, insp)
		if left == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left != "" {
		t.Fatalf("tasks left after every order ended:\n%s", left)
	}
	c := info.Sim.Counters()
	perProvider := map[string]int{}
	for _, k := range keys {
		perProvider[k.Provider]++
	}
	for p, ops := range c.Requests {
		t.Logf("provider calls per order at %s (%d orders): %s", p, perProvider[p], perOrder(ops, perProvider[p]))
	}
	if c.Duplicates != 0 {
		t.Errorf("the simulator counted %d duplicate orders", c.Duplicates)
	}
}

// historyText is an order's history on one line.
func historyText(r *orders.Record) string {
	if r == nil {
		return "-"
	}
	var b strings.Builder
	for _, h := range r.History {
		fmt.Fprintf(&b, "%s %s %s %s; ", h.At.Format("15:04:05.000"), h.State, h.Event, h.Note)
	}
	return b.String() + "cancelRefused " + r.CancelRefused
}

// demoEnd is where a demo order must end, by its planned product.
func demoEnd(req providers.OrderRequest) providers.State {
	p := req.Items[0].ProductID
	if _, ok := sim.PlannedError(p); ok {
		return providers.StateFailed
	}
	switch {
	case req.MaxTotal != "":
		return providers.StateRejected
	case p == sim.ProductCancelled:
		return providers.StateCancelled
	case p == sim.ProductTerminated:
		return providers.StateTerminated
	case p == sim.ProductUnpaid:
		return providers.StateExpired
	case p == sim.ProductNeverShipped:
		return providers.StateNeedsReview
	}
	return providers.StateCompleted
}

// perOrder formats request counts by operation per order.
func perOrder(ops map[string]int64, orders int) string {
	var b strings.Builder
	for op, n := range ops {
		fmt.Fprintf(&b, "%s %.2f ", op, float64(n)/float64(orders))
	}
	return b.String()
}

// demoParked is the demo order parked while it lives at the provider.
const demoParked = `"DEMO-0027"`

// leftTasks describes every task in any queue, by state.
func leftTasks(t *testing.T, insp *asynq.Inspector) string {
	t.Helper()
	qs, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	list := map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		"pending": insp.ListPendingTasks, "active": insp.ListActiveTasks, "scheduled": insp.ListScheduledTasks,
		"retry": insp.ListRetryTasks, "archived": insp.ListArchivedTasks,
	}
	for _, q := range qs {
		for state, fn := range list {
			ts, err := fn(q)
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range ts {
				if state == "scheduled" && ti.Type == tasks.TypePoll && strings.Contains(string(ti.Payload), demoParked) {
					continue // the parked order is followed on
				}
				fmt.Fprintf(&b, "  %s %s %s %s (last error %q)\n", q, state, ti.Type, ti.ID, ti.LastErr)
			}
		}
	}
	return b.String()
}
