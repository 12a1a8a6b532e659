package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/tasks"
)

// stuckCreates is a fake provider whose creates never return on their
// own: each blocks until its task's context ends, which asynq does when
// the drain's ShutdownTimeout runs out.
type stuckCreates struct {
	*fakeprovider.Fake
	mu       sync.Mutex
	inFlight int
	released []time.Time
}

func (s *stuckCreates) Create(ctx context.Context, _ *providers.OrderRequest, _ *providers.Quote) (*providers.Placement, error) {
	s.mu.Lock()
	s.inFlight++
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.released = append(s.released, time.Now())
	s.mu.Unlock()
	return nil, &providers.UnknownOutcomeError{Op: "create", Err: ctx.Err()}
}

func (s *stuckCreates) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

func (s *stuckCreates) releasedAt() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.released...)
}

// The servers (one per provider, and notify) drain at the same time: with
// a create stuck at each of two providers, Shutdown takes one
// ShutdownTimeout, not one per server.
func TestShutdownDrainsServersConcurrently(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	srv := redistest.Mini(t)
	stuck := map[string]*stuckCreates{}
	ps := map[string]providers.Provider{}
	for _, n := range []string{providers.Xportcn, providers.Depal} {
		stuck[n] = &stuckCreates{Fake: fakeprovider.New(n)}
		ps[n] = stuck[n]
	}
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                ps,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:          timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	b := &bundle{w: w}
	for n := range stuck {
		b.submit(t, order(n, "stuck-"+n))
	}
	testkit.WaitFor(t, 10*time.Second, "a create in flight at each provider", func() bool {
		return stuck[providers.Xportcn].running() == 1 && stuck[providers.Depal].running() == 1
	})

	began := time.Now()
	w.Shutdown()
	took := time.Since(began)

	// Sequential drains take at least 2 x timeout (3s); a concurrent one
	// about timeout. The bound leaves room for a busy machine.
	if took >= 2600*time.Millisecond {
		t.Errorf("Shutdown took %s with a create stuck at each of 2 providers and ShutdownTimeout %s: the servers drained one after another", took.Round(time.Millisecond), timeout)
	}
	// A create wakes when asynq cancels its context, which may be just
	// after Shutdown returned.
	testkit.WaitFor(t, 5*time.Second, "both stuck creates released", func() bool {
		return len(stuck[providers.Xportcn].releasedAt()) == 1 && len(stuck[providers.Depal].releasedAt()) == 1
	})
	x, d := stuck[providers.Xportcn].releasedAt(), stuck[providers.Depal].releasedAt()
	if gap := x[0].Sub(d[0]).Abs(); gap > timeout/2 {
		t.Errorf("the stuck creates were released %s apart: their servers' drains did not overlap", gap.Round(time.Millisecond))
	}
}

// The default drain lets the longest task finish, and is what an unset
// SHUTDOWN_TIMEOUT gives.
func TestDefaultShutdownTimeout(t *testing.T) {
	if app.DefaultShutdownTimeout <= tasks.Timeout {
		t.Errorf("DefaultShutdownTimeout %v must exceed the task timeout %v", app.DefaultShutdownTimeout, tasks.Timeout)
	}
	s, err := app.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if s.ShutdownTimeout != app.DefaultShutdownTimeout {
		t.Errorf("SHUTDOWN_TIMEOUT unset: %v, want %v", s.ShutdownTimeout, app.DefaultShutdownTimeout)
	}
}
