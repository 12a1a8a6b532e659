package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"orderflow/internal/redisproc"
)

// worker is one worker process.
type worker struct {
	name     string
	adminURL string
	cmd      *exec.Cmd
	exited   chan struct{}
	log      string
}

// stop sends SIGTERM and waits up to grace, then kills.
func (w *worker) stop(grace time.Duration) {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(grace):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}

// kill SIGKILLs the worker by its PID and waits for it.
func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// startWorker runs the worker binary with env added, on its own admin
// port, logging to a file in dir, and waits until its admin listener
// answers /healthz.
func startWorker(bin, dir, name string, env []string) (*worker, error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "ADMIN_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("chaos: start %s: %w", name, err)
	}
	w := &worker{name: name, adminURL: "http://" + addr, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(w.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		if !w.alive() {
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("chaos: %s exited at start: %s", name, tail(b, 2000))
		}
		if resp, err := hc.Get(w.adminURL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		if time.Now().After(deadline) {
			w.kill()
			return nil, fmt.Errorf("chaos: %s did not serve /healthz within 20s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// fanout receives the simulator's Xportcn pushes and forwards each to the
// /callbacks/xportcn of a live worker, trying the others when one does not
// answer (it may just have been killed). It answers the status of the
// first worker that answered, or 502.
type fanout struct {
	srv    *http.Server
	ln     net.Listener
	client *http.Client

	mu        sync.Mutex
	targets   []string
	rng       *rand.Rand
	forwarded int64
	failed    int64
}

func startFanout(seed int64) (*fanout, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: fan-out listen: %w", err)
	}
	f := &fanout{ln: ln, client: &http.Client{Timeout: 400 * time.Millisecond},
		rng: rand.New(rand.NewPCG(uint64(seed), 0x66616e))}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// url is the push URL to give the simulator.
func (f *fanout) url() string { return "http://" + f.ln.Addr().String() + "/callbacks/xportcn" }

// setTargets replaces the workers' admin URLs.
func (f *fanout) setTargets(urls []string) {
	f.mu.Lock()
	f.targets = append([]string(nil), urls...)
	f.mu.Unlock()
}

func (f *fanout) counts() (forwarded, failed int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forwarded, f.failed
}

func (f *fanout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	order := append([]string(nil), f.targets...)
	f.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	f.mu.Unlock()
	for _, t := range order {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, t+"/callbacks/xportcn", bytes.NewReader(body))
		if err != nil {
			continue
		}
		req.Header = r.Header.Clone()
		resp, err := f.client.Do(req)
		if err != nil {
			continue
		}
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		f.mu.Lock()
		f.forwarded++
		f.mu.Unlock()
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
		return
	}
	f.mu.Lock()
	f.failed++
	f.mu.Unlock()
	http.Error(w, "no worker answered", http.StatusBadGateway)
}

func (f *fanout) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = f.srv.Close()
	}
	_ = f.srv.Close()
}
