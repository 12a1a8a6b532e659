package contract_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"orderflow/providers"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
)

// TestLifecycle runs every operation of each client: preview, create,
// lookup, details, trace, cancel, through a whole order life.
func TestLifecycle(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "new", func(t *testing.T, name string, p providers.Provider) {
		items := []providers.Item{item(7, 3), item(10012, 1)}
		req := order(name, "life-"+name, items...)
		q, pl := place(t, p, req)
		want := sim.PlannedQuote(name, items)
		if q.Goods != want.Goods || q.Freight != want.Freight || q.Service != want.Service || q.Total != want.Total {
			t.Errorf("quote %+v, want %+v", q, want)
		}
		if len(q.Lines) != 2 || q.Lines[0].UnitPrice != sim.UnitPrice(7) || q.Lines[0].Amount != 3*sim.UnitPrice(7) {
			t.Errorf("quote lines %+v", q.Lines)
		}
		views := b.sim.Order(name, req.OutOrderID)
		if len(views) != 1 || len(pl.OrderIDs) != 1 || pl.OrderIDs[0] != views[0].OrderID {
			t.Fatalf("placement %+v, sim has %+v", pl, views)
		}
		id := pl.OrderIDs[0]
		found, err := p.Lookup(ctx(t), req.OutOrderID)
		if err != nil || !slices.Equal(found.OrderIDs, pl.OrderIDs) {
			t.Fatalf("lookup: %+v, %v", found, err)
		}
		if _, err := p.Lookup(ctx(t), "no-such-order"); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("lookup of nothing: %v, want ErrNotFound", err)
		}
		st := details(t, p, id, providers.StateAwaitingPayment)
		if st.Total != want.Total || st.Parcel != nil {
			t.Errorf("new order %+v", st)
		}
		if _, err := p.Trace(ctx(t), id, nil); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("trace before shipment: %v, want ErrNotFound", err)
		}
		if _, err := p.Details(ctx(t), "4999999999999999999"); !errors.Is(err, providers.ErrNotFound) && providers.ClassOf(err) != providers.ClassPermanent {
			t.Errorf("details of a missing order: %v", err)
		}
	})
	b.clock.Advance(2 * time.Minute)
	forEach(t, b, "paid", func(t *testing.T, name string, p providers.Provider) {
		details(t, p, orderID(t, b, name, "life-"+name), providers.StatePaid)
	})
	b.clock.Advance(30 * time.Minute)
	forEach(t, b, "shipped", func(t *testing.T, name string, p providers.Provider) {
		id := orderID(t, b, name, "life-"+name)
		st := details(t, p, id, providers.StateShipped)
		if st.Parcel == nil || st.Parcel.BillNo == "" {
			t.Fatalf("shipped order without a parcel: %+v", st)
		}
		pc, err := p.Trace(ctx(t), id, st.Parcel)
		if err != nil || pc.Status != "WAITACCEPT" || pc.Delivered() {
			t.Fatalf("trace: %+v, %v", pc, err)
		}
	})
	b.clock.Advance(3 * time.Hour)
	forEach(t, b, "signed", func(t *testing.T, name string, p providers.Provider) {
		id := orderID(t, b, name, "life-"+name)
		st := details(t, p, id, providers.StateDelivered)
		pc, err := p.Trace(ctx(t), id, st.Parcel)
		if err != nil || !pc.Delivered() || len(pc.Steps) != 4 {
			t.Fatalf("trace: %+v, %v", pc, err)
		}
		if !pc.Steps[0].At.Before(pc.Steps[3].At) || pc.Steps[0].At.IsZero() {
			t.Errorf("steps not oldest first or without times: %+v", pc.Steps)
		}
		if pc2, err := p.Trace(ctx(t), id, nil); err != nil || pc2.Status != providers.ParcelSigned {
			t.Errorf("trace without a ref: %+v, %v", pc2, err)
		}
	})
	b.clock.Advance(2 * time.Hour)
	forEach(t, b, "completed", func(t *testing.T, name string, p providers.Provider) {
		details(t, p, orderID(t, b, name, "life-"+name), providers.StateCompleted)
	})
}

