// Package gate is the one way the pipeline calls a provider. Every call
// passes, in order, the provider's rate limit (shared by every pod through
// package ratelimit), its circuit breaker (one per provider per pod, sony/
// gobreaker), then the provider's client.
//
// A call the gate does not make, or that the provider throttled, ends in a
// *providers.DeferError carrying how long to wait: the caller reschedules the work
// without counting a failed attempt. Every other error is the provider's own,
// of the classes in package providers.
package gate

import (
	"fmt"
	"log/slog"
	"time"

	"orderflow/providers"
	"orderflow/ratelimit"
)

// Breaker states as reported to the Observer.
const (
	StateClosed   = "closed"
	StateHalfOpen = "half_open"
	StateOpen     = "open"
)

// Observer is told of every call; package metrics implements it. Its methods
// must be fast and must not call back into the gate (BreakerState is called
// with the breaker's lock held).
type Observer interface {
	// Request: a call reached the provider. op is "preview", "create",
	// "lookup", "details", "trace" or "cancel"; class is the outcome's
	// class (providers.ClassNone for success and for ErrNotFound, a
	// healthy answer).
	Request(provider, op string, class providers.Class, d time.Duration)
	// LimiterWait: time slept for the rate limit before a call (0 when none).
	LimiterWait(provider string, d time.Duration)
	// Deferred: a call ended in a *DeferError with this reason.
	Deferred(provider, reason string)
	// BreakerState: the breaker changed to state ("closed", "half_open", "open").
	BreakerState(provider string, state string)
}

// BreakerSettings configure the circuit breaker of each wrapped provider.
type BreakerSettings struct {
	// ConsecutiveFailures trips the breaker (transient and unknown-outcome
	// errors only). Zero means 5.
	ConsecutiveFailures uint32
	// OpenTimeout is how long the breaker stays open before letting probes
	// through (half-open). Zero means 30s; negative is invalid.
	OpenTimeout time.Duration
	// HalfOpenMax is how many probes may be in flight while half-open; that
	// many consecutive successes close the breaker. Zero means 1.
	HalfOpenMax uint32
}

// Config configures Wrap.
type Config struct {
	// Limiter holds the provider's quota, keyed by the provider's name. Nil:
	// no limit.
	Limiter ratelimit.Limiter
	// MaxWait: a limiter wait up to this is slept in the caller (ending
	// early if its context does); a longer one ends in a *DeferError.
	// Zero means 1s; negative means never sleep (every wait defers).
	MaxWait time.Duration
	// Breaker configures the circuit breaker.
	Breaker BreakerSettings
	// Observer is told of every call. Nil: none.
	Observer Observer
	// Logger logs breaker state changes (at Warn) and limiter errors while
	// recording a throttle. Nil: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	if c.Breaker.OpenTimeout < 0 {
		return fmt.Errorf("gate: Config.Breaker.OpenTimeout is %v, must not be negative", c.Breaker.OpenTimeout)
	}
	return nil
}

// withDefaults returns c with its zero values applied.
func (c Config) withDefaults() Config {
	if c.MaxWait == 0 {
		c.MaxWait = time.Second
	}
	if c.Breaker.ConsecutiveFailures == 0 {
		c.Breaker.ConsecutiveFailures = 5
	}
	if c.Breaker.OpenTimeout == 0 {
		c.Breaker.OpenTimeout = 30 * time.Second
	}
	if c.Breaker.HalfOpenMax == 0 {
		c.Breaker.HalfOpenMax = 1
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

type nopObserver struct{}

func (nopObserver) Request(string, string, providers.Class, time.Duration) {}
func (nopObserver) LimiterWait(string, time.Duration)                      {}
func (nopObserver) Deferred(string, string)                                {}
func (nopObserver) BreakerState(string, string)                            {}
