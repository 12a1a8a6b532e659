package pipeline

import (
	"sync"
	"testing"
	"time"

	"orderflow/internal/gate"
	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
)

// One slow system.token.get that several steps waited for is one failure
// of the provider. Before, each waiting step counted it: a single token
// fetch that timed out, with five steps or more waiting, opened Depal's
// breaker and deferred every call of the pod for its open timeout (30 s).
func TestOneFailedTokenFetchDoesNotOpenTheBreaker(t *testing.T) {
	const waiting = 8
	b := setupLife(t, nil)
	d, err := depal.New(depal.Config{BaseURL: b.sim.DepalURL(), AppKey: "simapp", AppSecret: "sim-secret-d",
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := gate.Wrap(d, gate.Config{Breaker: gate.BreakerSettings{ConsecutiveFailures: 5, OpenTimeout: time.Hour}})
	cfg := b.cfg
	cfg.Providers = map[string]providers.Provider{providers.Depal: g, providers.Xportcn: b.cfg.Providers[providers.Xportcn]}
	if b.h, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	steps := make([]Step, waiting)
	for i := range steps {
		if steps[i], err = PreviewStep(lifeOrder(providers.Depal, "tok-"+string(rune('a'+i)), sim.ProductUnpaid, "")); err != nil {
			t.Fatal(err)
		}
	}

	// No token yet, and the token fetch answers after the client gave up.
	b.sim.SetFaults(sim.Faults{Slow: 1, SlowDelay: 2 * time.Second})
	errs := make([]error, waiting)
	var wg sync.WaitGroup
	for i := range steps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.run(t, steps[i]) }()
	}
	wg.Wait()
	b.sim.SetFaults(sim.Faults{})
	for i, err := range errs {
		if err == nil {
			t.Fatalf("preview %d went through a token fetch that timed out", i)
		}
		if _, deferred := providers.AsDeferral(err); deferred {
			t.Fatalf("preview %d deferred (%v): the breaker opened while the steps waited for one fetch", i, err)
		}
	}
	tokens := b.sim.Counters().Requests[providers.Depal]["token"]
	if tokens < 1 || tokens >= waiting {
		t.Fatalf("%d token fetches for %d steps: the steps did not share a fetch, the test proves nothing", tokens, waiting)
	}
	if got := g.BreakerState(); got != gate.StateClosed {
		t.Fatalf("after %d token fetch(es) shared by %d steps: breaker %s, want closed", tokens, waiting, got)
	}
	// The provider answers again: the steps go on at once, not after the
	// breaker's open timeout.
	for _, s := range steps {
		b.mustRun(t, s)
	}
}
