package sim

import (
	"sync"
	"time"
)

// Clock tells the simulator's time: the time orders live in. Order status is
// a pure function of an order's creation time, its fate and Clock.Now, so a
// clock that runs faster than wall time moves every order faster.
//
// Signatures (Xportcn timestamp skew) and Depal token lifetimes are checked
// against the wall clock, never against Clock, as the real providers do.
type Clock interface {
	// Now is the current simulated time.
	Now() time.Time
}

// RealClock is wall time.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AccelClock runs simulated time Speed times faster than wall time, starting
// at the wall time it was made.
type AccelClock struct {
	start time.Time
	speed float64
}

// NewAccelClock returns a clock whose time advances speed times faster than
// wall time (speed 1 is wall time; speed 60 turns a minute into a second).
// A speed of zero or less is taken as 1.
func NewAccelClock(speed float64) *AccelClock {
	if speed <= 0 {
		speed = 1
	}
	return &AccelClock{start: time.Now(), speed: speed}
}

// Now returns the accelerated time.
func (c *AccelClock) Now() time.Time {
	el := time.Since(c.start) // monotonic
	return c.start.Add(time.Duration(float64(el) * c.speed))
}

// Speed is how many simulated seconds pass per wall second.
func (c *AccelClock) Speed() float64 { return c.speed }

// ManualClock is a clock that only moves when told to, for tests.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock standing at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
