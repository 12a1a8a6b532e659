package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"orderflow/providers"
	"orderflow/ratelimit"
)

// Provider wraps a providers.Provider: every call passes the limiter, then
// the breaker, then the client. It is safe for concurrent use.
type Provider struct {
	p           providers.Provider
	name        string
	lim         ratelimit.Limiter
	maxWait     time.Duration
	openTimeout time.Duration
	halfOpenMax uint32
	obs         Observer
	log         *slog.Logger
	cb          *gobreaker.CircuitBreaker[struct{}]

	// Injected for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	openedAt time.Time              // when the breaker last opened
	counted  *providers.SharedError // the last shared failure counted
}

var _ providers.Provider = (*Provider)(nil)

// Wrap returns p behind a gate configured by cfg. It panics if p is nil or
// cfg is invalid (see Config.Validate): both are programming errors.
func Wrap(p providers.Provider, cfg Config) *Provider {
	if p == nil {
		panic("gate: Wrap: nil provider")
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	g := &Provider{
		p:           p,
		name:        p.Name(),
		lim:         cfg.Limiter,
		maxWait:     cfg.MaxWait,
		openTimeout: cfg.Breaker.OpenTimeout,
		halfOpenMax: cfg.Breaker.HalfOpenMax,
		obs:         cfg.Observer,
		log:         cfg.Logger,
		now:         time.Now,
		sleep:       sleep,
	}
	trip := cfg.Breaker.ConsecutiveFailures
	g.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        g.name,
		MaxRequests: cfg.Breaker.HalfOpenMax,
		Timeout:     cfg.Breaker.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= trip },
		IsSuccessful: func(err error) bool {
			return err == nil || verdictOf(err) == success
		},
		IsExcluded:    func(err error) bool { return verdictOf(err) == excluded },
		OnStateChange: g.onStateChange,
	})
	return g
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// CallsBeforeSend marks the gate as one that calls providers.BeforeSend
// once a call is let out.
func (g *Provider) CallsBeforeSend() {}

// Name is the wrapped provider's name.
func (g *Provider) Name() string { return g.name }

// BreakerState is the breaker's state now: "closed", "half_open" or "open".
func (g *Provider) BreakerState() string { return stateName(g.cb.State()) }

// Preview implements providers.Provider.
func (g *Provider) Preview(ctx context.Context, req *providers.OrderRequest) (*providers.Quote, error) {
	return call(g, ctx, "preview", func(ctx context.Context) (*providers.Quote, error) { return g.p.Preview(ctx, req) })
}

// Create implements providers.Provider.
func (g *Provider) Create(ctx context.Context, req *providers.OrderRequest, q *providers.Quote) (*providers.Placement, error) {
	return call(g, ctx, "create", func(ctx context.Context) (*providers.Placement, error) { return g.p.Create(ctx, req, q) })
}

// Lookup implements providers.Provider.
func (g *Provider) Lookup(ctx context.Context, outOrderID string) (*providers.Placement, error) {
	return call(g, ctx, "lookup", func(ctx context.Context) (*providers.Placement, error) { return g.p.Lookup(ctx, outOrderID) })
}

// Details implements providers.Provider.
func (g *Provider) Details(ctx context.Context, orderID string) (*providers.OrderStatus, error) {
	return call(g, ctx, "details", func(ctx context.Context) (*providers.OrderStatus, error) { return g.p.Details(ctx, orderID) })
}

// Trace implements providers.Provider.
func (g *Provider) Trace(ctx context.Context, orderID string, ref *providers.ParcelRef) (*providers.Parcel, error) {
	return call(g, ctx, "trace", func(ctx context.Context) (*providers.Parcel, error) { return g.p.Trace(ctx, orderID, ref) })
}

// Cancel implements providers.Provider.
func (g *Provider) Cancel(ctx context.Context, orderID, reason string) error {
	_, err := call(g, ctx, "cancel", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, g.p.Cancel(ctx, orderID, reason)
	})
	return err
}

// call runs fn through the limiter, the breaker and the observer.
func call[T any](g *Provider, ctx context.Context, op string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	// An open breaker defers before the limiter: a call that will not be
	// made must not spend the fleet's quota.
	if g.cb.State() == gobreaker.StateOpen {
		return zero, g.deferred(providers.ReasonBreakerOpen, g.openWait())
	}
	if err := g.admit(ctx, op); err != nil {
		return zero, err
	}
	if err := providers.BeforeSend(ctx); err != nil {
		return zero, err
	}
	var out T
	var callErr error
	var made bool
	_, err := g.cb.Execute(func() (struct{}, error) {
		made = true
		start := g.now()
		out, callErr = fn(ctx)
		class, v := classify(ctx, callErr)
		if v == failure && g.countedBefore(callErr) {
			v = excluded
		}
		g.obs.Request(g.name, op, class, g.now().Sub(start))
		if callErr == nil {
			return struct{}{}, nil
		}
		return struct{}{}, &judged{err: callErr, v: v}
	})
	if !made {
		switch {
		case errors.Is(err, gobreaker.ErrOpenState):
			return zero, g.deferred(providers.ReasonBreakerOpen, g.openWait())
		case errors.Is(err, gobreaker.ErrTooManyRequests):
			return zero, g.deferred(providers.ReasonBreakerOpen, g.probeWait())
		}
		return zero, fmt.Errorf("gate: %s %s: breaker: %w", g.name, op, err)
	}
	if callErr == nil {
		return out, nil
	}
	if shared, ok := providers.AsDeferral(callErr); ok {
		// A copy: the client may hand the same error to several callers
		// (Depal's single-flight token fetch does), so it is not ours to
		// change.
		th := *shared
		if th.Wait <= 0 {
			th.Wait = time.Second
		}
		th.Provider = g.name
		g.throttle(ctx, th.Wait)
		g.obs.Deferred(g.name, th.Reason)
		return out, &th
	}
	return out, callErr
}

