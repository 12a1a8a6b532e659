package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
)

// The tests in this file drive the real handlers step by step against the
// simulator over HTTP, through the real clients, on the simulator's manual
// clock (which the store shares): an order's whole life after the create,
// its deadline, its price, and a person's decisions.

type lifeBundle struct {
	h      *Handlers
	st     *orders.Store
	sim    *sim.Sim
	clock  *sim.ManualClock
	client *asynq.Client
	insp   *asynq.Inspector
	cfg    Config
}

const lifeDeadline = 6 * time.Hour

func setupLife(t *testing.T, mod func(*Config)) *lifeBundle {
	t.Helper()
	clock := sim.NewManualClock(time.Now().UTC().Truncate(time.Second))
	s, err := sim.New(sim.Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	x, err := xportcn.New(xportcn.Config{BaseURL: s.XportcnURL(), AccessKey: "sim-ak", AccessSecret: "sim-secret-x",
		UserID: "sim-user", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := depal.New(depal.Config{BaseURL: s.DepalURL(), AppKey: "simapp", AppSecret: "sim-secret-d", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Mini(t)
	st := orders.NewStore(srv.Client(t), orders.Config{Now: clock.Now})
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: srv.Addr})
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close(); _ = insp.Close() })
	cfg := Config{Store: st, Providers: map[string]providers.Provider{providers.Xportcn: x, providers.Depal: d},
		Enqueuer: client, Inspector: insp, Deadline: lifeDeadline}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.stageCreate = true // these tests stage what happens between preview and create
	return &lifeBundle{h: h, st: st, sim: s, clock: clock, client: client, insp: insp, cfg: h.cfg}
}

func lifeOrder(provider, id string, product int64, maxTotal string) providers.OrderRequest {
	return providers.OrderRequest{Provider: provider, OutOrderID: id, MaxTotal: maxTotal,
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Phone: "13800138000", Country: "CN",
			Province: "Zhejiang", City: "Hangzhou", District: "Xihu", Address: "1 Example Road", PostCode: "310000"},
		Items:   []providers.Item{{ProductID: product, SkuID: "sku1", Quantity: 2}},
		Options: providers.Options{Flow: "general"}}
}

func (b *lifeBundle) run(t *testing.T, s Step) error {
	t.Helper()
	return b.h.ProcessTask(context.Background(), s.Task)
}

func (b *lifeBundle) mustRun(t *testing.T, s Step) {
	t.Helper()
	if err := b.run(t, s); err != nil {
		t.Fatalf("%s: %v", s.ID, err)
	}
}

