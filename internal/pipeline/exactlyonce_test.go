package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/fakeprovider"
	"orderflow/internal/gate"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// The tests in this file drive the real handlers (ProcessTask) step by
// step through the interleavings a hostile provider makes, on a clock they
// move themselves: a provider still working when the client gave up, a
// search that lags, a breaker open at the wrong time, a record that Redis
// lost. Each fails on the pipeline of the previous release.

// clock is a settable clock shared by the store and the fake provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type onceBundle struct {
	h      *Handlers
	st     *orders.Store
	fake   *fakeprovider.Fake
	clock  *clock
	client *asynq.Client
	insp   *asynq.Inspector
	srv    *redistest.Server
}

// setupOnce returns handlers on srv with a fake Depal (wrapped by wrap, if
// given) and a clock the test moves.
func setupOnce(t *testing.T, srv *redistest.Server, wrap func(providers.Provider) providers.Provider) *onceBundle {
	t.Helper()
	c := &clock{t: time.Now().UTC()}
	fake := fakeprovider.New(providers.Depal)
	fake.SetClock(c.Now)
	var p providers.Provider = fake
	if wrap != nil {
		p = wrap(fake)
	}
	st := orders.NewStore(srv.Client(t), orders.Config{Now: c.Now})
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: srv.Addr})
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close(); _ = insp.Close() })
	h, err := New(Config{Store: st, Providers: map[string]providers.Provider{providers.Depal: p},
		Enqueuer: client, Inspector: insp})
	if err != nil {
		t.Fatal(err)
	}
	h.stageCreate = true // these tests stage what happens between preview and create
	return &onceBundle{h: h, st: st, fake: fake, clock: c, client: client, insp: insp, srv: srv}
}

func onceOrder(id string, items int) providers.OrderRequest {
	r := providers.OrderRequest{Provider: providers.Depal, OutOrderID: id,
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"}}
	for i := range items {
		r.Items = append(r.Items, providers.Item{ProductID: 623456789012 + int64(i), SkuID: "b5f2", Quantity: 1})
	}
	return r
}

// previewed submits and previews an order.
func (b *onceBundle) previewed(t *testing.T, req providers.OrderRequest) orders.Key {
	t.Helper()
	step, err := PreviewStep(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.h.ProcessTask(context.Background(), step.Task); err != nil {
		t.Fatal(err)
	}
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	if r := b.get(t, k); r.State != providers.StatePreviewed {
		t.Fatalf("after preview: %s", r.State)
	}
	return k
}

func (b *onceBundle) create(k orders.Key) error {
	return b.h.ProcessTask(context.Background(), newCreateTask(k).Task)
}

func (b *onceBundle) get(t *testing.T, k orders.Key) *orders.Record {
	t.Helper()
	r, err := b.st.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantDeferred(t *testing.T, err error, reason string) {
	t.Helper()
	d, ok := providers.AsDeferral(err)
	if !ok || d.Reason != reason {
		t.Fatalf("err = %v, want a %q deferral", err, reason)
	}
}

func (b *onceBundle) wantOne(t *testing.T, k orders.Key) {
	t.Helper()
	if n := b.fake.Created(k.OutOrderID); n != 1 {
		t.Fatalf("the provider has %d orders for %s, want exactly 1", n, k.OutOrderID)
	}
	r := b.get(t, k)
	if r.State != providers.StateCreated || len(r.ProviderOrderIDs) != 1 {
		t.Fatalf("record %s %v, want created with one provider order", r.State, r.ProviderOrderIDs)
	}
}

// A provider that is still processing when the client gives up: the
// retry's lookup comes before the commit and says "not found". Trusting it
// created a second order.
func TestLateCommitIsNotCreatedTwice(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("late-1", 1))
	b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{CommitDelay: 30 * time.Second})
	if err := b.create(k); providers.ClassOf(err) != providers.ClassUnknownOutcome {
		t.Fatalf("first create: %v, want an unknown outcome", err)
	}
	b.clock.Add(time.Second) // asynq's first retry comes within a second or two
	wantDeferred(t, b.create(k), "settle")
	b.clock.Add(40 * time.Second) // the provider has committed meanwhile
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
	if n := b.fake.Calls("create"); n != 1 {
		t.Fatalf("%d creates sent, want 1", n)
	}
}

// A search index that lags the provider's writes by a minute.
func TestSearchLagIsNotTrusted(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("lag-1", 1))
	b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{DropCreates: 1, SearchLag: time.Minute})
	if err := b.create(k); providers.ClassOf(err) != providers.ClassUnknownOutcome {
		t.Fatalf("first create: %v, want an unknown outcome", err)
	}
	for range 5 {
		b.clock.Add(10 * time.Second)
		wantDeferred(t, b.create(k), "settle")
	}
	b.clock.Add(15 * time.Second)
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
}

