package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers"
)

// TestPollingMovesDuringACreateBacklog queues a backlog of new orders on a
// provider with one worker slot while an order already placed waits for
// its next poll: the placed order must keep being polled while the
// backlog drains (under strict priority it waited for the last create).
func TestPollingMovesDuringACreateBacklog(t *testing.T) {
	srv := redistest.Mini(t)
	fake := fakeprovider.New(providers.Depal)
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                map[string]providers.Provider{providers.Depal: fake},
		Concurrency:              map[string]int{providers.Depal: 1},
		PollSchedule:             []time.Duration{50 * time.Millisecond},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	ctx := context.Background()

	placed := orders.Key{Provider: providers.Depal, OutOrderID: "placed"}
	fake.SetPlan(placed.OutOrderID, fakeprovider.Plan{Words: []string{"waitbuyerpay"}}) // live for ever
	submit(t, w, placed.OutOrderID)
	testkit.WaitFor(t, 10*time.Second, "the placed order to be awaiting payment", func() bool {
		r, err := w.Store().Get(ctx, placed)
		return err == nil && r.State == providers.StateAwaitingPayment
	})

	fake.SetCreateDelay(40 * time.Millisecond)
	const backlog = 60
	for i := range backlog {
		submit(t, w, fmt.Sprintf("new-%d", i))
	}
	pollsBefore := polls(t, w, placed)
	testkit.WaitFor(t, 60*time.Second, "two thirds of the backlog created", func() bool {
		return fake.Calls("create") >= 2*backlog/3
	})
	if got := polls(t, w, placed); got <= pollsBefore {
		t.Fatalf("the placed order was polled %d times while %d creates ran: polling starved behind the backlog", got-pollsBefore, 2*backlog/3)
	}
}

func submit(t *testing.T, w *app.Worker, id string) {
	t.Helper()
	req := order(providers.Depal, id)
	if res, err := pipeline.Submit(context.Background(), w.Store(), w.Client(), w.Inspector(), req); err != nil || res.Outcome != pipeline.Accepted {
		t.Fatalf("submit %s: %v %v", id, res.Outcome, err)
	}
}

// polls is how many polls of the order have run (its poll chain's place).
func polls(t *testing.T, w *app.Worker, k orders.Key) int {
	t.Helper()
	r, err := w.Store().Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return r.PollSeq
}
