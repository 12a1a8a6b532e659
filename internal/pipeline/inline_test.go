package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// The tests in this file drive the create step the way production runs
// it: inside the preview task that priced the order (createInline), with
// a create task taking over whatever that run leaves.

// A previewed order is created in the same task, through both real
// clients against the simulator: one create at the provider, no create
// task, the first poll queued.
func TestPreviewTaskCreatesTheOrder(t *testing.T) {
	for _, p := range providers.Names {
		t.Run(p, func(t *testing.T) {
			b := setupLife(t, nil)
			b.h.stageCreate = false
			req := lifeOrder(p, "in-1", 623456789012, "")
			step, _ := PreviewStep(req)
			b.mustRun(t, step)
			k := orderKey(req)
			r := b.get(t, k)
			if r.State != providers.StateCreated || len(r.ProviderOrderIDs) != 1 {
				t.Fatalf("after the preview task: %s %v, want created with one provider order", r.State, r.ProviderOrderIDs)
			}
			if n := len(b.sim.Order(k.Provider, k.OutOrderID)); n != 1 {
				t.Fatalf("the provider has %d orders, want 1", n)
			}
			if b.queued(newCreateTask(k)) {
				t.Fatal("a create task was queued for an order created inline")
			}
			// The first poll comes at once.
			ps := newPollTask(k, 0, 0)
			info, err := b.insp.GetTaskInfo(ps.Queue, ps.ID)
			if err != nil || info.State != asynq.TaskStatePending {
				t.Fatalf("first poll %+v (%v), want one pending", info, err)
			}
			// A re-run of the preview task (a crash before its completion
			// was recorded) buys nothing more.
			b.mustRun(t, step)
			if n := len(b.sim.Order(k.Provider, k.OutOrderID)); n != 1 {
				t.Fatalf("after a re-run the provider has %d orders, want 1", n)
			}
		})
	}
}

// deferCreates defers the first n creates before they leave, as the gate
// does when the quota or the breaker holds a call back.
type deferCreates struct {
	providers.Provider
	n atomic.Int32
}

func (d *deferCreates) CallsBeforeSend() {}

func (d *deferCreates) Create(ctx context.Context, req *providers.OrderRequest, q *providers.Quote) (*providers.Placement, error) {
	if d.n.Add(-1) >= 0 {
		return nil, &providers.DeferError{Reason: "quota", Wait: 3 * time.Second}
	}
	if err := providers.BeforeSend(ctx); err != nil {
		return nil, err
	}
	return d.Provider.Create(ctx, req, q)
}

// A create held back before it left goes on in a create task queued after
// the deferral's wait; nothing was sent, and that task creates the order
// once. Before createInline handed it over, a preview task returning the
// deferral would have been re-run only to queue the create.
func TestInlineCreateDeferredGoesOnInACreateTask(t *testing.T) {
	var gated *deferCreates
	b := setupOnce(t, redistest.Mini(t), func(p providers.Provider) providers.Provider {
		gated = &deferCreates{Provider: p}
		gated.n.Store(1)
		return gated
	})
	b.h.stageCreate = false
	req := onceOrder("in-defer", 1)
	b.previewHandsOver(t, req)
	k := orderKey(req)
	if r := b.get(t, k); r.State != providers.StatePreviewed || r.CreateAttempts != 0 {
		t.Fatalf("record %s with %d attempts, want previewed with none sent", r.State, r.CreateAttempts)
	}
	cs := newCreateTask(k)
	info, err := b.insp.GetTaskInfo(cs.Queue, cs.ID)
	if err != nil {
		t.Fatalf("no create task queued: %v", err)
	}
	if info.State != asynq.TaskStateScheduled || time.Until(info.NextProcessAt) < time.Second {
		t.Fatalf("create task %s at %s, want scheduled about 3s out", info.State, info.NextProcessAt)
	}
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
}

// A create whose answer is lost (the provider made the order) goes on in
// a create task, which finds the order after the settle window and adopts
// it: one order, whichever task sent it.
func TestInlineCreateUnknownOutcomeIsReconciled(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	b.h.stageCreate = false
	req := onceOrder("in-lost", 1)
	b.fake.SetPlan(req.OutOrderID, fakeprovider.Plan{DropCreates: 1})
	b.previewHandsOver(t, req)
	k := orderKey(req)
	if r := b.get(t, k); r.State != providers.StatePreviewed || r.CreateAttempts != 1 || r.CreateFailures != 1 {
		t.Fatalf("record %s, %d attempts, %d failures; want previewed, 1 sent, 1 failed", r.State, r.CreateAttempts, r.CreateFailures)
	}
	if cs := newCreateTask(k); !queuedIn(b.insp, cs) {
		t.Fatal("no create task took over")
	}
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
	if n := b.fake.Calls("create"); n != 1 {
		t.Fatalf("%d creates sent, want 1", n)
	}
}

// previewHandsOver runs the order's preview task, which must end done:
// its create finished or handed over to a create task.
func (b *onceBundle) previewHandsOver(t *testing.T, req providers.OrderRequest) {
	t.Helper()
	step, _ := PreviewStep(req)
	if err := b.h.ProcessTask(context.Background(), step.Task); err != nil {
		t.Fatalf("preview task: %v, want done (the create handed over)", err)
	}
}

