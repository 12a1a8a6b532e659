package contract_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
)

// bundle is a running simulator and a client of each provider on it.
type bundle struct {
	sim     *sim.Sim
	clock   *sim.ManualClock
	clients map[string]providers.Provider
}

// setup starts a simulator on a manual clock (unless cfg has a clock) and
// the two real clients with the simulator's default credentials.
func setup(t testing.TB, cfg sim.Config) *bundle {
	t.Helper()
	b := &bundle{}
	if cfg.Clock == nil {
		b.clock = sim.NewManualClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
		cfg.Clock = b.clock
	}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatalf("sim.New: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("sim.Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b.sim = s
	b.clients = map[string]providers.Provider{
		providers.Xportcn: newXportcn(t, s, "sim-secret-x", ""),
		providers.Depal:   newDepal(t, s, "sim-secret-d"),
	}
	return b
}

func newXportcn(t testing.TB, s *sim.Sim, secret, unit string) *xportcn.Client {
	t.Helper()
	return newXportcnTimeout(t, s, secret, unit, 5*time.Second)
}

func newXportcnTimeout(t testing.TB, s *sim.Sim, secret, unit string, timeout time.Duration) *xportcn.Client {
	t.Helper()
	c, err := xportcn.New(xportcn.Config{
		BaseURL: s.XportcnURL(), AccessKey: "sim-ak", AccessSecret: secret, UserID: "sim-user",
		TimestampUnit: unit, Timeout: timeout,
	})
	if err != nil {
		t.Fatalf("xportcn.New: %v", err)
	}
	return c
}

func newDepal(t testing.TB, s *sim.Sim, secret string) *depal.Client {
	t.Helper()
	return newDepalTimeout(t, s, secret, 5*time.Second)
}

func newDepalTimeout(t testing.TB, s *sim.Sim, secret string, timeout time.Duration) *depal.Client {
	t.Helper()
	c, err := depal.New(depal.Config{BaseURL: s.DepalURL(), AppKey: "simapp", AppSecret: secret, Timeout: timeout})
	if err != nil {
		t.Fatalf("depal.New: %v", err)
	}
	return c
}

// order is a valid order request for provider.
func order(provider, outOrderID string, items ...providers.Item) *providers.OrderRequest {
	r := &providers.OrderRequest{
		Provider:   provider,
		OutOrderID: outOrderID,
		Address: providers.Address{
			FullName: "Li Lei", Mobile: "13800000000", Phone: "+8613800000000", Country: "CN",
			Province: "Zhejiang", City: "Hangzhou", Address: "1 West Lake Road", PostCode: "310000",
		},
		Items: items,
	}
	return r
}

func item(productID int64, qty int) providers.Item {
	return providers.Item{ProductID: productID, SkuID: "sku-1", Quantity: qty}
}

func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// place previews and creates req, failing the test on any error.
func place(t testing.TB, p providers.Provider, req *providers.OrderRequest) (*providers.Quote, *providers.Placement) {
	t.Helper()
	q, err := p.Preview(ctx(t), req)
	if err != nil {
		t.Fatalf("%s preview: %v", p.Name(), err)
	}
	pl, err := p.Create(ctx(t), req, q)
	if err != nil {
		t.Fatalf("%s create: %v", p.Name(), err)
	}
	return q, pl
}

// forEach runs fn as a subtest "phase/provider" per provider.
func forEach(t *testing.T, b *bundle, phase string, fn func(t *testing.T, name string, p providers.Provider)) {
	t.Helper()
	for _, name := range providers.Names {
		t.Run(phase+"/"+name, func(t *testing.T) { fn(t, name, b.clients[name]) })
	}
}

// class asserts err is of class want.
func class(t testing.TB, what string, err error, want providers.Class) {
	t.Helper()
	if got := providers.ClassOf(err); got != want {
		t.Fatalf("%s: class %s (%v), want %s", what, got, err, want)
	}
}

// impatient returns a client of provider on the bundle's simulator whose
// requests give up after timeout.
func impatient(t testing.TB, b *bundle, provider string, timeout time.Duration) providers.Provider {
	t.Helper()
	if provider == providers.Xportcn {
		return newXportcnTimeout(t, b.sim, "sim-secret-x", "", timeout)
	}
	return newDepalTimeout(t, b.sim, "sim-secret-d", timeout)
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ambiguous asserts err is ErrAmbiguous inside a *providers.TransientError
// (and not ErrNotFound).
func ambiguous(t testing.TB, what string, err error) {
	t.Helper()
	var te *providers.TransientError
	if !errors.Is(err, providers.ErrAmbiguous) || !errors.As(err, &te) || errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("%s: %v, want ErrAmbiguous in a *providers.TransientError", what, err)
	}
}