// countedBefore reports whether err is a shared failure (one fetch whose
// error several calls got) that the breaker already counted for another
// call. One slow token fetch waited on by five calls is one failure of the
// provider, not the five in a row that open the breaker for every call.
func (g *Provider) countedBefore(err error) bool {
	var sh *providers.SharedError
	if !errors.As(err, &sh) {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.counted == sh {
		return true
	}
	g.counted = sh
	return false
}

// admit takes the call's place in the rate limit, sleeping waits up to
// maxWait in all.
func (g *Provider) admit(ctx context.Context, op string) error {
	if g.lim == nil {
		return nil
	}
	var slept time.Duration
	for {
		w, err := g.lim.Take(ctx, g.name)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("gate: %s %s: rate limit: %w", g.name, op, ctxErr)
			}
			return &providers.TransientError{Op: op, Err: fmt.Errorf("gate: %s: rate limiter: %w", g.name, err)}
		}
		if w <= 0 {
			g.obs.LimiterWait(g.name, slept)
			return nil
		}
		if slept+w > g.maxWait {
			if slept > 0 {
				g.obs.LimiterWait(g.name, slept)
			}
			return g.deferred(providers.ReasonRateLimit, w)
		}
		if err := g.sleep(ctx, w); err != nil {
			return fmt.Errorf("gate: %s %s: waiting %v for the rate limit: %w", g.name, op, w, err)
		}
		slept += w
	}
}

// throttle records the provider's throttle for every pod. It runs even when
// the caller's context is done: the throttle matters to the fleet.
func (g *Provider) throttle(ctx context.Context, wait time.Duration) {
	if g.lim == nil {
		return
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := g.lim.Throttle(tctx, g.name, wait); err != nil {
		g.log.Warn("cannot record the provider's throttle; other pods keep their pace",
			"provider", g.name, "wait", wait, "err", err)
	}
}

// deferred builds a *providers.DeferError and tells the observer.
func (g *Provider) deferred(reason string, wait time.Duration) *providers.DeferError {
	g.obs.Deferred(g.name, reason)
	return &providers.DeferError{Provider: g.name, Reason: reason, Wait: wait}
}

// minWait floors a computed wait so that a DeferError never says "now".
const minWait = 10 * time.Millisecond

// openWait is the time until the open breaker lets a probe through.
func (g *Provider) openWait() time.Duration {
	g.mu.Lock()
	opened := g.openedAt
	g.mu.Unlock()
	if opened.IsZero() {
		return g.openTimeout
	}
	w := g.openTimeout - g.now().Sub(opened)
	if w > g.openTimeout {
		w = g.openTimeout
	}
	if w < minWait {
		w = minWait
	}
	return w
}

// probeWait is the wait while half-open with every probe slot in flight: a
// probe's answer decides soon, so a second or OpenTimeout, whichever is
// shorter.
func (g *Provider) probeWait() time.Duration {
	if g.openTimeout < time.Second {
		return g.openTimeout
	}
	return time.Second
}

// onStateChange is gobreaker's OnStateChange; it runs with the breaker's
// lock held.
func (g *Provider) onStateChange(_ string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		g.mu.Lock()
		g.openedAt = g.now()
		g.mu.Unlock()
	}
	g.log.Warn("circuit breaker state changed", "provider", g.name,
		"from", stateName(from), "to", stateName(to))
	g.obs.BreakerState(g.name, stateName(to))
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return StateOpen
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	}
	return StateClosed
}

// verdict is how an outcome counts for the breaker.
type verdict int

const (
	failure  verdict = iota // counts towards tripping
	success                 // a healthy answer
	excluded                // counts neither way
)

// judged carries a provider error through gobreaker with its verdict.
type judged struct {
	err error
	v   verdict
}

func (j *judged) Error() string { return j.err.Error() }
func (j *judged) Unwrap() error { return j.err }

// verdictOf is the verdict carried by err; an error the gate did not judge
// (a panic in the client) is a failure.
func verdictOf(err error) verdict {
	var j *judged
	if errors.As(err, &j) {
		return j.v
	}
	return failure
}

// classify tells the class of a call's outcome (for the observer) and how it
// counts for the breaker: only transient and unknown-outcome errors are
// failures; a throttle and a call whose caller gave up (its context done)
// are excluded; a business refusal, an auth refusal and ErrNotFound are a
// healthy provider answering.
func classify(ctx context.Context, err error) (providers.Class, verdict) {
	if err == nil || errors.Is(err, providers.ErrNotFound) {
		return providers.ClassNone, success
	}
	class := providers.ClassOf(err)
	if ctx.Err() != nil {
		return class, excluded
	}
	switch class {
	case providers.ClassTransient, providers.ClassUnknownOutcome:
		return class, failure
	case providers.ClassThrottled:
		return class, excluded
	}
	return class, success
}