func orderKey(req providers.OrderRequest) orders.Key {
	return orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
}

// queuedIn reports whether a task is queued (in any state).
func queuedIn(insp *asynq.Inspector, s Step) bool {
	_, err := insp.GetTaskInfo(s.Queue, s.ID)
	return err == nil
}

// The Redis epoch read with the record in the preview task is the one the
// inline create judges "not found" by: an order recorded before the Redis
// server changed (the change may have lost the record of a send) is not
// created on a "not found" before the settle window; the create waits in
// a create task, and nothing is sent meanwhile.
func TestInlineCreateAfterARedisChangeWaits(t *testing.T) {
	srv := redistest.Real(t)
	b := setupOnce(t, srv, nil)
	b.h.stageCreate = false
	req := onceOrder("in-epoch", 1)
	if _, _, err := b.st.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).HSet(context.Background(), "orderflow:redis-epoch", "run", "an-earlier-server", "since", "1").Err(); err != nil {
		t.Fatal(err)
	}
	b.previewHandsOver(t, req)
	k := orderKey(req)
	if n := b.fake.Calls("create"); n != 0 {
		t.Fatalf("%d creates sent before the settle window, want 0", n)
	}
	cs := newCreateTask(k)
	info, err := b.insp.GetTaskInfo(cs.Queue, cs.ID)
	if err != nil || info.State != asynq.TaskStateScheduled {
		t.Fatalf("create task %+v (%v), want one scheduled after the settle wait", info, err)
	}
	b.clock.Add(DefaultSettleWindow + time.Second)
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
}

// The repair sweep leaves alone a previewed order whose preview task is
// still there (running its create, or to run again): a create task beside
// it could send a second create while the first is in flight. Once the
// preview task is gone, the lost create is re-queued.
func TestRepairSweepLeavesAnInlineCreateAlone(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	b.h.stageCreate = false
	req := onceOrder("in-repair", 1)
	k := orderKey(req)
	// As a preview task that wrote previewed and then took long over its
	// create leaves it: the record previewed, the preview task active
	// (here: still queued), no create task.
	if _, _, err := b.st.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.Update(context.Background(), k, func(r *orders.Record) error {
		r.Quote = &providers.Quote{Total: 1000}
		r.Apply(providers.EventPreviewed, b.clock.Now(), "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	step, _ := PreviewStep(req)
	if _, err := b.client.Enqueue(step.Task); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Minute)
	if n, err := b.h.SweepRepairs(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep re-queued %d (%v); want 0 while the preview task holds the create", n, err)
	}
	if queuedIn(b.insp, newCreateTask(k)) {
		t.Fatal("a create task was queued beside the preview task")
	}
	if err := b.insp.DeleteTask(step.Queue, step.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := b.h.SweepRepairs(context.Background()); err != nil || n != 1 || !queuedIn(b.insp, newCreateTask(k)) {
		t.Fatalf("sweep re-queued %d (%v); want the create task once the preview task is gone", n, err)
	}
}

// The preview's quote is written with the create's attempt, one write
// instead of two: the record goes received -> previewed -> created in
// two writes of the preview task. When the create ends without a write
// of its own (its lookup deferred), the quote is written on its own, and
// a create task goes on from it.
func TestInlinePreviewIsWrittenWithTheAttempt(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	b.h.stageCreate = false
	req := onceOrder("in-one-write", 1)
	b.previewHandsOver(t, req)
	k := orderKey(req)
	r := b.get(t, k)
	var states []providers.State
	for _, h := range r.History {
		states = append(states, h.State)
	}
	if r.State != providers.StateCreated || r.Version != 3 || r.Quote == nil || r.CreateAttempts != 1 {
		t.Fatalf("record %s version %d quote %v attempts %d; want created at version 3 (submit, quote with the attempt, created)",
			r.State, r.Version, r.Quote, r.CreateAttempts)
	}
	if len(states) != 3 || states[0] != providers.StateReceived || states[1] != providers.StatePreviewed || states[2] != providers.StateCreated {
		t.Fatalf("history %v, want received, previewed, created", states)
	}

	req = onceOrder("in-lookup-deferred", 1)
	b.fake.SetPlan(req.OutOrderID, fakeprovider.Plan{LookupErr: &providers.DeferError{Reason: "quota", Wait: 2 * time.Second}})
	b.previewHandsOver(t, req)
	k = orderKey(req)
	r = b.get(t, k)
	if r.State != providers.StatePreviewed || r.Quote == nil || r.CreateAttempts != 0 || r.Version != 2 {
		t.Fatalf("record %s version %d quote %v attempts %d; want previewed with its quote at version 2, nothing sent",
			r.State, r.Version, r.Quote, r.CreateAttempts)
	}
	if !queuedIn(b.insp, newCreateTask(k)) {
		t.Fatal("no create task took over")
	}
	b.fake.SetPlan(req.OutOrderID, fakeprovider.Plan{})
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
}
