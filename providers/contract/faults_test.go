package contract_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"orderflow/providers"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
)

// These tests run the real clients against providers that fail after, or
// while, they commit: a create that commits after the client gave up, a
// search index lagging the writes, a gateway answering HTML after the
// commit, a success with empty data, a list ignoring its filter, a create
// refusing one line. Each asserts the rule of the provider layer the
// pipeline relies on (providers/doc.go), and that the simulator's
// duplicate accounting stays right.

// previewed previews req, failing the test on an error.
func previewed(t testing.TB, p providers.Provider, req *providers.OrderRequest) *providers.Quote {
	t.Helper()
	q, err := p.Preview(ctx(t), req)
	if err != nil {
		t.Fatalf("%s preview: %v", p.Name(), err)
	}
	return q
}

// simIDs is the simulator's order ids for outOrderID at provider.
func simIDs(b *bundle, provider, outOrderID string) []string {
	var ids []string
	for _, v := range b.sim.Order(provider, outOrderID) {
		ids = append(ids, v.OrderID)
	}
	return ids
}

// Rule 1 and 6 (LateCommit): the client gives up first; the order is
// committed afterwards. Until then Lookup answers ErrNotFound (the provider
// says so), afterwards it finds exactly the one order.
func TestLateCommitAfterClientGaveUp(t *testing.T) {
	const delay = 600 * time.Millisecond
	b := setup(t, sim.Config{})
	forEach(t, b, "late", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "late-"+name, item(1, 1))
		q := previewed(t, p, req)
		b.sim.SetFaults(sim.Faults{LateCommit: 1, LateCommitDelay: delay})
		t0 := time.Now()
		_, err := impatient(t, b, name, 150*time.Millisecond).Create(ctx(t), req, q)
		b.sim.SetFaults(sim.Faults{})
		class(t, "create that timed out", err, providers.ClassUnknownOutcome)
		if _, err := p.Lookup(ctx(t), req.OutOrderID); !errors.Is(err, providers.ErrNotFound) {
			t.Fatalf("lookup before the late commit: %v, want ErrNotFound", err)
		}
		if ids := simIDs(b, name, req.OutOrderID); len(ids) != 0 && time.Since(t0) < delay {
			t.Fatalf("the order exists %s after arrival, before the commit delay: %v", time.Since(t0), ids)
		}
		waitFor(t, 5*time.Second, "the late commit", func() bool { return len(simIDs(b, name, req.OutOrderID)) == 1 })
		if d := time.Since(t0); d < delay-50*time.Millisecond {
			t.Errorf("committed %s after the create, want about %s", d, delay)
		}
		pl, err := p.Lookup(ctx(t), req.OutOrderID)
		if err != nil || !slices.Equal(pl.OrderIDs, simIDs(b, name, req.OutOrderID)) {
			t.Fatalf("lookup after the commit: %+v, %v; sim has %v", pl, err, simIDs(b, name, req.OutOrderID))
		}
	})
	if c := b.sim.Counters(); c.Faults[sim.FaultLateCommit] != 2 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

// LateCommit with a patient client: at the delay the connection is dropped
// and only then is the order committed.
func TestLateCommitDropsAPatientClient(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "late-drop", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "late-drop-"+name, item(1, 1))
		q := previewed(t, p, req)
		b.sim.SetFaults(sim.Faults{LateCommit: 1, LateCommitDelay: 200 * time.Millisecond})
		t0 := time.Now()
		_, err := p.Create(ctx(t), req, q)
		b.sim.SetFaults(sim.Faults{})
		class(t, "create dropped at the delay", err, providers.ClassUnknownOutcome)
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("the create came back after %s, before the delay", d)
		}
		waitFor(t, 5*time.Second, "lookup finds the late order", func() bool {
			pl, err := p.Lookup(ctx(t), req.OutOrderID)
			return err == nil && len(pl.OrderIDs) == 1
		})
	})
	if c := b.sim.Counters(); c.Duplicates != 0 || c.OrdersCreated[providers.Xportcn] != 1 || c.OrdersCreated[providers.Depal] != 1 {
		t.Errorf("counters %+v", c)
	}
}