// Once the settle window has passed, "not found" is an answer: the order
// is created (once more, since the first never reached the provider).
func TestNotFoundAfterTheSettleWindowCreates(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("gone-1", 1))
	// A create that never reached the provider (the fake made nothing).
	if _, err := b.st.Update(context.Background(), k, func(r *orders.Record) error {
		r.CreateAttempts, r.CreateSentAt = 1, b.clock.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantDeferred(t, b.create(k), "settle")
	b.clock.Add(DefaultSettleWindow + time.Second)
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
}

// The first create looks the order up too: a provider order made for this
// outOrderId that orderflow has no record of (a resubmission after the
// record's retention, a record Redis lost) is adopted, not bought again.
func TestFirstCreateAdoptsAnOrderWithoutARecord(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("known-1", 1))
	b.fake.Precreate(k.OutOrderID)
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
	if n := b.fake.Calls("create"); n != 0 {
		t.Fatalf("%d creates sent, want 0 (the order was adopted)", n)
	}
}

// After a Redis restart that lost its last second of writes (AOF
// everysec) the record of a send can be gone while the provider is still
// working on it: a "not found" for an order whose record predates the
// restart is not trusted before the settle window.
func TestNotFoundAfterARedisChangeIsNotTrusted(t *testing.T) {
	srv := redistest.Real(t)
	b := setupOnce(t, srv, nil)
	k := b.previewed(t, onceOrder("lost-1", 1))
	// The lost send: the provider got it, the record of the attempt is gone.
	b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{CommitDelay: 20 * time.Second})
	if _, err := b.fake.Create(context.Background(), &b.get(t, k).Request, nil); err == nil {
		t.Fatal("the fake's late create answered")
	}
	// The server changed since orderflow last saw it.
	rdb := srv.Client(t)
	if err := rdb.HSet(context.Background(), "orderflow:redis-epoch", "run", "an-earlier-server", "since", "1").Err(); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Second)
	wantDeferred(t, b.create(k), "settle")
	b.clock.Add(30 * time.Second)
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
}

// admitFirst is a limiter that lets the first n calls out and then asks
// for a long wait: the create after its lookup is deferred by the quota.
type admitFirst struct{ n atomic.Int32 }

func (a *admitFirst) Take(context.Context, string) (time.Duration, error) {
	if a.n.Add(-1) >= 0 {
		return 0, nil
	}
	return time.Hour, nil
}
func (a *admitFirst) Throttle(context.Context, string, time.Duration) error { return nil }

// A create the quota defers never left: it records no attempt, so the next
// run does not pay for a reconcile it does not need.
func TestDeferredCreateRecordsNoAttempt(t *testing.T) {
	lim := &admitFirst{}
	b := setupOnce(t, redistest.Mini(t), func(p providers.Provider) providers.Provider {
		return gate.Wrap(p, gate.Config{Limiter: lim, MaxWait: -1})
	})
	lim.n.Store(1) // the preview's call
	k := b.previewed(t, onceOrder("quota-1", 1))
	lim.n.Store(1) // the lookup's
	wantDeferred(t, b.create(k), providers.ReasonRateLimit)
	if r := b.get(t, k); r.CreateAttempts != 0 || r.State != providers.StatePreviewed {
		t.Fatalf("after a deferred create: attempts %d, state %s; want 0, previewed", r.CreateAttempts, r.State)
	}
	lim.n.Store(1)
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	b.wantOne(t, k)
	if r := b.get(t, k); r.CreateAttempts != 1 {
		t.Fatalf("attempts %d, want 1", r.CreateAttempts)
	}
	if n := b.fake.Calls("lookup"); n != 1 {
		t.Fatalf("%d lookups: the deferred create asked the provider again although nothing was sent", n)
	}
}

