package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/internal/wake"
	"orderflow/providers"
)

// countCmds counts a client's round trips.
type countCmds struct{ n atomic.Int64 }

func (c *countCmds) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countCmds) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *countCmds) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// TestSubmitIsOneRoundTrip: a new order's record, its preview task and
// the announcement to idle workers go in one round trip; a preview held
// by an archived task is replaced (the usual enqueue), and a resubmitted
// order still in received gets its preview back.
func TestSubmitIsOneRoundTrip(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		ctx := context.Background()
		rdb := srv.Client(t)
		cnt := &countCmds{}
		rdb.AddHook(cnt)
		st := orders.NewStore(rdb, orders.Config{})
		client := asynq.NewClientFromRedisClient(rdb)
		insp := asynq.NewInspectorFromRedisClient(rdb)
		sub := srv.Client(t).Subscribe(ctx, wake.Channel)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}

		// The first submit loads the script (EVALSHA answered NOSCRIPT,
		// then EVAL).
		if res, err := Submit(ctx, st, client, insp, onceOrder("warm-up", 1)); err != nil || res.Outcome != Accepted {
			t.Fatalf("Submit = %+v, %v", res, err)
		}
		if _, err := sub.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
		req := onceOrder("one-rt", 1)
		step, err := PreviewStep(req)
		if err != nil {
			t.Fatal(err)
		}
		before := cnt.n.Load()
		res, err := Submit(ctx, st, client, insp, req)
		if err != nil || res.Outcome != Accepted {
			t.Fatalf("Submit = %+v, %v", res, err)
		}
		if n := cnt.n.Load() - before; n != 1 {
			t.Errorf("submit took %d round trips, want 1", n)
		}
		info, err := insp.GetTaskInfo(step.Queue, step.ID)
		if err != nil || info.State != asynq.TaskStatePending || info.Type != step.Task.Type() {
			t.Fatalf("preview task %+v, %v", info, err)
		}
		select {
		case m := <-sub.Channel():
			if m.Payload != step.Queue {
				t.Errorf("announced %q, want %q", m.Payload, step.Queue)
			}
		case <-time.After(5 * time.Second):
			t.Error("the preview was not announced")
		}

		// The preview task gone (as after a flush of the queue): a
		// resubmission of the order, still received, enqueues it again.
		if err := insp.DeleteTask(step.Queue, step.ID); err != nil {
			t.Fatal(err)
		}
		if res, err := Submit(ctx, st, client, insp, req); err != nil || res.Outcome != Duplicate {
			t.Fatalf("resubmit = %+v, %v", res, err)
		}
		if _, err := insp.GetTaskInfo(step.Queue, step.ID); err != nil {
			t.Fatalf("preview after the resubmission: %v", err)
		}

		// An archived preview holding the id of a new order's preview
		// (an order expired from retention, submitted again) is replaced.
		req2 := onceOrder("one-rt-2", 1)
		step2, _ := PreviewStep(req2)
		if _, err := client.Enqueue(step2.Task); err != nil {
			t.Fatal(err)
		}
		if err := insp.ArchiveTask(step2.Queue, step2.ID); err != nil {
			t.Fatal(err)
		}
		if res, err := Submit(ctx, st, client, insp, req2); err != nil || res.Outcome != Accepted {
			t.Fatalf("Submit over an archived preview = %+v, %v", res, err)
		}
		if info, err := insp.GetTaskInfo(step2.Queue, step2.ID); err != nil || info.State != asynq.TaskStatePending {
			t.Fatalf("preview over an archived one: %+v, %v; want pending", info, err)
		}
		if r, err := st.Get(ctx, orders.Key{Provider: providers.Depal, OutOrderID: "one-rt-2"}); err != nil || r.State != providers.StateReceived {
			t.Fatalf("record %+v, %v", r, err)
		}
	})
}

// TestPollRunWritesWithItsSuccessor: a poll run reads the record and
// writes it with the next poll in one script: two round trips of its own
// (the provider call aside), and the successor is there as soon as the
// write is.
func TestPollRunWritesWithItsSuccessor(t *testing.T) {
	srv := redistest.Mini(t)
	rdb := srv.Client(t)
	cnt := &countCmds{}
	rdb.AddHook(cnt)
	b := setupOnce(t, srv, nil)
	h, err := New(Config{Store: orders.NewStore(rdb, orders.Config{Now: b.clock.Now}),
		Providers: map[string]providers.Provider{providers.Depal: b.fake},
		Enqueuer:  asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb)})
	if err != nil {
		t.Fatal(err)
	}
	req := onceOrder("poll-rt", 1)
	step, _ := PreviewStep(req)
	if err := h.ProcessTask(context.Background(), step.Task); err != nil {
		t.Fatal(err)
	}
	k := orderKey(req)
	if r := b.get(t, k); r.State != providers.StateCreated {
		t.Fatalf("after the preview task: %s, want created", r.State)
	}
	first := newPollTask(k, 0, 0)
	if !queuedIn(b.insp, first) {
		t.Fatal("the created write did not queue the first poll")
	}
	before := cnt.n.Load()
	if err := h.ProcessTask(context.Background(), first.Task); err != nil {
		t.Fatal(err)
	}
	if n := cnt.n.Load() - before; n != 2 {
		t.Errorf("a poll run took %d round trips, want 2 (the record read; its write with the next poll)", n)
	}
	r := b.get(t, k)
	next := newPollTask(k, 1, 0)
	info, err := b.insp.GetTaskInfo(next.Queue, next.ID)
	if r.PollSeq != 1 || err != nil || info.State != asynq.TaskStateScheduled {
		t.Fatalf("after the poll: PollSeq %d, next poll %+v (%v); want 1 and poll 1 scheduled", r.PollSeq, info, err)
	}
}