// A caller that re-creates blindly after a late commit makes a real
// duplicate, and the simulator counts it (Xportcn: its creates do not
// deduplicate; Depal: with a new preview, as a re-preview would).
func TestLateCommitBlindRecreateIsCountedAsDuplicate(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "recreate", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "late-dup-"+name, item(1, 1))
		q := previewed(t, p, req)
		b.sim.SetFaults(sim.Faults{LateCommit: 1, LateCommitDelay: 300 * time.Millisecond})
		_, err := impatient(t, b, name, 100*time.Millisecond).Create(ctx(t), req, q)
		b.sim.SetFaults(sim.Faults{})
		class(t, "late create", err, providers.ClassUnknownOutcome)
		place(t, p, req)
		waitFor(t, 5*time.Second, "the late commit", func() bool { return len(simIDs(b, name, req.OutOrderID)) == 2 })
	})
	if c := b.sim.Counters(); c.Duplicates != 2 {
		t.Errorf("Duplicates %d, want 2 (one per provider)", c.Duplicates)
	}
}

// Rule 1 and 6 (SearchLag): right after a successful create the lookup by
// outOrderId does not see the order, details by its id do; after the lag
// the lookup finds it.
func TestSearchLag(t *testing.T) {
	const lag = 400 * time.Millisecond
	b := setup(t, sim.Config{Faults: sim.Faults{SearchLag: lag}})
	forEach(t, b, "lag", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "lag-"+name, item(1, 1))
		t0 := time.Now()
		_, pl := place(t, p, req)
		if _, err := p.Lookup(ctx(t), req.OutOrderID); !errors.Is(err, providers.ErrNotFound) {
			if time.Since(t0) < lag {
				t.Fatalf("lookup inside the lag: %v, want ErrNotFound", err)
			}
		}
		details(t, p, pl.OrderIDs[0], providers.StateAwaitingPayment)
		waitFor(t, 5*time.Second, "lookup after the lag", func() bool {
			found, err := p.Lookup(ctx(t), req.OutOrderID)
			return err == nil && slices.Equal(found.OrderIDs, pl.OrderIDs)
		})
		if d := time.Since(t0); d < lag {
			t.Errorf("found %s after the create, inside the lag", d)
		}
	})
	if c := b.sim.Counters(); c.Faults[sim.FaultSearchLag] < 2 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

// Rule 3 and 6 (GatewayAfterCommit): the order is made, a gateway answers
// 502/504/408/499 with HTML. The create is an unknown outcome (never
// permanent), and the lookup finds the order.
func TestGatewayAfterCommit(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "gateway", func(t *testing.T, name string, p providers.Provider) {
		statuses := map[int64]bool{}
		for i := range 8 {
			req := order(name, "gw-"+name+"-"+string(rune('a'+i)), item(1, 1))
			q := previewed(t, p, req)
			b.sim.SetFaults(sim.Faults{Seed: int64(i), GatewayAfterCommit: 1})
			_, err := p.Create(ctx(t), req, q)
			b.sim.SetFaults(sim.Faults{})
			class(t, "create answered by a gateway", err, providers.ClassUnknownOutcome)
			var xe *xportcn.APIError
			if errors.As(err, &xe) {
				statuses[xe.Code] = true
			}
			pl, err := p.Lookup(ctx(t), req.OutOrderID)
			if err != nil || !slices.Equal(pl.OrderIDs, simIDs(b, name, req.OutOrderID)) || len(pl.OrderIDs) != 1 {
				t.Fatalf("lookup after the gateway answer: %+v, %v", pl, err)
			}
		}
		if name == providers.Xportcn && len(statuses) < 2 {
			t.Errorf("8 seeds drew only the statuses %v", statuses)
		}
	})
	if c := b.sim.Counters(); c.Faults[sim.FaultGatewayAfterCommit] != 16 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

