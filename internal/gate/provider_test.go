package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/ratelimit"
)

// fakeProvider answers every call with the error err returns (nil: success)
// and counts the calls that reached it.
type fakeProvider struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   func(ctx context.Context) error
	ops   []string
}

var _ providers.Provider = (*fakeProvider)(nil)

func (f *fakeProvider) setErr(e func(ctx context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = e
}

func (f *fakeProvider) answer(ctx context.Context, op string) error {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	if f.err == nil {
		return nil
	}
	return f.err(ctx)
}

func (f *fakeProvider) Name() string { return "fake" }
func (f *fakeProvider) Preview(ctx context.Context, _ *providers.OrderRequest) (*providers.Quote, error) {
	if err := f.answer(ctx, "preview"); err != nil {
		return nil, err
	}
	return &providers.Quote{Total: 1234}, nil
}
func (f *fakeProvider) Create(ctx context.Context, _ *providers.OrderRequest, _ *providers.Quote) (*providers.Placement, error) {
	if err := f.answer(ctx, "create"); err != nil {
		return nil, err
	}
	return &providers.Placement{OrderIDs: []string{"o1"}}, nil
}
func (f *fakeProvider) Lookup(ctx context.Context, id string) (*providers.Placement, error) {
	if err := f.answer(ctx, "lookup"); err != nil {
		return nil, err
	}
	return &providers.Placement{OrderIDs: []string{"l-" + id}}, nil
}
func (f *fakeProvider) Details(ctx context.Context, id string) (*providers.OrderStatus, error) {
	if err := f.answer(ctx, "details"); err != nil {
		return nil, err
	}
	return &providers.OrderStatus{OrderID: id, State: providers.State("paid")}, nil
}
func (f *fakeProvider) Trace(ctx context.Context, id string, ref *providers.ParcelRef) (*providers.Parcel, error) {
	if err := f.answer(ctx, "trace"); err != nil {
		return nil, err
	}
	return &providers.Parcel{ParcelRef: *ref, Status: providers.ParcelSigned}, nil
}
func (f *fakeProvider) Cancel(ctx context.Context, _, _ string) error {
	return f.answer(ctx, "cancel")
}

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	requests []string // "op class"
	waits    []time.Duration
	deferred []string
	states   []string
}

func (r *recorder) Request(provider, op string, class providers.Class, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, op+" "+class.String())
}
func (r *recorder) LimiterWait(_ string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
}
func (r *recorder) Deferred(_, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deferred = append(r.deferred, reason)
}
func (r *recorder) BreakerState(_ string, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, state)
}
func (r *recorder) snapshot() recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorder{
		requests: append([]string(nil), r.requests...),
		waits:    append([]time.Duration(nil), r.waits...),
		deferred: append([]string(nil), r.deferred...),
		states:   append([]string(nil), r.states...),
	}
}

var _ Observer = (*recorder)(nil)

// fakeLimiter answers Take from a script of waits (then 0) and records
// Throttle calls.
type fakeLimiter struct {
	mu        sync.Mutex
	waits     []time.Duration
	err       error
	takes     int
	throttles []time.Duration
}

func (l *fakeLimiter) Take(ctx context.Context, key string) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.takes++
	if l.err != nil {
		return 0, l.err
	}
	if len(l.waits) == 0 {
		return 0, nil
	}
	w := l.waits[0]
	l.waits = l.waits[1:]
	return w, nil
}

func (l *fakeLimiter) Throttle(ctx context.Context, key string, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.throttles = append(l.throttles, d)
	return nil
}

var _ ratelimit.Limiter = (*fakeLimiter)(nil)

type bundle struct {
	gate  *Provider
	prov  *fakeProvider
	obs   *recorder
	slept *[]time.Duration
}

// setup wraps a fake provider with cfg (its Observer replaced by a recorder)
// and a sleep that records instead of sleeping.
func setup(tb testing.TB, cfg Config) bundle {
	tb.Helper()
	b := bundle{prov: &fakeProvider{}, obs: &recorder{}, slept: new([]time.Duration)}
	cfg.Observer = b.obs
	b.gate = Wrap(b.prov, cfg)
	var mu sync.Mutex
	b.gate.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*b.slept = append(*b.slept, d)
		return ctx.Err()
	}
	return b
}

