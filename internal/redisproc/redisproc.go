// Package redisproc runs a real redis-server on a free loopback port for
// tests, benchmarks and the chaos run, and ends it by its PID; also a
// replica of one (StartReplica) and the redis-sentinel processes that
// watch them (StartSentinel), for a real failover.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotInstalled: no redis-server on PATH.
var ErrNotInstalled = errors.New("redisproc: redis-server is not installed")

// Server is a redis-server process.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Dir holds its log files and, with AOF on, its data.
	Dir string

	bin    string
	conf   []string
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Start runs redis-server in dir on a free loopback port with the extra
// config lines given (e.g. "appendonly yes"; RDB snapshots are off) and
// waits until it answers.
func Start(dir string, conf ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	s := &Server{Dir: dir, bin: bin, conf: conf}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := FreePort()
		if err != nil {
			lastErr = err
			continue
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redisproc: cannot start redis-server: %w", lastErr)
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"--bind", "127.0.0.1", "--port", port, "--dir", s.Dir, "--save", "", "--protected-mode", "yes"}
	for _, l := range s.conf {
		if f := strings.Fields(l); len(f) > 0 {
			args = append(append(args, "--"+f[0]), f[1:]...)
		}
	}
	s.starts++
	logPath := filepath.Join(s.Dir, fmt.Sprintf("redis-%s-%d.log", port, s.starts))
	cmd, exited, err := run(s.bin, args, logPath, s.Addr)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// run starts bin with args, its output in logPath, and waits until addr
// answers PING. A process that exits first, or does not answer within
// 30 s, is an error (and is gone).
func run(bin string, args []string, logPath, addr string) (*exec.Cmd, chan struct{}, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	// Replaying a large AOF takes a moment: -LOADING means not yet.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			if len(b) > 500 {
				b = b[len(b)-500:]
			}
			return nil, nil, fmt.Errorf("%s exited early: %s", filepath.Base(bin), strings.TrimSpace(string(b)))
		default:
		}
		if up(addr) {
			return cmd, exited, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil, nil, fmt.Errorf("%s on %s did not answer PING", filepath.Base(bin), addr)
}

// up reports whether the server at addr answers PING (+PONG, or -NOAUTH
// from a server with requirepass).
func up(addr string) bool {
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_, _ = c.Write([]byte("PING\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")
}

// Stop ends the server by its PID (SIGKILL: no shutdown save; an AOF is
// replayed by Restart) and waits for it. A stopped server is a no-op.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops the server and starts it again on the same address and
// directory.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
