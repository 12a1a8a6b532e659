package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrSentinelNotInstalled: no redis-sentinel on PATH (Debian: package
// redis-sentinel).
var ErrSentinelNotInstalled = errors.New("redisproc: redis-sentinel is not installed (Debian package redis-sentinel)")

// StartReplica runs a redis-server in dir (not the primary's) replicating
// primary, with the extra config lines given, and waits until its link to
// the primary is up and the first sync is done. It announces 127.0.0.1, so
// Sentinel hands out a loopback address once it is promoted.
func StartReplica(dir string, primary *Server, conf ...string) (*Server, error) {
	host, port, err := net.SplitHostPort(primary.Addr)
	if err != nil {
		return nil, fmt.Errorf("redisproc: primary address %q: %w", primary.Addr, err)
	}
	r, err := Start(dir, append([]string{"replicaof " + host + " " + port, "replica-announce-ip 127.0.0.1"}, conf...)...)
	if err != nil {
		return nil, err
	}
	if err := r.waitInfo("replication", "master_link_status:up", 30*time.Second); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// waitInfo waits until INFO section holds the line want.
func (s *Server) waitInfo(section, want string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		info, err := c.Info(ctx, section).Result()
		if err == nil && strings.Contains(info, want+"\r\n") {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = strings.TrimSpace(info)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisproc: %s: INFO %s never showed %q (last: %s)", s.Addr, section, want, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SentinelConfig is what a Sentinel monitors and how quickly it acts.
type SentinelConfig struct {
	// Master is the name clients ask for (the ?master= of a
	// redis-sentinel:// URL).
	Master string
	// Primary is the primary's address at start.
	Primary string
	// Quorum is how many Sentinels must agree the primary is down.
	Quorum int
	// DownAfter is down-after-milliseconds: how long the primary may not
	// answer before it is considered down.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout (also the wait before a failed
	// failover is tried again).
	FailoverTimeout time.Duration
}

// Sentinel is a redis-sentinel process.
type Sentinel struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Dir holds its config file (which Sentinel rewrites) and its log.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartSentinel runs redis-sentinel in dir on a free loopback port,
// monitoring cfg.Primary as cfg.Master, announcing 127.0.0.1 and not
// resolving host names, and waits until it answers.
func StartSentinel(dir string, cfg SentinelConfig) (*Sentinel, error) {
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		return nil, ErrSentinelNotInstalled
	}
	host, port, err := net.SplitHostPort(cfg.Primary)
	if err != nil {
		return nil, fmt.Errorf("redisproc: SentinelConfig.Primary %q: %w", cfg.Primary, err)
	}
	if cfg.Master == "" || cfg.Quorum < 1 || cfg.DownAfter <= 0 || cfg.FailoverTimeout <= 0 {
		return nil, fmt.Errorf("redisproc: SentinelConfig needs Master, Quorum >= 1, DownAfter and FailoverTimeout, got %+v", cfg)
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		p, err := FreePort()
		if err != nil {
			lastErr = err
			continue
		}
		s := &Sentinel{Addr: fmt.Sprintf("127.0.0.1:%d", p), Dir: dir}
		conf := strings.Join([]string{
			"bind 127.0.0.1",
			"port " + strconv.Itoa(p),
			"dir " + dir,
			"sentinel resolve-hostnames no",
			"sentinel announce-ip 127.0.0.1",
			fmt.Sprintf("sentinel monitor %s %s %s %d", cfg.Master, host, port, cfg.Quorum),
			fmt.Sprintf("sentinel down-after-milliseconds %s %d", cfg.Master, cfg.DownAfter.Milliseconds()),
			fmt.Sprintf("sentinel failover-timeout %s %d", cfg.Master, cfg.FailoverTimeout.Milliseconds()),
			fmt.Sprintf("sentinel parallel-syncs %s 1", cfg.Master),
		}, "\n") + "\n"
		confPath := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", p))
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		logPath := filepath.Join(dir, fmt.Sprintf("sentinel-%d.log", p))
		if s.cmd, s.exited, lastErr = run(bin, []string{confPath}, logPath, s.Addr); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redisproc: cannot start redis-sentinel: %w", lastErr)
}

// Stop ends the Sentinel by its PID and waits for it. A stopped Sentinel
// is a no-op.
func (s *Sentinel) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Primary is the address this Sentinel names as master's primary.
func (s *Sentinel) Primary(ctx context.Context, master string) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	a, err := c.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		return "", fmt.Errorf("redisproc: sentinel %s: %w", s.Addr, err)
	}
	if len(a) != 2 {
		return "", fmt.Errorf("redisproc: sentinel %s: get-master-addr-by-name %s = %v", s.Addr, master, a)
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// WaitSentinels waits until each Sentinel has found every other one and
// replicas replicas of master: until then a failover could not reach its
// quorum or would have no replica to promote.
func WaitSentinels(ctx context.Context, master string, sentinels []*Sentinel, replicas int) error {
	for _, s := range sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		var seen string
		for {
			others, err1 := c.Sentinels(ctx, master).Result()
			reps, err2 := c.Replicas(ctx, master).Result()
			if err := errors.Join(err1, err2); err == nil && len(others) >= len(sentinels)-1 && len(reps) >= replicas {
				break
			} else {
				seen = fmt.Sprintf("%d other sentinels, %d replicas, err %v", len(others), len(reps), err)
			}
			select {
			case <-ctx.Done():
				c.Close()
				return fmt.Errorf("redisproc: sentinel %s does not see the others and %d replicas of %s: %s", s.Addr, replicas, master, seen)
			case <-time.After(50 * time.Millisecond):
			}
		}
		c.Close()
	}
	return nil
}