func errOf(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

func TestWhichClassesTripTheBreaker(t *testing.T) {
	tests := []struct {
		name      string
		err       func(ctx context.Context) error
		cancelCtx bool
		trips     bool
		class     string
	}{
		{"transient", errOf(&providers.TransientError{Op: "x", Err: errors.New("502")}), false, true, "transient"},
		{"unknown outcome", errOf(&providers.UnknownOutcomeError{Op: "x", Err: errors.New("timeout")}), false, true, "unknown_outcome"},
		{"wrapped transient", errOf(fmt.Errorf("ctx: %w", &providers.TransientError{Op: "x", Err: errors.New("eof")})), false, true, "transient"},
		{"unclassified error", errOf(errors.New("bug")), false, true, "transient"},
		{"throttled", errOf(&providers.DeferError{Op: "x", Wait: time.Second, Code: "429"}), false, false, "throttled"},
		{"permanent", errOf(&providers.PermanentError{Op: "x", Code: "R500_1", Message: "no"}), false, false, "permanent"},
		{"auth", errOf(&providers.AuthError{Op: "x", Code: "401", Message: "bad sign"}), false, false, "auth"},
		{"not found", errOf(providers.ErrNotFound), false, false, "ok"},
		{"wrapped not found", errOf(fmt.Errorf("lookup: %w", providers.ErrNotFound)), false, false, "ok"},
		{"caller cancelled", func(ctx context.Context) error {
			return &providers.TransientError{Op: "x", Err: ctx.Err()}
		}, true, false, "transient"},
		{"success", nil, false, false, "ok"},
	}
	const trip = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Breaker: BreakerSettings{ConsecutiveFailures: trip, OpenTimeout: time.Hour}})
			b.prov.setErr(tt.err)
			ctx := context.Background()
			if tt.cancelCtx {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			for i := 0; i < trip; i++ {
				_, _ = b.gate.Details(ctx, "o1")
			}
			_, err := b.gate.Details(ctx, "o1")
			d, deferred := providers.AsDeferral(err)
			tripped := deferred && d.Reason == providers.ReasonBreakerOpen
			if tripped != tt.trips {
				t.Fatalf("after %d calls: tripped = %v, want %v (last error %v)", trip, tripped, tt.trips, err)
			}
			wantCalls := int64(trip + 1)
			if tt.trips {
				wantCalls = trip
			}
			if got := b.prov.calls.Load(); got != wantCalls {
				t.Fatalf("provider called %d times, want %d", got, wantCalls)
			}
			if got := b.gate.BreakerState(); (got == StateOpen) != tt.trips {
				t.Fatalf("BreakerState = %q, tripped want %v", got, tt.trips)
			}
			if got := b.obs.snapshot().requests[0]; got != "details "+tt.class {
				t.Fatalf("observed request %q, want %q", got, "details "+tt.class)
			}
		})
	}
}

// One failure handed to several calls (a single-flight token fetch) is one
// failure of the provider: it must not open the breaker by itself, however
// many calls waited for it. Distinct shared failures still count each.
func TestSharedFailureCountsOnce(t *testing.T) {
	const trip = 3
	b := setup(t, Config{Breaker: BreakerSettings{ConsecutiveFailures: trip, OpenTimeout: time.Hour}})
	ctx := context.Background()
	one := &providers.SharedError{Err: &providers.TransientError{Op: "token", Err: errors.New("timeout")}}
	b.prov.setErr(errOf(fmt.Errorf("details: %w", one)))
	for i := 0; i < 2*trip; i++ {
		err := mustErr(b.gate.Details(ctx, "o1"))
		if _, deferred := providers.AsDeferral(err); deferred || !errors.Is(err, one) {
			t.Fatalf("call %d: %v, want the shared failure itself", i, err)
		}
	}
	if got := b.gate.BreakerState(); got != StateClosed {
		t.Fatalf("after %d calls sharing one failure: breaker %s, want closed", 2*trip, got)
	}
	if got := b.obs.snapshot().requests; len(got) != 2*trip || got[0] != "details transient" {
		t.Fatalf("observed %v, want every call as transient", got)
	}
	for i := 1; i < trip; i++ { // with the first, trip distinct failures in a row
		b.prov.setErr(errOf(&providers.SharedError{Err: &providers.TransientError{Op: "token", Err: errors.New("timeout")}}))
		_, _ = b.gate.Details(ctx, "o1")
	}
	if got := b.gate.BreakerState(); got != StateOpen {
		t.Fatalf("after %d distinct shared failures in a row: breaker %s, want open", trip, got)
	}
}