// orderID is the sim's first order for outOrderID at provider.
func orderID(t testing.TB, b *bundle, provider, outOrderID string) string {
	t.Helper()
	v := b.sim.Order(provider, outOrderID)
	if len(v) == 0 {
		t.Fatalf("the simulator has no %s order for %q", provider, outOrderID)
	}
	return v[0].OrderID
}

func details(t testing.TB, p providers.Provider, id string, want providers.State) *providers.OrderStatus {
	t.Helper()
	st, err := p.Details(ctx(t), id)
	if err != nil {
		t.Fatalf("details %s: %v", id, err)
	}
	if st.State != want || st.OrderID != id {
		t.Fatalf("details %s: %+v, want state %q", id, st, want)
	}
	return st
}

func TestFates(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "create", func(t *testing.T, name string, p providers.Provider) {
		for _, pid := range []int64{sim.ProductCancelled, sim.ProductTerminated, sim.ProductUnknownStatus} {
			place(t, p, order(name, "fate-"+name+"-"+string(rune('0'+pid%10)), item(pid, 1)))
		}
	})
	b.clock.Advance(3 * time.Minute)
	forEach(t, b, "after-pay", func(t *testing.T, name string, p providers.Provider) {
		details(t, p, orderID(t, b, name, "fate-"+name+"-1"), providers.StateCancelled)
		st, err := p.Details(ctx(t), orderID(t, b, name, "fate-"+name+"-4"))
		if err != nil || st.State != providers.StateUnknown || st.Raw != sim.UnknownStatusWord {
			t.Errorf("unknown status word: %+v, %v; want StateUnknown with Raw %q", st, err, sim.UnknownStatusWord)
		}
	})
	b.clock.Advance(30 * time.Minute)
	forEach(t, b, "after-ship", func(t *testing.T, name string, p providers.Provider) {
		details(t, p, orderID(t, b, name, "fate-"+name+"-2"), providers.StateTerminated)
		details(t, p, orderID(t, b, name, "fate-"+name+"-4"), providers.StateShipped)
	})
}

func TestCancel(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "too-fast", func(t *testing.T, name string, p providers.Provider) {
		_, pl := place(t, p, order(name, "cancel-"+name, item(1, 1)))
		err := p.Cancel(ctx(t), pl.OrderIDs[0], "buyer changed mind")
		class(t, "cancel within 10 s", err, providers.ClassPermanent)
		var pe *providers.PermanentError
		if !errors.As(err, &pe) || !strings.Contains(pe.Code+pe.Message, "CLOSE_ORDER_TOO_FAST") {
			t.Errorf("refusal %v does not say CLOSE_ORDER_TOO_FAST", err)
		}
	})
	b.clock.Advance(11 * time.Second)
	forEach(t, b, "after-10s", func(t *testing.T, name string, p providers.Provider) {
		id := orderID(t, b, name, "cancel-"+name)
		if err := p.Cancel(ctx(t), id, "buyer changed mind"); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		details(t, p, id, providers.StateCancelled)
	})
}

func TestTransient5xx(t *testing.T) {
	b := setup(t, sim.Config{})
	b.sim.SetFaults(sim.Faults{HTTP5xx: 1})
	forEach(t, b, "read-ops", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "t5-"+name, item(1, 1))
		_, err := p.Preview(ctx(t), req)
		class(t, "preview on 5xx", err, providers.ClassTransient)
		_, err = p.Details(ctx(t), "1")
		class(t, "details on 5xx", err, providers.ClassTransient)
		_, err = p.Lookup(ctx(t), req.OutOrderID)
		class(t, "lookup on 5xx", err, providers.ClassTransient)
	})
	b.sim.SetFaults(sim.Faults{})
	forEach(t, b, "create", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "t5c-"+name, item(1, 1))
		q, err := p.Preview(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		b.sim.SetFaults(sim.Faults{HTTP5xx: 1})
		defer b.sim.SetFaults(sim.Faults{})
		_, err = p.Create(ctx(t), req, q)
		class(t, "create on 5xx", err, providers.ClassUnknownOutcome)
		b.sim.SetFaults(sim.Faults{})
		if _, err := p.Lookup(ctx(t), req.OutOrderID); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("lookup after a 5xx create (which the sim did not do): %v, want ErrNotFound", err)
		}
	})
	b.sim.SetDown(providers.Xportcn, true)
	_, err := b.clients[providers.Xportcn].Preview(ctx(t), order(providers.Xportcn, "down", item(1, 1)))
	class(t, "preview while down", err, providers.ClassTransient)
}

