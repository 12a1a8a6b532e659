package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

type bundle struct {
	w     *app.Worker
	fakes map[string]*fakeprovider.Fake
}

func setup(tb testing.TB, srv *redistest.Server) *bundle {
	tb.Helper()
	fakes := map[string]*fakeprovider.Fake{
		providers.Xportcn: fakeprovider.New(providers.Xportcn),
		providers.Depal:   fakeprovider.New(providers.Depal),
	}
	ps := map[string]providers.Provider{}
	for n, f := range fakes {
		ps[n] = f
	}
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                ps,
		PollSchedule:             []time.Duration{100 * time.Millisecond},
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		// Polls every 100ms: the parcel's trace must not wait 200ms
		// for a look, or the order completes before it is traced.
		FollowCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout:     2 * time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Shutdown)
	return &bundle{w: w, fakes: fakes}
}

func order(provider, id string) providers.OrderRequest {
	return providers.OrderRequest{
		Provider: provider, OutOrderID: id,
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"},
		Items:   []providers.Item{{ProductID: 623456789012, SkuID: "b5f2", Quantity: 2}},
	}
}

func (b *bundle) submit(tb testing.TB, req providers.OrderRequest) pipeline.SubmitResult {
	tb.Helper()
	res, err := pipeline.Submit(context.Background(), b.w.Store(), b.w.Client(), b.w.Inspector(), req)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// waitState waits until every order is in its wanted state.
func (b *bundle) waitState(tb testing.TB, want map[orders.Key]providers.State, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for k, s := range want {
			r, err := b.w.Store().Get(context.Background(), k)
			if err != nil || r.State != s {
				got := "missing"
				if r != nil {
					got = string(r.State)
				}
				pending = append(pending, k.String()+" is "+got+", want "+string(s))
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, strings.Join(pending, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPipeline(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		b := setup(t, srv)
		x, d := b.fakes[providers.Xportcn], b.fakes[providers.Depal]
		x.SetPlan("drop-1", fakeprovider.Plan{DropCreates: 1})
		d.SetPlan("drop-2", fakeprovider.Plan{DropCreates: 2})
		d.SetPlan("oos", fakeprovider.Plan{PreviewErr: &providers.PermanentError{Op: "preview", Code: "R500_004", Message: "out of stock"}})
		x.SetPlan("odd", fakeprovider.Plan{Words: []string{"waitbuyerpay", "waitlogisticstakein", "terminated"}})

		guarded := order(providers.Depal, "guard")
		guarded.MaxTotal = "10.00" // 2 x 10.00 + 5.00 freight > 10.00

		want := map[orders.Key]providers.State{}
		for _, c := range []struct {
			req  providers.OrderRequest
			want providers.State
		}{
			{order(providers.Xportcn, "ok-1"), providers.StateCompleted},
			{order(providers.Depal, "ok-2"), providers.StateCompleted},
			{order(providers.Xportcn, "drop-1"), providers.StateCompleted},
			{order(providers.Depal, "drop-2"), providers.StateCompleted},
			{order(providers.Depal, "oos"), providers.StateFailed},
			{order(providers.Xportcn, "odd"), providers.StateTerminated},
			{guarded, providers.StateRejected},
		} {
			if res := b.submit(t, c.req); res.Outcome != pipeline.Accepted {
				t.Fatalf("submit %s = %s (%v)", c.req.OutOrderID, res.Outcome, res.Err)
			}
			want[orders.Key{Provider: c.req.Provider, OutOrderID: c.req.OutOrderID}] = c.want
		}
		b.waitState(t, want, 30*time.Second)

		ctx := context.Background()
		for k := range want {
			f := b.fakes[k.Provider]
			wantCreated := 1
			if k.OutOrderID == "oos" || k.OutOrderID == "guard" {
				wantCreated = 0
			}
			if got := f.Created(k.OutOrderID); got != wantCreated {
				t.Errorf("%s: %d provider orders, want %d", k, got, wantCreated)
			}
		}
		r, _ := b.w.Store().Get(ctx, orders.Key{Provider: providers.Depal, OutOrderID: "oos"})
		if r.Error == nil || r.Error.Code != "R500_004" {
			t.Errorf("oos error = %+v, want code R500_004", r.Error)
		}
		r, _ = b.w.Store().Get(ctx, orders.Key{Provider: providers.Depal, OutOrderID: "guard"})
		if r.Error == nil || r.Error.Code != "PRICE_GUARD" || r.Quote == nil || r.Quote.Total != 2500 {
			t.Errorf("guard record = %+v quote %+v, want PRICE_GUARD with total 2500", r.Error, r.Quote)
		}
		r, _ = b.w.Store().Get(ctx, orders.Key{Provider: providers.Xportcn, OutOrderID: "ok-1"})
		if !r.Delivered || !hasState(r, providers.StateDelivered) {
			t.Errorf("ok-1 never delivered: %+v", r.History)
		}
		r, _ = b.w.Store().Get(ctx, orders.Key{Provider: providers.Xportcn, OutOrderID: "odd"})
		if !strings.Contains(r.RawStatus, "terminated") || hasState(r, providers.StateUnknown) {
			t.Errorf("odd: raw %q history %+v", r.RawStatus, r.History)
		}

		// A re-submission is a duplicate and changes nothing.
		before := x.Calls("create") + d.Calls("create")
		res := b.submit(t, order(providers.Xportcn, "ok-1"))
		if res.Outcome != pipeline.Duplicate || res.Record.State != providers.StateCompleted {
			t.Fatalf("re-submit = %s in %s, want duplicate in completed", res.Outcome, res.Record.State)
		}
		if after := x.Calls("create") + d.Calls("create"); after != before {
			t.Fatalf("re-submit made %d creates", after-before)
		}

		// Every state change is on the stream.
		evs, err := b.w.Redis().XRange(ctx, orders.EventStream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		terminalEvents := 0
		for _, e := range evs {
			if providers.State(e.Values["state"].(string)).Terminal() {
				terminalEvents++
			}
		}
		if terminalEvents != len(want) {
			t.Errorf("%d terminal events on the stream, want %d", terminalEvents, len(want))
		}
	})
}

func hasState(r *orders.Record, s providers.State) bool {
	for _, h := range r.History {
		if h.State == s {
			return true
		}
	}
	return false
}

func TestBadTasksAreArchivedWithAReason(t *testing.T) {
	srv := redistest.Mini(t)
	b := setup(t, srv)
	ctx := context.Background()
	for _, task := range []*asynq.Task{
		asynq.NewTask(tasks.TypeCreate, []byte("{not json"), asynq.Queue(tasks.Queue(providers.Depal, tasks.KindCreate))),
		asynq.NewTask("order:frobnicate", []byte("{}"), asynq.Queue(tasks.Queue(providers.Depal, tasks.KindCreate))),
		asynq.NewTask(tasks.TypePreview, []byte(`{"provider":"depal","outOrderId":"x"}`), asynq.Queue(tasks.Queue(providers.Depal, tasks.KindPreview))),
	} {
		if _, err := b.w.Client().EnqueueContext(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		tasks.TypeCreate:   "malformed order:create payload",
		"order:frobnicate": `unknown task type "order:frobnicate"`,
		tasks.TypePreview:  "invalid order in order:preview payload: address.fullName",
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var archived []*asynq.TaskInfo
		for _, q := range []string{tasks.Queue(providers.Depal, tasks.KindCreate), tasks.Queue(providers.Depal, tasks.KindPreview)} {
			l, err := b.w.Inspector().ListArchivedTasks(q)
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				t.Fatal(err)
			}
			archived = append(archived, l...)
		}
		if len(archived) == len(want) {
			for _, ti := range archived {
				if !strings.Contains(ti.LastErr, want[ti.Type]) {
					t.Errorf("archived %s: reason %q, want it to contain %q", ti.Type, ti.LastErr, want[ti.Type])
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("archived %d tasks, want %d", len(archived), len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCancelBeforeCreate(t *testing.T) {
	srv := redistest.Mini(t)
	b := setup(t, srv)
	ctx := context.Background()
	k := orders.Key{Provider: providers.Depal, OutOrderID: "c-1"}
	// Cancel requested before the worker sees the order: nothing is created.
	if _, _, err := b.w.Store().Create(ctx, order(k.Provider, k.OutOrderID)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := pipeline.RequestCancel(ctx, b.w.Store(), b.w.Client(), b.w.Inspector(), k); err != nil || ok != pipeline.CancelQueued {
		t.Fatalf("RequestCancel = %v, %v", ok, err)
	}
	b.submit(t, order(k.Provider, k.OutOrderID))
	b.waitState(t, map[orders.Key]providers.State{k: providers.StateCancelled}, 10*time.Second)
	if n := b.fakes[k.Provider].Created(k.OutOrderID); n != 0 {
		t.Fatalf("%d provider orders for a cancelled order", n)
	}
}
