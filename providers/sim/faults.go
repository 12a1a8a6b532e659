package sim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is fault injection. Every probability is per request (pushes: per
// message), between 0 and 1; zero injects nothing. Draws come from one
// generator seeded with Seed, so a sequential run is reproducible.
type Faults struct {
	// Seed seeds the generator (the same seed, the same faults in the
	// same request order).
	Seed int64
	// HTTP5xx: an HTTP 500, 502 or 503 answer WITHOUT doing the operation.
	HTTP5xx float64
	// Slow: the operation is done and answered after SlowDelay.
	Slow float64
	// SlowDelay is the wall-time delay of a slow answer; zero means 15s.
	SlowDelay time.Duration
	// Throttle: a throttled answer (Xportcn HTTP 429 + Retry-After: 1;
	// Depal code "600") without doing the operation.
	Throttle float64
	// CommitThenDrop, on create/submit only: the order is created, then the
	// connection is closed without an answer.
	CommitThenDrop float64
	// DuplicatePush: a push message is sent twice.
	DuplicatePush float64
	// ReorderPush: a push message is held back by PushRetry (sim time), so
	// a later message can arrive first.
	ReorderPush float64
}

func (f Faults) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"HTTP5xx", f.HTTP5xx}, {"Slow", f.Slow}, {"Throttle", f.Throttle},
		{"CommitThenDrop", f.CommitThenDrop}, {"DuplicatePush", f.DuplicatePush}, {"ReorderPush", f.ReorderPush},
	} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("sim: Config.Faults.%s: a probability between 0 and 1, got %v", p.name, p.v)
		}
	}
	if f.SlowDelay < 0 {
		return fmt.Errorf("sim: Config.Faults.SlowDelay: must be >= 0, got %s", f.SlowDelay)
	}
	return nil
}

// faultPlan is what happens to one request.
type faultPlan struct {
	status5xx int           // non-zero: answer this HTTP status, do nothing
	throttle  bool          // answer throttled, do nothing
	slow      time.Duration // non-zero: do the operation, answer this much later
	drop      bool          // create only: do it, then drop the connection
}

// injector draws faults.
type injector struct {
	cfg atomic.Pointer[Faults]
	mu  sync.Mutex
	rng *rand.Rand
}

func newInjector(f Faults) *injector {
	in := &injector{}
	in.set(f)
	return in
}

// set replaces the faults and reseeds the generator.
func (in *injector) set(f Faults) {
	clamp := func(p *float64) {
		if !(*p >= 0) {
			*p = 0
		}
		if *p > 1 {
			*p = 1
		}
	}
	for _, p := range []*float64{&f.HTTP5xx, &f.Slow, &f.Throttle, &f.CommitThenDrop, &f.DuplicatePush, &f.ReorderPush} {
		clamp(p)
	}
	if f.SlowDelay <= 0 {
		f.SlowDelay = 15 * time.Second
	}
	in.mu.Lock()
	in.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x6f72646572666c6f))
	in.mu.Unlock()
	in.cfg.Store(&f)
}

func (in *injector) get() Faults { return *in.cfg.Load() }

// plan draws the faults of one request. With no request fault configured
// it costs one atomic load.
func (in *injector) plan(create bool) faultPlan {
	f := in.cfg.Load()
	if f.HTTP5xx == 0 && f.Throttle == 0 && f.Slow == 0 && (f.CommitThenDrop == 0 || !create) {
		return faultPlan{}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var p faultPlan
	if f.HTTP5xx > 0 && in.rng.Float64() < f.HTTP5xx {
		p.status5xx = [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[in.rng.IntN(3)]
		return p
	}
	if f.Throttle > 0 && in.rng.Float64() < f.Throttle {
		p.throttle = true
		return p
	}
	if f.Slow > 0 && in.rng.Float64() < f.Slow {
		p.slow = f.SlowDelay
	}
	if create && f.CommitThenDrop > 0 && in.rng.Float64() < f.CommitThenDrop {
		p.drop = true
	}
	return p
}

// roll draws one push fault of probability p.
func (in *injector) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.Float64() < p
}
