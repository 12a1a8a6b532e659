package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// redisServer is a real redis-server on a free loopback port, stopped by
// its PID.
type redisServer struct {
	Addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedis starts redis-server on a free loopback port in dir and waits
// until it answers PING.
func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("bench needs redis-server on PATH: %w", err)
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		s := &redisServer{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
		if lastErr = s.start(bin, dir, port); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("cannot start redis-server: %w", lastErr)
}

func (s *redisServer) start(bin, dir string, port int) error {
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "",
		"--appendonly", "no", "--dir", dir, "--protected-mode", "yes")
	logPath := filepath.Join(dir, fmt.Sprintf("redis-%d.log", port))
	logf, err := os.Create(logPath)
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
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server exited early: %s", strings.TrimSpace(string(b)))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				s.cmd, s.exited = cmd, exited
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING", s.Addr)
}

// Stop kills the server by its PID and waits for it.
func (s *redisServer) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