func TestOpenBreakerDefersWithoutCalling(t *testing.T) {
	const timeout = time.Hour
	lim := &fakeLimiter{}
	b := setup(t, Config{Limiter: lim, Breaker: BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: timeout}})
	b.prov.setErr(errOf(&providers.TransientError{Op: "x", Err: errors.New("503")}))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := b.gate.Preview(ctx, &providers.OrderRequest{}); err == nil {
			t.Fatal("want the provider's error")
		}
	}
	takes := lim.takes
	for i := 0; i < 5; i++ {
		_, err := b.gate.Create(ctx, &providers.OrderRequest{}, &providers.Quote{})
		var d *providers.DeferError
		if !errors.As(err, &d) {
			t.Fatalf("call %d on an open breaker: %v, want *providers.DeferError", i, err)
		}
		if d.Reason != providers.ReasonBreakerOpen || d.Provider != "fake" || d.Wait <= 0 || d.Wait > timeout {
			t.Fatalf("providers.DeferError %+v, want breaker_open from fake with a wait in (0, %v]", d, timeout)
		}
		if d.Wait < timeout-time.Minute {
			t.Fatalf("wait %v just after opening, want about %v", d.Wait, timeout)
		}
	}
	if got := b.prov.calls.Load(); got != 2 {
		t.Fatalf("provider called %d times, want 2 (none while open)", got)
	}
	if lim.takes != takes {
		t.Fatalf("limiter asked %d times while open: an open breaker must not spend quota", lim.takes-takes)
	}
	obs := b.obs.snapshot()
	if len(obs.deferred) != 5 || obs.deferred[0] != providers.ReasonBreakerOpen {
		t.Fatalf("observed deferrals %v, want 5 breaker_open", obs.deferred)
	}
	if fmt.Sprint(obs.states) != "[open]" {
		t.Fatalf("observed states %v, want [open]", obs.states)
	}
}

func TestBreakerClosesAfterOpenTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	b := setup(t, Config{Breaker: BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: timeout, HalfOpenMax: 2}})
	b.prov.setErr(errOf(&providers.TransientError{Op: "x", Err: errors.New("503")}))
	ctx := context.Background()
	opened := time.Now()
	if _, err := b.gate.Lookup(ctx, "x"); err == nil {
		t.Fatal("want the provider's error")
	}
	if _, ok := providers.AsDeferral(mustErr(b.gate.Lookup(ctx, "x"))); !ok {
		t.Fatal("breaker did not open after one failure")
	}
	b.prov.setErr(nil) // the provider recovers
	var got *providers.Placement
	testkit.WaitFor(t, 5*time.Second, "a call to go through", func() bool {
		p, err := b.gate.Lookup(ctx, "x")
		if err != nil {
			if _, ok := providers.AsDeferral(err); !ok {
				t.Fatalf("unexpected error: %v", err)
			}
			return false
		}
		got = p
		return true
	})
	if el := time.Since(opened); el < timeout {
		t.Fatalf("a call went through %v after opening, before OpenTimeout %v", el, timeout)
	}
	if got == nil || got.OrderIDs[0] != "l-x" {
		t.Fatalf("Lookup = %+v, want the provider's placement", got)
	}
	// HalfOpenMax 2: a second success closes it.
	if _, err := b.gate.Lookup(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if s := b.gate.BreakerState(); s != StateClosed {
		t.Fatalf("BreakerState = %q after %d successes, want closed", s, 2)
	}
	if s := fmt.Sprint(b.obs.snapshot().states); s != "[open half_open closed]" {
		t.Fatalf("observed states %s, want [open half_open closed]", s)
	}
}