func TestThrottled(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "warm-then-throttle", func(t *testing.T, name string, p providers.Provider) {
		// Depal: get the token first, so the throttle hits the order call.
		if _, err := p.Lookup(ctx(t), "warm-up"); !errors.Is(err, providers.ErrNotFound) {
			t.Fatalf("warm-up lookup: %v", err)
		}
		b.sim.SetFaults(sim.Faults{Throttle: 1})
		defer b.sim.SetFaults(sim.Faults{})
		_, err := p.Preview(ctx(t), order(name, "th-"+name, item(1, 1)))
		class(t, "preview throttled", err, providers.ClassThrottled)
		var te *providers.DeferError
		if errors.As(err, &te) && te.Wait != time.Second {
			t.Errorf("wait %s, want 1s", te.Wait)
		}
	})
}

func TestQuotaThrottles(t *testing.T) {
	b := setup(t, sim.Config{Quota: map[string]sim.Quota{providers.Xportcn: {Rate: 0.001, Burst: 1}}})
	p := b.clients[providers.Xportcn]
	if _, err := p.Preview(ctx(t), order(providers.Xportcn, "q", item(1, 1))); err != nil {
		t.Fatal(err)
	}
	_, err := p.Preview(ctx(t), order(providers.Xportcn, "q", item(1, 1)))
	class(t, "over quota", err, providers.ClassThrottled)
	if v := b.sim.Counters().QuotaViolations[providers.Xportcn]; v != 1 {
		t.Errorf("QuotaViolations %d, want 1", v)
	}
}

func TestAuthRefused(t *testing.T) {
	b := setup(t, sim.Config{})
	bad := map[string]providers.Provider{
		providers.Xportcn: newXportcn(t, b.sim, "wrong-secret", ""),
		providers.Depal:   newDepal(t, b.sim, "wrong-secret"),
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := p.Preview(ctx(t), order(name, "auth-"+name, item(1, 1)))
			class(t, "bad secret", err, providers.ClassAuth)
			if b.sim.Counters().SignatureFailures[name] == 0 {
				t.Error("refusal not counted")
			}
		})
	}
	t.Run("xportcn milliseconds", func(t *testing.T) {
		p := newXportcn(t, b.sim, "sim-secret-x", xportcn.UnitMillis)
		if _, err := p.Preview(ctx(t), order(providers.Xportcn, "ms", item(1, 1))); err != nil {
			t.Errorf("millisecond timestamps: %v", err)
		}
	})
}

func TestDepalTokenExpiryRefreshed(t *testing.T) {
	b := setup(t, sim.Config{})
	p := b.clients[providers.Depal]
	req := order(providers.Depal, "tok", item(1, 1))
	q, err := p.Preview(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	b.sim.ExpireTokens() // the cached token dies mid-run
	pl, err := p.Create(ctx(t), req, q)
	if err != nil {
		t.Fatalf("create after the token expired: %v", err)
	}
	if len(pl.OrderIDs) != 1 {
		t.Errorf("placement %+v", pl)
	}
	c := b.sim.Counters()
	if c.TokenExpired != 1 || c.Requests[providers.Depal]["token"] != 2 {
		t.Errorf("TokenExpired %d (want 1), token calls %d (want 2)", c.TokenExpired, c.Requests[providers.Depal]["token"])
	}
}

func TestPlannedErrorsArePermanent(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "planned", func(t *testing.T, name string, p providers.Provider) {
		for _, n := range []int{4, 7} { // Depal: one in msg under 1000, one as the code
			_, err := p.Preview(ctx(t), order(name, "perm", item(1, 1), item(sim.PlannedErrorBase+int64(n), 1)))
			class(t, sim.PlannedErrorCode(n), err, providers.ClassPermanent)
			var pe *providers.PermanentError
			if !errors.As(err, &pe) {
				continue
			}
			want := sim.PlannedErrorCode(n)
			if name == providers.Xportcn {
				want = want[1:]
			}
			if pe.Code != want {
				t.Errorf("code %q, want %q (%v)", pe.Code, want, err)
			}
		}
	})
}

