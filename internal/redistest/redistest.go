// Package redistest gives tests a Redis: miniredis in-process, or a real
// redis-server started on a free loopback port and stopped (by its PID) when
// the test ends. Redis-facing tests run on both with ForEach.
//
// With REQUIRE_REDIS=1 (as in CI) a real server that cannot start fails the
// test instead of skipping it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a Redis for one test.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// Mini is the miniredis instance, nil for a real server.
	Mini *miniredis.Miniredis
	// Kind is "miniredis" or "redis-server".
	Kind string

	cmd    *exec.Cmd
	exited chan struct{}
	dir    string
	args   []string
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if Required() {
			tb.Fatalf("REQUIRE_REDIS=1 but redis-server is not installed: %v", err)
		}
		tb.Skip("redis-server not installed (set REQUIRE_REDIS=1 to make this a failure)")
	}
	s := &Server{Kind: "redis-server", dir: tb.TempDir()}
	s.args = append([]string{"--bind", "127.0.0.1", "--save", "", "--dir", s.dir,
		"--protected-mode", "yes"}, splitConf(extra)...)
	s.args = append([]string{bin}, s.args...)
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := FreePort()
		if err != nil {
			lastErr = err
			continue
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("redistest: cannot start redis-server: %v", lastErr)
	return nil
}

func splitConf(lines []string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		out = append(out, "--"+f[0])
		out = append(out, f[1:]...)
	}
	return out
}

// start runs the server on s.Addr and waits until it answers PING.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := append(append([]string{}, s.args[1:]...), "--port", port)
	cmd := exec.Command(s.args[0], args...)
	logf, err := os.Create(filepath.Join(s.dir, "redis-"+port+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited early: %s", tail(logf.Name()))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			// A server with requirepass answers -NOAUTH: it is up all the same.
			if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
				s.cmd = cmd
				s.exited = exited
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING", s.Addr)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 500 {
		b = b[len(b)-500:]
	}
	return strings.TrimSpace(string(b))
}

// Stop ends the real server by its PID and waits for it. A no-op for
// miniredis and for a stopped server.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops a real server and starts it again on the same address and
// directory (so an AOF, if configured, is replayed).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatalf("redistest: restart: %v", err)
	}
}

// ForEach runs fn as a subtest on miniredis and on a real redis-server.
func ForEach(t *testing.T, fn func(t *testing.T, s *Server)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, Mini(t)) })
	t.Run("redis-server", func(t *testing.T) { fn(t, Real(t)) })
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
