package testkit

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// WaitFor waits until cond holds, failing the test after timeout with
// what it was waiting for.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if err := Poll(context.Background(), timeout, cond); err != nil {
		tb.Fatalf("after %s: still waiting for %s", timeout, what)
	}
}

// ErrTimedOut is Poll's error when cond did not hold in time.
var ErrTimedOut = errors.New("timed out")

// Poll checks cond every 5 ms until it holds (nil), timeout passes
// (ErrTimedOut) or ctx ends (its error): WaitFor for code outside a test
// (the benchmarks).
func Poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return ErrTimedOut
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers (a
// log sink, a command's output read while it runs).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
