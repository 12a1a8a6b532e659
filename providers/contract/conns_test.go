package contract_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
)

// TestClientsKeepTheirConnections: 20 calls in flight at a time, five
// rounds of them, reach the provider over about 20 connections. Before,
// the clients kept http.DefaultTransport's two idle connections per host,
// so most calls of a busy worker dialled anew (about 90 connections here;
// against a real provider a TLS handshake across the border each).
func TestClientsKeepTheirConnections(t *testing.T) {
	s, err := sim.New(sim.Config{Clock: sim.NewManualClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	x, err := xportcn.New(xportcn.Config{BaseURL: srv.URL + sim.XportcnPrefix, AccessKey: "sim-ak",
		AccessSecret: "sim-secret-x", UserID: "sim-user", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := depal.New(depal.Config{BaseURL: srv.URL + sim.DepalPrefix, AppKey: "simapp", AppSecret: "sim-secret-d", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const inFlight, rounds = 20, 5
	for name, p := range map[string]providers.Provider{providers.Xportcn: x, providers.Depal: d} {
		conns.Store(0)
		for round := range rounds {
			var wg sync.WaitGroup
			for i := range inFlight {
				wg.Go(func() {
					if _, err := p.Preview(ctx(t), order(name, fmt.Sprintf("conn-%d-%d", round, i), item(7, 1))); err != nil {
						t.Errorf("%s preview: %v", name, err)
					}
				})
			}
			wg.Wait()
		}
		if n := conns.Load(); n > inFlight+5 {
			t.Errorf("%s: %d connections for %d calls, %d at a time; want at most %d", name, n, inFlight*rounds, inFlight, inFlight+5)
		}
	}
}