// Rules 1, 4 and 6 (EmptySuccess): a create answered success with empty
// data is an unknown outcome (the order exists); a lookup answered the
// same is ErrAmbiguous, never ErrNotFound; once answered properly the
// lookup finds the order.
func TestEmptySuccess(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "empty", func(t *testing.T, name string, p providers.Provider) {
		for seed := range int64(4) { // Xportcn draws data {} or null
			req := order(name, "empty-"+name+"-"+string(rune('a'+seed)), item(1, 1))
			q := previewed(t, p, req)
			b.sim.SetFaults(sim.Faults{Seed: seed, EmptySuccess: 1})
			pl, err := p.Create(ctx(t), req, q)
			class(t, "create answered an empty success", err, providers.ClassUnknownOutcome)
			if pl != nil {
				t.Errorf("a placement beside the error: %+v", pl)
			}
			_, err = p.Lookup(ctx(t), req.OutOrderID)
			ambiguous(t, "lookup answered an empty success", err)
			_, err = p.Lookup(ctx(t), "empty-none")
			ambiguous(t, "lookup of nothing answered an empty success", err)
			b.sim.SetFaults(sim.Faults{})
			found, err := p.Lookup(ctx(t), req.OutOrderID)
			if err != nil || !slices.Equal(found.OrderIDs, simIDs(b, name, req.OutOrderID)) || len(found.OrderIDs) != 1 {
				t.Fatalf("lookup without the fault: %+v, %v", found, err)
			}
		}
	})
	if c := b.sim.Counters(); c.Faults[sim.FaultEmptySuccess] != 2*4*3 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

// Rules 1, 2 and 6 (UnfilteredList): a lookup whose filter is ignored
// never adopts another outOrderId's order; it finds ours only as an exact
// match, and answers ErrAmbiguous (not ErrNotFound) when ours is not there.
func TestUnfilteredList(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "unfiltered", func(t *testing.T, name string, p providers.Provider) {
		var ids [3][]string
		for i := range ids {
			_, pl := place(t, p, order(name, "uf-"+name+"-"+string(rune('a'+i)), item(1, 1)))
			ids[i] = pl.OrderIDs
		}
		b.sim.SetFaults(sim.Faults{UnfilteredList: 1})
		defer b.sim.SetFaults(sim.Faults{})
		_, err := p.Lookup(ctx(t), "uf-"+name+"-none")
		ambiguous(t, "lookup of an absent order in an unfiltered list", err)
		// The oldest order comes first, whatever was asked: found.
		pl, err := p.Lookup(ctx(t), "uf-"+name+"-a")
		if err != nil || !slices.Equal(pl.OrderIDs, ids[0]) {
			t.Fatalf("lookup of the first order: %+v, %v; want %v", pl, err, ids[0])
		}
		pl, err = p.Lookup(ctx(t), "uf-"+name+"-c")
		switch name {
		case providers.Xportcn: // ours is in the list, last: adopted alone
			if err != nil || !slices.Equal(pl.OrderIDs, ids[2]) {
				t.Fatalf("lookup of the last order: %+v, %v; want %v", pl, err, ids[2])
			}
		case providers.Depal: // details answer another's order
			ambiguous(t, "lookup answered another's order", err)
		}
	})
	if c := b.sim.Counters(); c.Faults[sim.FaultUnfilteredList] < 6 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