// The pipeline's own budget parks an order whose create outcome stays
// unknown, also when every later run is only deferred (the breaker the
// order's own failures opened): asynq's retry counter never decides.
func TestUnknownOutcomeParksByTheStepsOwnBudget(t *testing.T) {
	t.Run("deferred for too long", func(t *testing.T) {
		b := setupOnce(t, redistest.Mini(t), nil)
		k := b.previewed(t, onceOrder("park-1", 1))
		b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{DropCreates: 1})
		if err := b.create(k); providers.ClassOf(err) != providers.ClassUnknownOutcome {
			t.Fatalf("first create: %v", err)
		}
		open := &providers.DeferError{Provider: providers.Depal, Reason: providers.ReasonBreakerOpen, Wait: 30 * time.Second}
		b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{LookupErr: open})
		b.clock.Add(time.Minute)
		wantDeferred(t, b.create(k), providers.ReasonBreakerOpen)
		b.clock.Add(outcomeBudget)
		err := b.create(k)
		if !errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("create after the budget: %v, want the task archived with the reason", err)
		}
		r := b.get(t, k)
		if r.State != providers.StateNeedsReview || r.Error == nil || r.Error.Code != ReasonOutcomeUnknown {
			t.Fatalf("record %s %+v, want needs_review with %s", r.State, r.Error, ReasonOutcomeUnknown)
		}
	})
	t.Run("failures", func(t *testing.T) {
		b := setupOnce(t, redistest.Mini(t), nil)
		k := b.previewed(t, onceOrder("park-2", 1))
		b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{DropCreates: 1})
		_ = b.create(k)
		b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{LookupErr: &providers.TransientError{Op: "lookup", Err: providers.ErrAmbiguous}})
		var err error
		for i := 1; i < createBudget+5 && !errors.Is(err, asynq.SkipRetry); i++ {
			b.clock.Add(time.Second)
			err = b.create(k)
		}
		if r := b.get(t, k); r.State != providers.StateNeedsReview || b.fake.Created(k.OutOrderID) != 1 {
			t.Fatalf("after %d failed runs: %s, %d orders; want needs_review and 1", createBudget, r.State, b.fake.Created(k.OutOrderID))
		}
	})
	t.Run("asynq never archives first", func(t *testing.T) {
		b := setupOnce(t, redistest.Mini(t), nil)
		step := newCreateTask(orders.Key{Provider: providers.Depal, OutOrderID: "park-3"})
		info, err := b.client.Enqueue(step.Task)
		if err != nil {
			t.Fatal(err)
		}
		if info.MaxRetry < 10*createBudget {
			t.Fatalf("create MaxRetry %d: asynq would archive (or its recoverer, after a kill) before the step's budget of %d is spent", info.MaxRetry, createBudget)
		}
	})
}

// An archived task holding a step's id (a cancel that gave up) must not
// silently swallow the next request for that step.
func TestArchivedTaskDoesNotBlockANewRequest(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("arch-1", 1))
	step := NewCancelTask(k)
	if _, err := b.client.Enqueue(step.Task); err != nil {
		t.Fatal(err)
	}
	if err := b.insp.ArchiveTask(step.Queue, step.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := RequestCancel(context.Background(), b.st, b.client, b.insp, k); err != nil || ok != CancelQueued {
		t.Fatalf("RequestCancel = %v, %v", ok, err)
	}
	info, err := b.insp.GetTaskInfo(step.Queue, step.ID)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("cancel task after the request: %+v, %v; want pending", info, err)
	}
}

// A partial create (the provider refused a line and made an order for
// the rest) is not a plain order: it is followed, and parked for a person.
func TestPartialCreateIsParked(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("part-1", 2))
	b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{RejectLast: true})
	if err := b.create(k); err != nil {
		t.Fatal(err)
	}
	r := b.get(t, k)
	if r.State != providers.StateNeedsReview || r.Error == nil || r.Error.Code != ReasonPartialCreate ||
		len(r.ProviderOrderIDs) != 1 || len(r.Rejected) != 1 {
		t.Fatalf("record %s %+v ids %v rejected %v; want needs_review PARTIAL_CREATE with the order and the refused line",
			r.State, r.Error, r.ProviderOrderIDs, r.Rejected)
	}
	if _, err := b.insp.GetTaskInfo(tasks.Queue(k.Provider, tasks.KindPoll), pollID(k, 0)); err != nil {
		t.Fatalf("the partial order is not followed: %v", err)
	}
}