func (b *lifeBundle) get(t *testing.T, k orders.Key) *orders.Record {
	t.Helper()
	r, err := b.st.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// placed previews and creates an order and polls it once.
func (b *lifeBundle) placed(t *testing.T, req providers.OrderRequest) orders.Key {
	t.Helper()
	step, err := PreviewStep(req)
	if err != nil {
		t.Fatal(err)
	}
	b.mustRun(t, step)
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	b.mustRun(t, newCreateTask(k))
	if r := b.get(t, k); len(r.ProviderOrderIDs) == 0 {
		t.Fatalf("after create: %s, %+v", r.State, r.Error)
	}
	b.poll(t, k)
	return k
}

// poll runs the order's current poll.
func (b *lifeBundle) poll(t *testing.T, k orders.Key) {
	t.Helper()
	b.mustRun(t, newPollTask(k, b.get(t, k).PollSeq, 0))
}

// simStatus is the simulator's status word of the order's provider orders.
func (b *lifeBundle) simStatus(k orders.Key) []string {
	var out []string
	for _, v := range b.sim.Order(k.Provider, k.OutOrderID) {
		out = append(out, v.Status)
	}
	return out
}

// queued reports whether a task is queued (in any state).
func (b *lifeBundle) queued(s Step) bool { return queuedIn(b.insp, s) }

// cancelled runs the cancel step, waiting out 1688's no-cancel-within-10s.
func (b *lifeBundle) cancelled(t *testing.T, k orders.Key) {
	t.Helper()
	err := b.run(t, NewCancelTask(k))
	if d, ok := providers.AsDeferral(err); ok && d.Reason == "cancel_too_fast" {
		b.clock.Advance(11 * time.Second)
		err = b.run(t, NewCancelTask(k))
	}
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
}

func hasEntry(r *orders.Record, event string) *orders.Transition {
	for i := range r.History {
		if r.History[i].Event == event {
			return &r.History[i]
		}
	}
	return nil
}

// An order never created ends expired at its deadline, and nothing is
// ever created for it.
func TestDeadlineOrderNotCreated(t *testing.T) {
	b := setupLife(t, nil)
	req := lifeOrder(providers.Depal, "dl-none", 623456789012, "")
	step, _ := PreviewStep(req)
	b.mustRun(t, step)
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	b.clock.Advance(lifeDeadline + time.Minute)
	b.mustRun(t, NewExpireTask(k))
	r := b.get(t, k)
	if r.State != providers.StateExpired || r.Error == nil || r.Error.Code != CodeDeadline {
		t.Fatalf("state %s error %+v, want expired DEADLINE", r.State, r.Error)
	}
	b.mustRun(t, newCreateTask(k)) // a create still queued does nothing
	if n := len(b.sim.Order(k.Provider, k.OutOrderID)); n != 0 {
		t.Fatalf("the provider has %d orders, want none", n)
	}
}

// An unpaid order at its deadline is cancelled at the provider, then ends
// expired with the provider's answer. Before, it ended expired while the
// provider order still awaited payment.
func TestDeadlineUnpaidIsCancelledAtTheProvider(t *testing.T) {
	for _, p := range providers.Names {
		t.Run(p, func(t *testing.T) {
			b := setupLife(t, nil)
			k := b.placed(t, lifeOrder(p, "dl-unpaid", sim.ProductUnpaid, ""))
			if r := b.get(t, k); r.State != providers.StateAwaitingPayment {
				t.Fatalf("before the deadline: %s", r.State)
			}
			b.clock.Advance(lifeDeadline + time.Minute)
			b.mustRun(t, NewExpireTask(k))
			r := b.get(t, k)
			if r.State != providers.StateAwaitingPayment || r.CancelFor != cancelForDeadline || !b.queued(NewCancelTask(k)) {
				t.Fatalf("after the deadline step: %s cancelFor %q; want the cancel step queued", r.State, r.CancelFor)
			}
			b.cancelled(t, k)
			r = b.get(t, k)
			if r.State != providers.StateExpired || r.Error == nil || r.Error.Code != CodeDeadline ||
				!strings.Contains(r.Error.Message, "cancelled at the provider") {
				t.Fatalf("state %s error %+v, want expired DEADLINE cancelled at the provider", r.State, r.Error)
			}
			if got := b.simStatus(k); len(got) != 1 || got[0] != "cancel" {
				t.Fatalf("provider status %v, want cancel", got)
			}
		})
	}
}

// A paid order at its deadline is never reported terminal: it is parked
// (DEADLINE_LIVE), off the deadline sweep, followed at the slowest poll
// step, and ends when the provider ends it.
func TestDeadlinePaidIsParkedAndFollowed(t *testing.T) {
	b := setupLife(t, func(c *Config) { c.Deadline = time.Hour })
	k := b.placed(t, lifeOrder(providers.Depal, "dl-paid", 623456789012, ""))
	b.clock.Advance(3 * time.Minute) // paid
	b.poll(t, k)
	if r := b.get(t, k); r.State != providers.StatePaid {
		t.Fatalf("before the deadline: %s", r.State)
	}
	b.clock.Advance(time.Hour) // shipped
	b.mustRun(t, NewExpireTask(k))
	r := b.get(t, k)
	if r.State != providers.StateNeedsReview || r.Error == nil || r.Error.Code != ReasonDeadlineLive || !r.DeadlineLive {
		t.Fatalf("state %s error %+v, want needs_review DEADLINE_LIVE", r.State, r.Error)
	}
	if got := b.simStatus(k); got[0] == "cancel" {
		t.Fatal("a paid order was cancelled")
	}
	if due, err := b.st.ReceivedBefore(context.Background(), b.clock.Now(), 10); err != nil || len(due) != 0 {
		t.Fatalf("deadline sweep list %v, %v; want the parked order off it", due, err)
	}
	if n, _ := b.h.SweepDeadlines(context.Background()); n != 0 {
		t.Fatalf("deadline sweep enqueued %d", n)
	}
	b.poll(t, k)
	r = b.get(t, k)
	if want := len(b.cfg.PollSchedule) - 1; r.PollStep != want || r.State != providers.StateNeedsReview {
		t.Fatalf("poll step %d state %s, want the slowest step %d, still parked", r.PollStep, r.State, want)
	}
	b.clock.Advance(10 * time.Hour) // shipped, signed, completed at the provider
	b.poll(t, k)
	if r := b.get(t, k); r.State != providers.StateCompleted {
		t.Fatalf("after the provider completed it: %s", r.State)
	}
}

// A create that lands after the order expired (the provider answered
// after the settle window, while its search still hid the order) is
// cancelled at the provider. Before, it stored its ids and stayed expired
// with a live provider order.
func TestCreateLandingAfterExpiryIsCancelled(t *testing.T) {
	b := setupLife(t, func(c *Config) { c.SettleWindow = time.Minute })
	req := lifeOrder(providers.Depal, "dl-late", sim.ProductUnpaid, "")
	step, _ := PreviewStep(req)
	b.mustRun(t, step)
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	b.sim.SetFaults(sim.Faults{Slow: 1, SlowDelay: 1500 * time.Millisecond, SearchLag: time.Minute})
	var wg sync.WaitGroup
	var createErr error
	wg.Add(1)
	go func() { defer wg.Done(); createErr = b.run(t, newCreateTask(k)) }()
	// Wait for the provider to have made the order: its answer is then
	// held for SlowDelay. (The record's create attempt is counted just
	// before the request leaves, so lifting the fault on it could let the
	// create through fast.)
	for len(b.simStatus(k)) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	b.sim.SetFaults(sim.Faults{SearchLag: time.Minute}) // the create in flight stays slow
	b.clock.Advance(lifeDeadline + time.Hour)
	b.mustRun(t, NewExpireTask(k)) // its lookup does not see the order yet
	if r := b.get(t, k); r.State != providers.StateExpired {
		t.Fatalf("after the deadline step: %s", r.State)
	}
	wg.Wait()
	if createErr != nil {
		t.Fatalf("create: %v", createErr)
	}
	r := b.get(t, k)
	if r.State != providers.StateExpired || len(r.ProviderOrderIDs) != 1 || !b.queued(NewCancelTask(k)) {
		t.Fatalf("after the late create: %s %v; want expired with the id and a cancel queued", r.State, r.ProviderOrderIDs)
	}
	b.sim.SetFaults(sim.Faults{})
	b.cancelled(t, k)
	r = b.get(t, k)
	if !r.CancelDone || hasEntry(r, orders.EntryCancelled) == nil {
		t.Fatalf("cancelDone %v cancelFor %q ids %v refused %q history %+v", r.CancelDone, r.CancelFor, r.ProviderOrderIDs, r.CancelRefused, r.History)
	}
	if got := b.simStatus(k); len(got) != 1 || got[0] != "cancel" {
		t.Fatalf("provider status %v, want cancel", got)
	}
}

// plannedTotal is the simulator's planned quote total of req.
func plannedTotal(req providers.OrderRequest) int64 {
	return sim.PlannedQuote(req.Provider, req.Items).Total
}

func maxTotalFor(req providers.OrderRequest) string {
	return providers.FormatYuan(plannedTotal(req) + 100)
}

// A create answered with a total above maxTotal (the seller re-priced
// after the preview) is cancelled at the provider and ends rejected with
// both amounts. Before, it went on to completed.
func TestPriceRaisedAtCreate(t *testing.T) {
	for _, p := range providers.Names {
		t.Run(p, func(t *testing.T) {
			b := setupLife(t, nil)
			req := lifeOrder(p, "pg-create", sim.ProductRepriceAtCreate, "")
			req.MaxTotal = maxTotalFor(req)
			k := b.placed(t, req)
			r := b.get(t, k)
			if r.Error == nil || r.Error.Code != CodePriceGuard || r.Error.MaxTotal != req.MaxTotal || r.Error.Total == "" ||
				r.CancelFor != cancelForPrice || hasEntry(r, orders.EntryPriceChanged) == nil || len(r.Totals) == 0 {
				t.Fatalf("after create: error %+v cancelFor %q totals %+v", r.Error, r.CancelFor, r.Totals)
			}
			b.cancelled(t, k)
			r = b.get(t, k)
			if r.State != providers.StateRejected || r.Error.Code != CodePriceGuard {
				t.Fatalf("state %s error %+v, want rejected PRICE_GUARD", r.State, r.Error)
			}
			if got := b.simStatus(k); got[0] != "cancel" {
				t.Fatalf("provider status %v, want cancel", got)
			}
		})
	}
}

// A total raised before payment, seen by a poll, cancels the order and
// rejects it; seen only once paid, it parks the order (PRICE_CHANGED).
func TestPriceRaisedBeforePayment(t *testing.T) {
	t.Run("unpaid", func(t *testing.T) {
		b := setupLife(t, nil)
		req := lifeOrder(providers.Depal, "pg-poll", sim.ProductRepriceUnpaid, "")
		req.MaxTotal = maxTotalFor(req)
		k := b.placed(t, req)
		b.clock.Advance(90 * time.Second) // the raise, at PayAfter/2
		b.poll(t, k)
		if r := b.get(t, k); r.CancelFor != cancelForPrice || !b.queued(NewCancelTask(k)) {
			t.Fatalf("after the poll: %s cancelFor %q error %+v", r.State, r.CancelFor, r.Error)
		}
		b.cancelled(t, k)
		r := b.get(t, k)
		if r.State != providers.StateRejected || r.Error.Code != CodePriceGuard ||
			r.Error.Total != providers.FormatYuan(sim.Goods(req.Items)*sim.RepriceFactor+sim.Freight+sim.ServiceFee(sim.Goods(req.Items))) {
			t.Fatalf("state %s error %+v", r.State, r.Error)
		}
	})
	t.Run("paid", func(t *testing.T) {
		b := setupLife(t, nil)
		req := lifeOrder(providers.Depal, "pg-paid", sim.ProductRepricePaid, "")
		req.MaxTotal = maxTotalFor(req)
		k := b.placed(t, req)
		b.clock.Advance(3 * time.Minute) // raised, then paid
		b.poll(t, k)
		r := b.get(t, k)
		if r.State != providers.StateNeedsReview || r.Error == nil || r.Error.Code != ReasonPriceChanged || r.Error.MaxTotal != req.MaxTotal {
			t.Fatalf("state %s error %+v, want needs_review PRICE_CHANGED", r.State, r.Error)
		}
		if r.ProviderState != providers.StatePaid || b.queued(NewCancelTask(k)) {
			t.Fatalf("provider state %s, cancel queued %v", r.ProviderState, b.queued(NewCancelTask(k)))
		}
	})
}

// A preview that answers no total is refused before any create.
func TestZeroTotalRefused(t *testing.T) {
	for _, p := range providers.Names {
		t.Run(p, func(t *testing.T) {
			b := setupLife(t, nil)
			req := lifeOrder(p, "pg-zero", sim.ProductZeroTotal, "")
			step, _ := PreviewStep(req)
			err := b.run(t, step)
			k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
			r := b.get(t, k)
			if r.State == providers.StateRejected {
				if r.Error == nil || r.Error.Code != CodePriceGuard {
					t.Fatalf("error %+v, want PRICE_GUARD", r.Error)
				}
			} else if err == nil || r.State != providers.StateReceived {
				// A client may refuse the answer as malformed: then the preview retries, never creates.
				t.Fatalf("state %s err %v", r.State, err)
			}
			if b.queued(newCreateTask(k)) {
				t.Fatal("a create was queued for an unpriced order")
			}
		})
	}
}

// A quote older than QUOTE_MAX_AGE is made again before the create.
func TestOldQuoteIsPreviewedAgain(t *testing.T) {
	b := setupLife(t, func(c *Config) { c.QuoteMaxAge = 30 * time.Minute })
	req := lifeOrder(providers.Xportcn, "pg-old", 623456789012, "")
	step, _ := PreviewStep(req)
	b.mustRun(t, step)
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	first := b.get(t, k).QuotedAt
	b.clock.Advance(31 * time.Minute)
	b.mustRun(t, newCreateTask(k))
	r := b.get(t, k)
	if n := b.sim.Counters().Requests[providers.Xportcn]["preview"]; n != 2 {
		t.Fatalf("%d previews, want 2", n)
	}
	if !r.QuotedAt.After(first) || len(r.ProviderOrderIDs) != 1 {
		t.Fatalf("quoted at %s (first %s), ids %v", r.QuotedAt, first, r.ProviderOrderIDs)
	}
}

// Every parcel of a split order is tracked; it is delivered once all are
// signed for. Before, only the first provider order's parcel was.
func TestSplitOrderTracksEveryParcel(t *testing.T) {
	b := setupLife(t, nil)
	k := b.placed(t, lifeOrder(providers.Xportcn, "split-1", sim.ProductSplit, ""))
	if r := b.get(t, k); len(r.ProviderOrderIDs) != 2 {
		t.Fatalf("ids %v, want 2", r.ProviderOrderIDs)
	}
	b.clock.Advance(3*time.Minute + 30*time.Minute) // paid, shipped
	b.poll(t, k)
	r := b.get(t, k)
	if len(r.Parcels) != 2 || r.Parcels[0].BillNo == r.Parcels[1].BillNo {
		t.Fatalf("parcels %+v, want one per provider order", r.Parcels)
	}
	b.clock.Advance(4 * time.Hour) // both signed
	b.mustRun(t, newTrackTask(k, r.TrackSeq, 0))
	r = b.get(t, k)
	for _, pc := range r.Parcels {
		if pc.Status != providers.ParcelSigned || !pc.Delivered {
			t.Fatalf("parcel %+v, want signed", pc)
		}
	}
	if !r.Delivered || !r.TrackDone {
		t.Fatalf("delivered %v trackDone %v", r.Delivered, r.TrackDone)
	}
	for _, pc := range r.Parcels {
		if got, err := b.st.FindByParcel(context.Background(), k.Provider, pc.BillNo); err != nil || got != k {
			t.Fatalf("find by %s: %v, %v", pc.BillNo, got, err)
		}
	}
}

// parked makes a previewed order whose create outcome is unknown: a
// create was sent (recorded) and the order parked.
func (b *lifeBundle) parked(t *testing.T, req providers.OrderRequest) orders.Key {
	t.Helper()
	step, _ := PreviewStep(req)
	b.mustRun(t, step)
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	if _, err := b.st.Update(context.Background(), k, func(r *orders.Record) error {
		r.CreateAttempts, r.CreateSentAt = 1, b.clock.Now().UTC()
		r.Apply(providers.EventParked, b.clock.Now(), ReasonOutcomeUnknown)
		r.Error = &orders.ErrorInfo{Code: ReasonOutcomeUnknown, Message: "test"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The create that parked it was archived; as if a person deleted it.
	s := newCreateTask(k)
	if err := b.insp.DeleteTask(s.Queue, s.ID); err != nil {
		t.Fatal(err)
	}
	return k
}

// atProvider places the order at the provider behind orderflow's back (the
// create whose answer was lost).
func (b *lifeBundle) atProvider(t *testing.T, k orders.Key) string {
	t.Helper()
	r := b.get(t, k)
	pl, err := b.cfg.Providers[k.Provider].Create(context.Background(), &r.Request, r.Quote)
	if err != nil {
		t.Fatal(err)
	}
	return pl.OrderIDs[0]
}

func (b *lifeBundle) decide(t *testing.T, k orders.Key, d Decision) Decided {
	t.Helper()
	res, err := b.h.Decide(context.Background(), k, d)
	if err != nil {
		t.Fatalf("%s: %v", d.Action, err)
	}
	return res
}

func wantDecision(t *testing.T, r *orders.Record, action Action, by string) {
	t.Helper()
	for _, e := range r.History {
		if e.Action == string(action) && e.Actor == by {
			return
		}
	}
	t.Fatalf("no %s by %s in the history %+v", action, by, r.History)
}

func TestReviewRecheck(t *testing.T) {
	b := setupLife(t, nil)
	k := b.parked(t, lifeOrder(providers.Depal, "rv-recheck", 623456789012, ""))
	res := b.decide(t, k, Decision{Action: ActionRecheck, By: "ana", Reason: "ticket 12"})
	if !res.Done || !strings.Contains(res.Message, "no order") || res.Record.State != providers.StateNeedsReview {
		t.Fatalf("recheck with nothing there: %+v", res)
	}
	wantDecision(t, res.Record, ActionRecheck, "ana")
	id := b.atProvider(t, k)
	res = b.decide(t, k, Decision{Action: ActionRecheck, By: "ana"})
	r := b.get(t, k)
	if !res.Done || r.State != providers.StateCreated || len(r.ProviderOrderIDs) != 1 || r.ProviderOrderIDs[0] != id {
		t.Fatalf("recheck with the order there: %+v; record %s %v", res, r.State, r.ProviderOrderIDs)
	}
	if !b.queued(newPollTask(k, 0, 0)) {
		t.Fatal("no poll queued after adopting")
	}
	if got, err := b.st.FindByProviderOrder(context.Background(), k.Provider, id); err != nil || got != k {
		t.Fatalf("find %s: %v %v", id, got, err)
	}
}

func TestReviewAttach(t *testing.T) {
	b := setupLife(t, nil)
	k := b.parked(t, lifeOrder(providers.Depal, "rv-attach", 623456789012, ""))
	res := b.decide(t, k, Decision{Action: ActionAttach, IDs: []string{"4200000000000099999"}, By: "ana"})
	if res.Done || !strings.Contains(res.Message, "does not know") {
		t.Fatalf("attach of an unknown id: %+v", res)
	}
	id := b.atProvider(t, k)
	if res := b.decide(t, k, Decision{Action: ActionAttach, IDs: []string{id}, By: "ana", DryRun: true}); !res.Done ||
		!strings.Contains(res.Message, "attach it") || res.Record.State != providers.StateNeedsReview {
		t.Fatalf("dry run: %+v", res)
	}
	res = b.decide(t, k, Decision{Action: ActionAttach, IDs: []string{id}, By: "ana", Reason: "found in the provider's console"})
	r := b.get(t, k)
	if !res.Done || r.State != providers.StateCreated || r.ProviderOrderIDs[0] != id || !r.Adopted {
		t.Fatalf("attach: %+v; record %s %v", res, r.State, r.ProviderOrderIDs)
	}
	wantDecision(t, r, ActionAttach, "ana")
	if _, err := b.h.Decide(context.Background(), k, Decision{Action: ActionAttach, By: "ana"}); !errors.Is(err, ErrDecision) {
		t.Fatalf("attach without ids: %v, want ErrDecision", err)
	}
}

func TestReviewRecreate(t *testing.T) {
	b := setupLife(t, nil)
	k := b.parked(t, lifeOrder(providers.Depal, "rv-recreate", 623456789012, ""))
	res := b.decide(t, k, Decision{Action: ActionRecreate, By: "ana", DryRun: true})
	if !res.Done || !strings.Contains(res.Message, "no order") || !strings.Contains(res.Message, "create again?") {
		t.Fatalf("dry run: %+v", res)
	}
	id := b.atProvider(t, k) // the lost create landed meanwhile
	res = b.decide(t, k, Decision{Action: ActionRecreate, By: "ana"})
	if res.Done || !strings.Contains(res.Message, id) || b.queued(newCreateTask(k)) {
		t.Fatalf("recreate while the provider has the order: %+v", res)
	}
	b2 := setupLife(t, nil)
	k = b2.parked(t, lifeOrder(providers.Depal, "rv-recreate", 623456789012, ""))
	res = b2.decide(t, k, Decision{Action: ActionRecreate, By: "ana", Reason: "confirmed nothing was bought"})
	if !res.Done || !b2.queued(newCreateTask(k)) {
		t.Fatalf("recreate: %+v", res)
	}
	b2.mustRun(t, newCreateTask(k))
	r := b2.get(t, k)
	if r.State != providers.StateCreated || len(b2.sim.Order(k.Provider, k.OutOrderID)) != 1 {
		t.Fatalf("after recreate: %s, provider has %d", r.State, len(b2.sim.Order(k.Provider, k.OutOrderID)))
	}
	wantDecision(t, r, ActionRecreate, "ana")
}

func TestReviewClose(t *testing.T) {
	b := setupLife(t, nil)
	k := b.parked(t, lifeOrder(providers.Depal, "rv-close", 623456789012, ""))
	if _, err := b.h.Decide(context.Background(), k, Decision{Action: ActionClose, By: "ana"}); !errors.Is(err, ErrDecision) {
		t.Fatalf("close without a reason: %v", err)
	}
	res := b.decide(t, k, Decision{Action: ActionClose, By: "ana", Reason: "customer withdrew"})
	r := b.get(t, k)
	if !res.Done || r.State != providers.StateFailed || r.Error.Code != CodeManual || r.Error.Message != "customer withdrew" {
		t.Fatalf("close: %+v; record %s %+v", res, r.State, r.Error)
	}
	last := r.History[len(r.History)-1]
	if last.Actor != "ana" || last.Action != "close" || last.Reason != "customer withdrew" {
		t.Fatalf("last entry %+v", last)
	}
	if res := b.decide(t, k, Decision{Action: ActionRecheck, By: "ana"}); res.Done {
		t.Fatalf("a decision on an ended order: %+v", res)
	}
}

func TestRetryRerunsArchivedTasks(t *testing.T) {
	b := setupLife(t, nil)
	k := b.parked(t, lifeOrder(providers.Depal, "rv-retry", 623456789012, ""))
	s := newCreateTask(k)
	if _, err := b.client.Enqueue(s.Task); err != nil {
		t.Fatal(err)
	}
	if err := b.insp.ArchiveTask(s.Queue, s.ID); err != nil { // parked by its own budget
		t.Fatal(err)
	}
	res := b.decide(t, k, Decision{Action: ActionRetry, By: "ana"})
	info, err := b.insp.GetTaskInfo(s.Queue, s.ID)
	if !res.Done || err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("retry: %+v; task %+v %v", res, info, err)
	}
	wantDecision(t, b.get(t, k), ActionRetry, "ana")
	if res := b.decide(t, k, Decision{Action: ActionRetry, By: "ana"}); res.Done {
		t.Fatalf("retry with nothing archived: %+v", res)
	}
}

// Cancelling a parked order whose create outcome is unknown answers what
// will happen and queues nothing. Before, it looped on await_create until
// the deadline.
func TestCancelParkedOrderAnswers(t *testing.T) {
	b := setupLife(t, nil)
	k := b.parked(t, lifeOrder(providers.Depal, "rv-cancel", 623456789012, ""))
	res, err := DecideCancel(context.Background(), b.st, b.client, b.insp, k, Decision{By: "ana"})
	if err != nil || !res.Done || !strings.Contains(res.Message, "nothing is sent now") {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	if b.queued(NewCancelTask(k)) {
		t.Fatal("a cancel task was queued for a parked order")
	}
	if err := b.run(t, NewCancelTask(k)); err != nil {
		t.Fatalf("a cancel task that runs anyway: %v, want nil (no await_create loop)", err)
	}
	// Once the provider order is found, the cancel is carried out.
	b.atProvider(t, k)
	b.clock.Advance(11 * time.Second)
	b.decide(t, k, Decision{Action: ActionRecheck, By: "ana"})
	if !b.queued(NewCancelTask(k)) {
		t.Fatal("no cancel queued once the provider order was adopted")
	}
	b.cancelled(t, k)
	if got := b.simStatus(k); got[0] != "cancel" {
		t.Fatalf("provider status %v", got)
	}
}

// A poll that sees the provider's "cancel" of an order orderflow itself is
// cancelling (the cancel step's answer not recorded yet) ends it as that
// cancel would: rejected for the price guard, not cancelled.
func TestPollSeeingOurOwnCancelEndsAsItsReason(t *testing.T) {
	b := setupLife(t, nil)
	req := lifeOrder(providers.Depal, "pg-race", sim.ProductRepriceUnpaid, "")
	req.MaxTotal = maxTotalFor(req)
	k := b.placed(t, req)
	b.clock.Advance(90 * time.Second)
	b.poll(t, k)
	r := b.get(t, k)
	if r.CancelFor != cancelForPrice {
		t.Fatalf("cancelFor %q", r.CancelFor)
	}
	// The cancel step's call reached the provider; its answer was lost.
	if err := b.cfg.Providers[k.Provider].Cancel(context.Background(), r.ProviderOrderIDs[0], "test"); err != nil {
		t.Fatal(err)
	}
	b.poll(t, k)
	if r := b.get(t, k); r.State != providers.StateRejected || r.Error.Code != CodePriceGuard || !r.CancelDone {
		t.Fatalf("state %s error %+v cancelDone %v, want rejected PRICE_GUARD", r.State, r.Error, r.CancelDone)
	}
}
