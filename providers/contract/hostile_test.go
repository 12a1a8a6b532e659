package contract_test

import (
	"strings"
	"testing"

	"orderflow/providers"
	"orderflow/providers/sim"
)

// A create answered with a hostile order id (a path, a NUL, an escape
// sequence, 5,000 characters) gives no Placement to store: an unknown
// outcome whose text does not carry the id, so the pipeline looks the
// order up instead (and Lookup finds its real id).
func TestHostileOrderIDIsRefused(t *testing.T) {
	b := setup(t, sim.Config{})
	forEach(t, b, "hostile", func(t *testing.T, name string, p providers.Provider) {
		req := order(name, "hostile-"+name, item(1, 1))
		q := previewed(t, p, req)
		b.sim.SetFaults(sim.Faults{HostileID: 1})
		pl, err := p.Create(ctx(t), req, q)
		b.sim.SetFaults(sim.Faults{})
		class(t, "create answering a hostile id", err, providers.ClassUnknownOutcome)
		if pl != nil || len(err.Error()) > 300 || strings.ContainsAny(err.Error(), "\x00\x1b") {
			t.Fatalf("placement %+v, err %.200q", pl, err.Error())
		}
		pl, err = p.Lookup(ctx(t), req.OutOrderID)
		if err != nil || len(pl.OrderIDs) != 1 || !providers.ValidProviderOrderID(pl.OrderIDs[0]) {
			t.Fatalf("lookup after: %+v, %v", pl, err)
		}
	})
	if c := b.sim.Counters(); c.Faults[sim.FaultHostileID] != 2 {
		t.Errorf("counters %+v", c)
	}
}
