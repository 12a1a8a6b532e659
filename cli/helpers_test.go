package cli_test

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until cond holds, failing the test after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: still waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitContains waits until buf holds s.
func waitContains(tb testing.TB, buf *syncBuffer, s string) {
	tb.Helper()
	waitFor(tb, 10*time.Second, "output "+strings.TrimSpace(s)+" (have "+buf.String()+")", func() bool {
		return strings.Contains(buf.String(), s)
	})
}