// Rules 5 and 6 (PartialCreate): the last line of a 2-line cart is
// refused, the order made for the other; the Placement names the order and
// the refused line. One create: no duplicate.
func TestPartialCreate(t *testing.T) {
	b := setup(t, sim.Config{Faults: sim.Faults{PartialCreate: 1}})
	forEach(t, b, "partial", func(t *testing.T, name string, p providers.Provider) {
		last := providers.Item{ProductID: 42, SkuID: "sku-9", Quantity: 2}
		req := order(name, "partial-"+name, item(7, 3), last)
		_, pl := place(t, p, req)
		code := sim.PartialCreateCode
		if name == providers.Depal {
			code = "R" + code
		}
		if len(pl.Rejected) != 1 {
			t.Fatalf("placement %+v, want one rejected line", pl)
		}
		if r := pl.Rejected[0]; r.ProductID != last.ProductID || r.SkuID != last.SkuID || r.Code != code || r.Message == "" {
			t.Errorf("rejected %+v, want product %d sku %s code %s", r, last.ProductID, last.SkuID, code)
		}
		views := b.sim.Order(name, req.OutOrderID)
		if len(views) != 1 || !slices.Equal(pl.OrderIDs, []string{views[0].OrderID}) {
			t.Fatalf("placement %+v, sim has %+v", pl, views)
		}
		if want := sim.PlannedQuote(name, []providers.Item{item(7, 3)}).Total; views[0].Total != want {
			t.Errorf("order total %d, want %d (the ordered line only)", views[0].Total, want)
		}
		// One line: nothing to refuse.
		_, pl = place(t, p, order(name, "partial-one-"+name, item(7, 1)))
		if len(pl.Rejected) != 0 {
			t.Errorf("one-line cart rejected %+v", pl.Rejected)
		}
	})
	// A split cart with one line refused: the rest still splits (Xportcn),
	// and it is one create.
	_, pl := place(t, b.clients[providers.Xportcn], order(providers.Xportcn, "partial-split",
		item(sim.ProductSplit, 1), item(5, 1), item(6, 1)))
	if len(pl.OrderIDs) != 2 || len(pl.Rejected) != 1 || pl.Rejected[0].ProductID != 6 {
		t.Errorf("split partial placement %+v", pl)
	}
	c := b.sim.Counters()
	if c.Faults[sim.FaultPartialCreate] != 3 || c.Duplicates != 0 || c.OrdersCreated[providers.Xportcn] != 4 || c.OrdersCreated[providers.Depal] != 2 {
		t.Errorf("counters %+v", c)
	}
}

// Every fault at once, each create looked up before any re-create: the
// client classifies each answer, and the simulator counts no duplicate.
func TestAllFaultsNoDuplicates(t *testing.T) {
	b := setup(t, sim.Config{})
	b.sim.SetFaults(sim.Faults{
		Seed: 5, CommitThenDrop: 0.15, LateCommit: 0.15, LateCommitDelay: 150 * time.Millisecond,
		SearchLag: 20 * time.Millisecond, GatewayAfterCommit: 0.15, EmptySuccess: 0.15, UnfilteredList: 0.3, PartialCreate: 0.3,
	})
	forEach(t, b, "all", func(t *testing.T, name string, p providers.Provider) {
		for i := range 12 {
			req := order(name, "all-"+name+"-"+string(rune('a'+i)), item(1, 1), item(2, 1))
			q, err := p.Preview(ctx(t), req)
			if err != nil {
				t.Fatalf("preview: %v", err)
			}
			_, err = impatient(t, b, name, 100*time.Millisecond).Create(ctx(t), req, q)
			switch providers.ClassOf(err) {
			case providers.ClassNone, providers.ClassUnknownOutcome:
			default:
				t.Fatalf("create: %v, want success or an unknown outcome", err)
			}
		}
	})
	b.sim.SetFaults(sim.Faults{})
	time.Sleep(200 * time.Millisecond) // the late commits land
	forEach(t, b, "check", func(t *testing.T, name string, p providers.Provider) {
		for i := range 12 {
			out := "all-" + name + "-" + string(rune('a'+i))
			pl, err := p.Lookup(ctx(t), out)
			if err != nil || !slices.Equal(pl.OrderIDs, simIDs(b, name, out)) || len(pl.OrderIDs) != 1 {
				t.Errorf("lookup %s: %+v, %v; sim has %v", out, pl, err, simIDs(b, name, out))
			}
		}
	})
	if c := b.sim.Counters(); c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}