func TestHalfOpenFailureReopens(t *testing.T) {
	const timeout = 30 * time.Millisecond
	b := setup(t, Config{Breaker: BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: timeout}})
	b.prov.setErr(errOf(&providers.UnknownOutcomeError{Op: "create", Err: errors.New("reset")}))
	ctx := context.Background()
	_ = b.gate.Cancel(ctx, "o", "r")
	testkit.WaitFor(t, 5*time.Second, "half-open", func() bool { return b.gate.BreakerState() == StateHalfOpen })
	if err := b.gate.Cancel(ctx, "o", "r"); err == nil {
		t.Fatal("probe: want the provider's error")
	}
	if s := b.gate.BreakerState(); s != StateOpen {
		t.Fatalf("after a failed probe: %q, want open", s)
	}
	if got := b.prov.calls.Load(); got != 2 {
		t.Fatalf("provider called %d times, want 2", got)
	}
}

func mustErr[T any](_ T, err error) error { return err }

func TestLimiterWaits(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		maxWait   time.Duration
		waits     []time.Duration
		wantSlept []time.Duration
		wantDefer time.Duration // 0: the call goes
	}{
		{"no wait", 0, nil, nil, 0},
		{"one wait slept", 0, []time.Duration{300 * ms}, []time.Duration{300 * ms}, 0},
		{"waits slept up to MaxWait", 500 * ms, []time.Duration{200 * ms, 300 * ms}, []time.Duration{200 * ms, 300 * ms}, 0},
		{"wait over MaxWait defers", 500 * ms, []time.Duration{600 * ms}, nil, 600 * ms},
		{"waits adding over MaxWait defer", 500 * ms, []time.Duration{300 * ms, 300 * ms}, []time.Duration{300 * ms}, 300 * ms},
		{"zero MaxWait means 1s", 0, []time.Duration{1001 * ms}, nil, 1001 * ms},
		{"negative MaxWait never sleeps", -1, []time.Duration{ms}, nil, ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := &fakeLimiter{waits: tt.waits}
			b := setup(t, Config{Limiter: lim, MaxWait: tt.maxWait})
			_, err := b.gate.Details(context.Background(), "o1")
			if fmt.Sprint(*b.slept) != fmt.Sprint(tt.wantSlept) {
				t.Fatalf("slept %v, want %v", *b.slept, tt.wantSlept)
			}
			if tt.wantDefer == 0 {
				if err != nil {
					t.Fatalf("err %v, want the call to go", err)
				}
				if b.prov.calls.Load() != 1 {
					t.Fatal("provider not called")
				}
				var total time.Duration
				for _, d := range tt.wantSlept {
					total += d
				}
				if w := b.obs.snapshot().waits; len(w) != 1 || w[0] != total {
					t.Fatalf("observed limiter waits %v, want [%v]", w, total)
				}
				return
			}
			d, ok := providers.AsDeferral(err)
			if !ok || d.Reason != providers.ReasonRateLimit || d.Wait != tt.wantDefer {
				t.Fatalf("err %v, want a rate_limit deferral of %v", err, tt.wantDefer)
			}
			if b.prov.calls.Load() != 0 {
				t.Fatal("provider called despite the deferral")
			}
			if got := b.obs.snapshot().deferred; fmt.Sprint(got) != "[rate_limit]" {
				t.Fatalf("observed deferrals %v", got)
			}
		})
	}
}

func TestLimiterErrorIsTransient(t *testing.T) {
	lim := &fakeLimiter{err: errors.New("redis: connection refused")}
	b := setup(t, Config{Limiter: lim})
	_, err := b.gate.Preview(context.Background(), &providers.OrderRequest{})
	var te *providers.TransientError
	if !errors.As(err, &te) {
		t.Fatalf("err %v, want a *providers.TransientError", err)
	}
	if b.prov.calls.Load() != 0 {
		t.Fatal("provider called although the limiter failed")
	}
}