func TestCommitThenDropThenLookup(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "drop-then-lookup", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "drop-"+name, item(1, 1))
		q, err := p.Preview(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		b.sim.SetFaults(sim.Faults{CommitThenDrop: 1})
		_, err = p.Create(ctx(t), req, q)
		b.sim.SetFaults(sim.Faults{})
		class(t, "create dropped", err, providers.ClassUnknownOutcome)
		pl, err := p.Lookup(ctx(t), req.OutOrderID)
		if err != nil {
			t.Fatalf("lookup after the drop: %v", err)
		}
		views := b.sim.Order(name, req.OutOrderID)
		if len(views) != 1 || !slices.Equal(pl.OrderIDs, []string{views[0].OrderID}) {
			t.Errorf("lookup %+v, sim has %+v", pl, views)
		}
	})
	c := b.sim.Counters()
	if c.Faults["commit_then_drop"] != 2 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestDepalResubmitAnswers1010(t *testing.T) {
	b := setup(t, sim.Config{})
	p := b.clients[providers.Depal]
	req := order(providers.Depal, "resub", item(1, 1))
	q, pl := place(t, p, req)
	again, err := p.Create(ctx(t), req, q)
	if err != nil || !slices.Equal(again.OrderIDs, pl.OrderIDs) {
		t.Errorf("re-submit: %+v, %v; want the existing %v", again, err, pl.OrderIDs)
	}
	if c := b.sim.Counters(); c.Duplicates != 0 || c.OrdersCreated[providers.Depal] != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestXportcnSplitCreate(t *testing.T) {
	b := setup(t, sim.Config{})
	p := b.clients[providers.Xportcn]
	items := []providers.Item{item(sim.ProductSplit, 2)}
	req := order(providers.Xportcn, "split", items...)
	q, pl := place(t, p, req)
	if want := sim.PlannedQuote(providers.Xportcn, items); q.Total != want.Total || pl.Total != want.Total {
		t.Errorf("quote %d, placement %d, want %d", q.Total, pl.Total, want.Total)
	}
	views := b.sim.Order(providers.Xportcn, "split")
	if len(pl.OrderIDs) != 2 || len(views) != 2 || pl.OrderIDs[1] != views[1].OrderID {
		t.Fatalf("placement %+v, sim has %+v", pl, views)
	}
	found, err := p.Lookup(ctx(t), "split")
	if err != nil || !slices.Equal(found.OrderIDs, pl.OrderIDs) {
		t.Errorf("lookup %+v, %v", found, err)
	}
	if c := b.sim.Counters(); c.Duplicates != 0 || c.OrdersCreated[providers.Xportcn] != 2 {
		t.Errorf("counters %+v", c)
	}
}

func TestXportcnPushParses(t *testing.T) {
	var (
		mu  sync.Mutex
		got []*xportcn.Push
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		p, err := xportcn.ParsePush(raw)
		if err != nil {
			t.Errorf("ParsePush(%s): %v", raw, err)
			return
		}
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	b := setup(t, sim.Config{PushURL: recv.URL})
	_, pl := place(t, b.clients[providers.Xportcn], order(providers.Xportcn, "push", item(1, 1)))
	b.clock.Advance(3 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pushes after 5s, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	states := map[string]providers.State{}
	for _, p := range got {
		if p.Body.OrderID != pl.OrderIDs[0] || p.MessagePlatform != xportcn.PushPlatform1688 || p.Timestamp.IsZero() {
			t.Errorf("push %+v", p)
		}
		s, _ := p.State()
		states[p.MessageType] = s
	}
	if states[xportcn.PushOrderCreate] != providers.StateAwaitingPayment || states[xportcn.PushOrderPaySuccess] != providers.StatePaid {
		t.Errorf("push states %v", states)
	}
}
