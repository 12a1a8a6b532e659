// Package redistest gives tests a Redis: miniredis in-process, or a real
// redis-server started on a free loopback port and stopped (by its PID) when
// the test ends. Redis-facing tests run on both with ForEach.
//
// With REQUIRE_REDIS=1 (as in CI) a real server that cannot start fails the
// test instead of skipping it.
package redistest

import (
	"errors"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/redisproc"
)

// Server is a Redis for one test.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// Mini is the miniredis instance, nil for a real server.
	Mini *miniredis.Miniredis
	// Kind is "miniredis" or "redis-server".
	Kind string

	proc *redisproc.Server
}

// Client returns a go-redis client for s, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// URL is the redis:// URL of s.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Mini starts a miniredis for the test.
func Mini(tb testing.TB) *Server {
	tb.Helper()
	m := miniredis.RunT(tb)
	return &Server{Addr: m.Addr(), Mini: m, Kind: "miniredis"}
}

// Required reports whether a real redis-server must be available (REQUIRE_REDIS=1).
func Required() bool { return os.Getenv("REQUIRE_REDIS") == "1" }

// Real starts a redis-server on a free loopback port for the test, with
// extra config lines (e.g. "appendonly yes"). It skips the test when no
// server is installed, unless Required, when it fails it.
func Real(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	p, err := redisproc.Start(tb.TempDir(), extra...)
	switch {
	case errors.Is(err, redisproc.ErrNotInstalled) && !Required():
		tb.Skip("redis-server not installed (set REQUIRE_REDIS=1 to make this a failure)")
	case errors.Is(err, redisproc.ErrNotInstalled):
		tb.Fatalf("REQUIRE_REDIS=1 but redis-server is not installed")
	case err != nil:
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(p.Stop)
	return &Server{Addr: p.Addr, Kind: "redis-server", proc: p}
}

// Stop ends a real server by its PID and waits for it. A no-op for
// miniredis and for a stopped server.
func (s *Server) Stop() {
	if s.proc != nil {
		s.proc.Stop()
	}
}

// Restart stops a real server and starts it again on the same address and
// directory (so an AOF, if configured, is replayed).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.proc.Restart(); err != nil {
		tb.Fatalf("redistest: restart: %v", err)
	}
}

// ForEach runs fn as a subtest on miniredis and on a real redis-server.
func ForEach(t *testing.T, fn func(t *testing.T, s *Server)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, Mini(t)) })
	t.Run("redis-server", func(t *testing.T) { fn(t, Real(t)) })
}
