// Package bench measures orderflow against a real redis-server and the
// provider simulator, each figure as a ratio against a baseline measured in
// the same run: quota use of a fleet of worker processes (Redis GCRA)
// against per-process x/time/rate limiters, pipeline overhead against no-op
// asynq handlers, submit-to-first-call latency against asynq's own
// enqueue-to-handler latency, and one provider's throughput while the other
// is down against both up. cmd/bench runs it (make bench).
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redisproc"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/providers/sim"
)

// Options configure a run. Zero values take the documented defaults.
type Options struct {
	// Quota is the provider quota of the quota-use scenario in requests per
	// second; zero: 50.
	Quota float64
	// QuotaBurst is the provider's burst; zero: 10. The workers are
	// configured one below it (see BENCHMARKS.md: network jitter).
	QuotaBurst int
	// Window is the busy window measured in the quota-use scenario; zero:
	// 20s. Less than 20s is refused.
	Window time.Duration
	// Processes is the number of worker processes sharing the quota; zero: 3.
	Processes int
	// Only, when set, runs only the scenarios named in it (comma
	// separated: Scenarios); empty: all.
	Only string
	// Log receives progress; nil: discard.
	Log *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Quota == 0 {
		o.Quota = 50
	}
	if o.Quota < 0 {
		return o, fmt.Errorf("bench: Options.Quota is %v, must be positive", o.Quota)
	}
	if o.QuotaBurst == 0 {
		o.QuotaBurst = 10
	}
	if o.QuotaBurst < 2 {
		return o, fmt.Errorf("bench: Options.QuotaBurst is %d, must be at least 2", o.QuotaBurst)
	}
	if o.Window == 0 {
		o.Window = 20 * time.Second
	}
	if o.Window < 20*time.Second {
		return o, fmt.Errorf("bench: Options.Window is %v, must be at least 20s", o.Window)
	}
	if o.Processes == 0 {
		o.Processes = 3
	}
	if o.Only != "" {
		for _, k := range strings.Split(o.Only, ",") {
			if !slices.Contains(Scenarios, k) {
				return o, fmt.Errorf("bench: Options.Only: no scenario %q (have %s)", k, strings.Join(Scenarios, ","))
			}
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Report holds the figures of a run.
type Report struct {
	CPUs int
	// QuotaUse: the fleet (Redis GCRA, worker processes) and the baseline
	// (per-process x/time/rate at the full quota).
	Quota, BaselineQuota QuotaResult
	// Overhead: preview+create steps/s through the real handlers, and no-op
	// handlers' tasks/s on the same Redis.
	PipelineTPS, NoopTPS float64
	// Latency: submit to first provider call, and enqueue to no-op handler
	// start.
	Latency, NoopLatency Percentiles
	// Isolation: Depal orders created per second while Xportcn is down,
	// and with both up.
	IsolatedOPS, BothUpOPS float64
	// Memory per order: with the server's default hash-max-listpack-value
	// first, then with ListpackValue.
	Memory []MemoryResult
	// RoundTrips: Redis round trips, commands and CPU per step.
	RoundTrips *RoundTripResult
	// Idle: an idle worker pod at the default TASK_CHECK_INTERVAL first,
	// then at 100ms; IdleBaselineCPU is the redis-server's CPU (fraction
	// of a core) with no worker.
	Idle            []IdleResult
	IdleBaselineCPU float64
	// Ran holds the scenarios run (Scenarios' names).
	Ran     map[string]bool
	Elapsed time.Duration
}

// Scenarios are the scenario names Options.Only takes, in run order.
var Scenarios = []string{"quota", "overhead", "latency", "isolation", "memory", "roundtrips", "idle"}

// QuotaResult is one quota-use measurement.
type QuotaResult struct {
	Workers    string
	Window     time.Duration
	Requests   int64   // requests the provider saw in the window
	PerSecond  float64 // Requests per second
	Use        float64 // PerSecond / quota
	Accepted   float64 // requests within quota per second / quota
	Violations int64   // over-quota requests in the whole scenario
}

// Percentiles of a latency sample.
type Percentiles struct {
	N        int
	P50, P99 time.Duration
}

// Run runs every scenario and returns the figures.
func Run(ctx context.Context, opt Options) (*Report, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "orderflow-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rs, err := redisproc.Start(dir)
	if err != nil {
		return nil, err
	}
	defer rs.Stop()
	e := &env{opt: opt, dir: dir, addr: rs.Addr, log: opt.Log}
	e.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr, PoolSize: 50})
	defer e.rdb.Close()

	rep := &Report{CPUs: runtime.NumCPU(), Ran: map[string]bool{}}
	steps := []struct {
		key, name string
		fn        func(context.Context, *Report) error
	}{
		{"quota", "quota use (worker processes, Redis GCRA)", e.quotaFleet},
		{"quota", "quota use baseline (in-process, x/time/rate)", e.quotaLocal},
		{"overhead", "pipeline overhead", e.overhead},
		{"latency", "latency", e.latency},
		{"isolation", "isolation", e.isolation},
		{"memory", "memory per order", e.memory},
		{"roundtrips", "round trips per step", e.roundTrips},
		{"idle", "idle pod", e.idle},
	}
	for _, s := range steps {
		if opt.Only != "" && !slices.Contains(strings.Split(opt.Only, ","), s.key) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.log.Info("scenario", "name", s.name)
		if err := e.flush(ctx); err != nil {
			return nil, err
		}
		if err := s.fn(ctx, rep); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		rep.Ran[s.key] = true
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// env is what the scenarios share: one redis-server, flushed between them.
type env struct {
	opt  Options
	dir  string
	addr string
	rdb  *redis.Client
	log  *slog.Logger
	bin  string // the worker binary, built on first use
}

func (e *env) flush(ctx context.Context) error { return e.rdb.FlushAll(ctx).Err() }

func (e *env) redisURL() string { return "redis://" + e.addr }

// startSim starts a simulator on loopback.
func startSim(cfg sim.Config) (*sim.Sim, error) {
	if cfg.Clock == nil {
		cfg.Clock = sim.NewAccelClock(3600)
	}
	if cfg.Timeline == (sim.Timeline{}) {
		cfg.Timeline = testkit.FastTimeline
	}
	s, err := sim.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

// normalOrders plans n orders of provider (all ending completed) named
// prefix-NNNN.
func normalOrders(prefix, provider string, n int) []providers.OrderRequest {
	var out []providers.OrderRequest
	for _, p := range testkit.Batch(prefix, 4*n) {
		if len(out) == n {
			break
		}
		if p.Want != providers.StateCompleted {
			continue
		}
		p.Req.Provider = provider
		out = append(out, p.Req)
	}
	return out
}

// submit records and enqueues orders.
func (e *env) submit(ctx context.Context, reqs []providers.OrderRequest) error {
	return submitOn(ctx, e.rdb, reqs)
}

// submitOn records and enqueues orders through rdb.
func submitOn(ctx context.Context, rdb *redis.Client, reqs []providers.OrderRequest) error {
	st := orders.NewStore(rdb, orders.Config{})
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for _, r := range reqs {
		res, err := pipeline.Submit(ctx, st, client, insp, r)
		if err != nil {
			return err
		}
		if res.Outcome != pipeline.Accepted {
			return fmt.Errorf("submit %s: %s (%w)", r.OutOrderID, res.Outcome, res.Err)
		}
	}
	return nil
}

// workerBinary builds cmd/worker once.
func (e *env) workerBinary(ctx context.Context) (string, error) {
	if e.bin != "" {
		return e.bin, nil
	}
	bin, err := testkit.BuildWorkerInto(ctx, e.dir)
	if err != nil {
		return "", err
	}
	e.bin = bin
	return bin, nil
}

// proc is a worker process, stopped by its PID.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func (e *env) startProcess(bin, name string, envv []string) (*proc, error) {
	logPath := filepath.Join(e.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), envv...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	return p, nil
}

// stop sends SIGTERM, then kills after 5 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail is the end of the process's log, for an error.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