func TestSleepHonoursContext(t *testing.T) {
	lim := &fakeLimiter{waits: []time.Duration{time.Hour}}
	g := Wrap(&fakeProvider{}, Config{Limiter: lim, MaxWait: 2 * time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := g.Details(ctx, "o1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("returned after %v: the sleep ignored the context", el)
	}
}

func TestProviderThrottleSlowsTheFleet(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
		want time.Duration
	}{
		{"provider's wait", 3 * time.Second, 3 * time.Second},
		{"no wait given means 1s", 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := &fakeLimiter{}
			b := setup(t, Config{Limiter: lim, Breaker: BreakerSettings{ConsecutiveFailures: 1}})
			thr := providers.Throttled("create", "600", tt.wait)
			b.prov.setErr(errOf(thr))
			_, err := b.gate.Create(context.Background(), &providers.OrderRequest{}, &providers.Quote{})
			d, ok := providers.AsDeferral(err)
			if !ok || d.Reason != providers.ReasonThrottled || d.Wait != tt.want {
				t.Fatalf("err %v, want a throttled deferral of %v", err, tt.want)
			}
			var got *providers.DeferError
			if !errors.As(err, &got) || got.Op != thr.Op || got.Code != thr.Code || got.Provider == "" {
				t.Fatalf("the gate did not pass on the provider's own throttle answer: %v", err)
			}
			if thr.Provider != "" || thr.Wait != tt.wait {
				t.Fatalf("the gate changed the provider's error (shared by its callers): %+v", thr)
			}
			if fmt.Sprint(lim.throttles) != fmt.Sprint([]time.Duration{tt.want}) {
				t.Fatalf("limiter throttled %v, want [%v]", lim.throttles, tt.want)
			}
			if s := b.gate.BreakerState(); s != StateClosed {
				t.Fatalf("a throttle moved the breaker to %q", s)
			}
		})
	}
}

func TestCallsPassThrough(t *testing.T) {
	b := setup(t, Config{Limiter: ratelimit.NewLocal(nil)})
	ctx := context.Background()
	q, err := b.gate.Preview(ctx, &providers.OrderRequest{})
	if err != nil || q.Total != 1234 {
		t.Fatalf("Preview = %+v, %v", q, err)
	}
	p, err := b.gate.Create(ctx, &providers.OrderRequest{}, q)
	if err != nil || p.OrderIDs[0] != "o1" {
		t.Fatalf("Create = %+v, %v", p, err)
	}
	if p, err := b.gate.Lookup(ctx, "u1"); err != nil || p.OrderIDs[0] != "l-u1" {
		t.Fatalf("Lookup = %+v, %v", p, err)
	}
	if s, err := b.gate.Details(ctx, "o1"); err != nil || s.OrderID != "o1" {
		t.Fatalf("Details = %+v, %v", s, err)
	}
	if pc, err := b.gate.Trace(ctx, "o1", &providers.ParcelRef{Carrier: "SF", BillNo: "1"}); err != nil || !pc.Delivered() || pc.BillNo != "1" {
		t.Fatalf("Trace = %+v, %v", pc, err)
	}
	if err := b.gate.Cancel(ctx, "o1", "r"); err != nil {
		t.Fatal(err)
	}
	if b.gate.Name() != "fake" {
		t.Fatalf("Name = %q", b.gate.Name())
	}
	want := "[preview ok create ok lookup ok details ok trace ok cancel ok]"
	if got := fmt.Sprint(b.obs.snapshot().requests); got != want {
		t.Fatalf("observed %s, want %s", got, want)
	}
}

func TestWithALocalLimiter(t *testing.T) {
	// A real limiter and the real sleep: burst 1 at 20/s, so the second
	// call sleeps about 50ms and both go.
	obs := &recorder{}
	g := Wrap(&fakeProvider{}, Config{
		Limiter:  ratelimit.NewLocal(map[string]ratelimit.Quota{"fake": {Rate: 20, Burst: 1}}),
		Observer: obs,
	})
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 2; i++ {
		if _, err := g.Details(ctx, "o1"); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Fatalf("two calls at 20/s with burst 1 took %v, want about 50ms", el)
	}
	if w := obs.snapshot().waits; len(w) != 2 || w[0] != 0 || w[1] < 40*time.Millisecond {
		t.Fatalf("observed waits %v, want [0 ~50ms]", w)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Breaker: BreakerSettings{OpenTimeout: -1}}).Validate(); err == nil {
		t.Fatal("negative OpenTimeout: no error")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Wrap with an invalid config did not panic")
		}
	}()
	Wrap(&fakeProvider{}, Config{Breaker: BreakerSettings{OpenTimeout: -1}})
}

func TestDeferErrorMessage(t *testing.T) {
	e := providers.Throttled("create", "600", 2*time.Second)
	e.Provider = "depal"
	want := "depal create: deferred (throttled) code 600, retry in 2s"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
}