// A live order whose task was deleted (one click in the web UI) is found
// by the repair sweep and its step queued again, once, however many pods
// sweep at the same time.
func TestRepairSweepRequeuesALostStep(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	placed := b.previewed(t, onceOrder("rep-1", 1))
	if err := b.create(placed); err != nil {
		t.Fatal(err)
	}
	waiting := b.previewed(t, onceOrder("rep-2", 1))
	pollQ := tasks.Queue(placed.Provider, tasks.KindPoll)
	createStep := newCreateTask(waiting)
	for _, d := range []struct{ q, id string }{{pollQ, pollID(placed, 0)}, {createStep.Queue, createStep.ID}} {
		if err := b.insp.DeleteTask(d.q, d.id); err != nil {
			t.Fatalf("delete %s: %v", d.id, err)
		}
	}
	if n, err := b.h.SweepRepairs(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep of orders just written: %d, %v; want 0 (they may be between two steps)", n, err)
	}
	b.clock.Add(time.Minute)
	other := setupOnce(t, b.srv, nil) // a second pod on the same Redis
	other.clock.Add(2 * time.Minute)
	n1, err1 := b.h.SweepRepairs(context.Background())
	n2, err2 := other.h.SweepRepairs(context.Background())
	if err1 != nil || err2 != nil || n1+n2 < 2 {
		t.Fatalf("sweeps re-queued %d and %d (%v, %v); want the two lost steps", n1, n2, err1, err2)
	}
	for _, d := range []struct{ q, id string }{{pollQ, pollID(placed, 0)}, {createStep.Queue, createStep.ID}} {
		if _, err := b.insp.GetTaskInfo(d.q, d.id); err != nil {
			t.Fatalf("%s not queued again: %v", d.id, err)
		}
	}
	if n, _ := b.h.SweepRepairs(context.Background()); n != 0 {
		t.Fatalf("a second sweep re-queued %d steps that are queued", n)
	}
}

// A partial create whose answer was lost: the lookup finds the order, but
// it lacks a line. Adopted as whole, it went on as a normal order; the
// first poll's lines show what is missing and park it.
func TestLostPartialCreateIsParkedWhenFound(t *testing.T) {
	b := setupOnce(t, redistest.Mini(t), nil)
	k := b.previewed(t, onceOrder("lostpart-1", 2))
	b.fake.SetPlan(k.OutOrderID, fakeprovider.Plan{RejectLast: true, DropCreates: 1})
	if err := b.create(k); providers.ClassOf(err) != providers.ClassUnknownOutcome {
		t.Fatalf("first create: %v, want an unknown outcome", err)
	}
	if err := b.create(k); err != nil { // the lookup finds it
		t.Fatal(err)
	}
	if r := b.get(t, k); r.State != providers.StateCreated || !r.Adopted {
		t.Fatalf("after the lookup: %s adopted=%v", r.State, r.Adopted)
	}
	if err := b.h.ProcessTask(context.Background(), newPollTask(k, 0, 0).Task); err != nil {
		t.Fatal(err)
	}
	r := b.get(t, k)
	if r.State != providers.StateNeedsReview || r.Error == nil || r.Error.Code != ReasonPartialCreate ||
		len(r.Rejected) != 1 || r.Rejected[0].ProductID != 623456789013 {
		t.Fatalf("after the first poll: %s %+v rejected %+v; want needs_review PARTIAL_CREATE naming the second line", r.State, r.Error, r.Rejected)
	}
	if n := b.fake.Created(k.OutOrderID); n != 1 {
		t.Fatalf("%d orders at the provider, want 1", n)
	}
}

func TestMissingLines(t *testing.T) {
	items := []providers.Item{{ProductID: 1, SkuID: "a", Quantity: 2}, {ProductID: 2, SkuID: "b", Quantity: 1}}
	st := func(lines ...providers.OrderLine) *providers.OrderStatus { return &providers.OrderStatus{Lines: lines} }
	for _, c := range []struct {
		name    string
		sts     []*providers.OrderStatus
		missing int
		ok      bool
	}{
		{"whole", []*providers.OrderStatus{st(providers.OrderLine{ProductID: 1, SkuID: "a", Quantity: 2}, providers.OrderLine{ProductID: 2, SkuID: "b", Quantity: 1})}, 0, true},
		{"split by quantity", []*providers.OrderStatus{st(providers.OrderLine{ProductID: 1, SkuID: "a", Quantity: 1}), st(providers.OrderLine{ProductID: 1, SkuID: "a", Quantity: 1}, providers.OrderLine{ProductID: 2, SkuID: "b", Quantity: 1})}, 0, true},
		{"a line missing", []*providers.OrderStatus{st(providers.OrderLine{ProductID: 1, SkuID: "a", Quantity: 2})}, 1, true},
		{"short of quantity", []*providers.OrderStatus{st(providers.OrderLine{ProductID: 1, SkuID: "a", Quantity: 1}, providers.OrderLine{ProductID: 2, SkuID: "b", Quantity: 1})}, 1, true},
		{"one part does not say", []*providers.OrderStatus{st(providers.OrderLine{ProductID: 1, SkuID: "a", Quantity: 2}), {}}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, ok := missingLines(items, c.sts)
			if len(m) != c.missing || ok != c.ok {
				t.Errorf("missingLines = %+v, %v; want %d missing, %v", m, ok, c.missing, c.ok)
			}
		})
	}
}
