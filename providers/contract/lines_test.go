package contract_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"orderflow/providers"
	"orderflow/providers/sim"
)

// These tests check Details' Lines against the simulator: the product
// lines of each provider order, so that an order found by Lookup (which
// names only order ids) can be told whole or not.

// linesOf is items as the order lines a provider should report.
func linesOf(items ...providers.Item) []providers.OrderLine {
	out := make([]providers.OrderLine, 0, len(items))
	for _, it := range items {
		out = append(out, providers.OrderLine(it))
	}
	return out
}

// quantities sums lines' quantities by product and sku: what a set of
// orders holds together, however a split cut it.
func quantities(lines []providers.OrderLine) map[string]int {
	q := map[string]int{}
	for _, l := range lines {
		q[fmt.Sprintf("%d/%s", l.ProductID, l.SkuID)] += l.Quantity
	}
	return q
}

// orderLines fetches the details of every order id and returns each one's
// lines, failing the test when an order reports none.
func orderLines(t testing.TB, p providers.Provider, ids []string) [][]providers.OrderLine {
	t.Helper()
	var out [][]providers.OrderLine
	for _, id := range ids {
		st := details(t, p, id, providers.StateAwaitingPayment)
		if len(st.Lines) == 0 {
			t.Fatalf("details %s report no lines: %+v", id, st)
		}
		out = append(out, st.Lines)
	}
	return out
}

// A normal order's details report exactly the request's lines.
func TestDetailsLines(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "lines", func(t *testing.T, name string, p providers.Provider) {
		items := []providers.Item{item(7, 3), {ProductID: 10012, SkuID: "sku-2", Quantity: 1}, {ProductID: 10013, SkuID: "", Quantity: 5}}
		req := order(name, "lines-"+name, items...)
		_, pl := place(t, p, req)
		if len(pl.OrderIDs) != 1 {
			t.Fatalf("placement %+v, want one order", pl)
		}
		got := orderLines(t, p, pl.OrderIDs)[0]
		if !slices.Equal(got, linesOf(items...)) {
			t.Errorf("lines %+v, want %+v", got, linesOf(items...))
		}
	})
}

// A split order's parts each report their own lines, and together the
// request's. Only Xportcn splits (sim.Parts; Depal never does).
func TestXportcnSplitDetailsLines(t *testing.T) {
	b := setup(t, sim.Config{})
	p := b.clients[providers.Xportcn]
	for name, items := range map[string][]providers.Item{
		"by lines":    {item(sim.ProductSplit, 1), item(5, 2), {ProductID: 6, SkuID: "sku-6", Quantity: 1}},
		"by quantity": {item(sim.ProductSplit, 3)},
	} {
		t.Run(name, func(t *testing.T) {
			req := order(providers.Xportcn, "split-lines-"+name, items...)
			_, pl := place(t, p, req)
			if len(pl.OrderIDs) != 2 {
				t.Fatalf("placement %+v, want a split into 2", pl)
			}
			parts := orderLines(t, p, pl.OrderIDs)
			want := sim.Parts(providers.Xportcn, items)
			for i := range parts {
				if !slices.Equal(parts[i], linesOf(want[i]...)) {
					t.Errorf("part %d lines %+v, want %+v", i, parts[i], linesOf(want[i]...))
				}
			}
			if all := quantities(slices.Concat(parts...)); !maps.Equal(all, quantities(linesOf(items...))) {
				t.Errorf("the parts hold %v together, the request %v", all, quantities(linesOf(items...)))
			}
		})
	}
}

// A partial create whose answer was lost (PartialCreate with
// CommitThenDrop): the order Lookup finds says nothing of the refused
// line, but its details' lines lack it, so the caller can tell the order
// is not whole.
func TestPartialCreateLostAnswerDetailsLackRefusedLine(t *testing.T) {
	b := setup(t, sim.Config{})
	check := func(t *testing.T, p providers.Provider, req *providers.OrderRequest) {
		t.Helper()
		q := previewed(t, p, req)
		b.sim.SetFaults(sim.Faults{PartialCreate: 1, CommitThenDrop: 1})
		_, err := p.Create(ctx(t), req, q)
		b.sim.SetFaults(sim.Faults{})
		class(t, "partial create whose answer was dropped", err, providers.ClassUnknownOutcome)
		pl, err := p.Lookup(ctx(t), req.OutOrderID)
		if err != nil || !slices.Equal(pl.OrderIDs, simIDs(b, p.Name(), req.OutOrderID)) || len(pl.Rejected) != 0 {
			t.Fatalf("lookup %+v, %v; sim has %v", pl, err, simIDs(b, p.Name(), req.OutOrderID))
		}
		got := slices.Concat(orderLines(t, p, pl.OrderIDs)...)
		refused := req.Items[len(req.Items)-1] // the simulator refuses the last line
		want := linesOf(req.Items[:len(req.Items)-1]...)
		if !maps.Equal(quantities(got), quantities(want)) {
			t.Errorf("the found orders hold %+v, want %+v (all but the refused line)", got, want)
		}
		for _, l := range got {
			if l.ProductID == refused.ProductID && l.SkuID == refused.SkuID {
				t.Errorf("the refused line %+v is among the order's lines %+v", refused, got)
			}
		}
	}
	forEach(t, b, "partial-lost", func(t *testing.T, name string, p providers.Provider) {
		check(t, p, order(name, "partial-lost-"+name, item(7, 3), providers.Item{ProductID: 42, SkuID: "sku-9", Quantity: 2}))
	})
	t.Run("partial-lost-split/"+providers.Xportcn, func(t *testing.T) {
		p := b.clients[providers.Xportcn]
		check(t, p, order(providers.Xportcn, "partial-lost-split", item(sim.ProductSplit, 1), item(5, 1), item(6, 1)))
		if n := len(simIDs(b, providers.Xportcn, "partial-lost-split")); n != 2 {
			t.Errorf("the rest did not split: %d orders", n)
		}
	})
	c := b.sim.Counters()
	if c.Faults[sim.FaultPartialCreate] != 3 || c.Faults[sim.FaultCommitThenDrop] != 3 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}
