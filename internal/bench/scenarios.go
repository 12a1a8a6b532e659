package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/gate"
	"orderflow/internal/pipeline"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
	"orderflow/ratelimit"
	"orderflow/tasks"
)

// The asynq latency knobs app.Run sets by default (TASK_CHECK_INTERVAL,
// DELAYED_TASK_CHECK_INTERVAL), used by every in-process worker and
// baseline server so that the comparisons are like for like.
const (
	taskCheckInterval        = app.DefaultTaskCheckInterval
	delayedTaskCheckInterval = app.DefaultDelayedTaskCheckInterval
)

// warmup is how long a scenario runs before its window opens.
const warmup = 3 * time.Second

func clients(s *sim.Sim) (providers.Provider, providers.Provider, error) {
	x, err := xportcn.New(xportcn.Config{BaseURL: s.XportcnURL(), AccessKey: "sim-ak", AccessSecret: "sim-secret-x",
		UserID: "sim-user", Timeout: 5 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	d, err := depal.New(depal.Config{BaseURL: s.DepalURL(), AppKey: "simapp", AppSecret: "sim-secret-d", Timeout: 5 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	return x, d, nil
}

// startWorker starts an in-process worker on the bench's Redis.
func (e *env) startWorker(ps map[string]providers.Provider, obs pipeline.Observer, poll []time.Duration) (*app.Worker, error) {
	return e.startWorkerOn(nil, nil, ps, obs, poll)
}

// startWorkerOn starts an in-process worker on client (nil: its own), with
// hooks.
func (e *env) startWorkerOn(client redis.UniversalClient, hooks []redis.Hook, ps map[string]providers.Provider, obs pipeline.Observer, poll []time.Duration) (*app.Worker, error) {
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: e.addr},
		Client:                   client,
		RedisHooks:               hooks,
		Providers:                ps,
		PollSchedule:             poll,
		TaskCheckInterval:        taskCheckInterval,
		DelayedTaskCheckInterval: delayedTaskCheckInterval,
		ShutdownTimeout:          3 * time.Second,
		Observer:                 obs,
	})
	if err != nil {
		return nil, err
	}
	return w, w.Start()
}

// measureQuota samples the provider's request count across the window,
// after the warm-up.
func (e *env) measureQuota(ctx context.Context, s *sim.Sim, label string) (QuotaResult, error) {
	select {
	case <-ctx.Done():
		return QuotaResult{}, ctx.Err()
	case <-time.After(warmup):
	}
	c1, t1 := s.Counters(), time.Now()
	select {
	case <-ctx.Done():
		return QuotaResult{}, ctx.Err()
	case <-time.After(e.opt.Window):
	}
	c2, t2 := s.Counters(), time.Now()
	sum := func(c sim.Counters) int64 {
		var n int64
		for _, v := range c.Requests[providers.Xportcn] {
			n += v
		}
		return n
	}
	n := sum(c2) - sum(c1)
	viol := c2.QuotaViolations[providers.Xportcn] - c1.QuotaViolations[providers.Xportcn]
	secs := t2.Sub(t1).Seconds()
	r := QuotaResult{
		Workers:    label,
		Window:     t2.Sub(t1).Round(10 * time.Millisecond),
		Requests:   n,
		PerSecond:  float64(n) / secs,
		Use:        float64(n) / secs / e.opt.Quota,
		Accepted:   float64(n-viol) / secs / e.opt.Quota,
		Violations: c2.QuotaViolations[providers.Xportcn],
	}
	e.log.Info("quota use", "workers", label, "requests", n, "violations", r.Violations, "use", r.Use)
	return r, nil
}

// quotaOrders is enough Xportcn orders to keep the quota busy through the
// window (about 7 calls each).
func (e *env) quotaOrders(prefix string) []providers.OrderRequest {
	n := int(e.opt.Quota*(e.opt.Window+warmup).Seconds()/5) + 50
	return normalOrders(prefix, providers.Xportcn, n)
}

func (e *env) quotaSim() (*sim.Sim, error) {
	return startSim(sim.Config{Quota: map[string]sim.Quota{
		providers.Xportcn: {Rate: e.opt.Quota, Burst: e.opt.QuotaBurst}}})
}

// quotaFleet: worker processes (cmd/worker, Redis GCRA) sharing the quota.
func (e *env) quotaFleet(ctx context.Context, rep *Report) error {
	bin, err := e.workerBinary(ctx)
	if err != nil {
		return err
	}
	s, err := e.quotaSim()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := e.submit(ctx, e.quotaOrders("qf")); err != nil {
		return err
	}
	envv := []string{
		"REDIS_URL=" + e.redisURL(),
		"XPORTCN_BASE_URL=" + s.XportcnURL(), "XPORTCN_ACCESS_KEY=sim-ak",
		"XPORTCN_ACCESS_SECRET=sim-secret-x", "XPORTCN_USER_ID=sim-user",
		fmt.Sprintf("XPORTCN_RATE=%g", e.opt.Quota),
		// ratelimit.Headroom: room for network jitter between Redis
		// granting and the provider counting (BENCHMARKS.md).
		fmt.Sprintf("XPORTCN_BURST=%d", ratelimit.Headroom(ratelimit.Quota{Rate: e.opt.Quota, Burst: e.opt.QuotaBurst}).Burst),
		"POLL_SCHEDULE=300ms,600ms,1s", "TEST_TIMINGS=1",
		"ADMIN_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
	}
	var procs []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop() }()
		}
		wg.Wait()
	}()
	for i := 0; i < e.opt.Processes; i++ {
		p, err := e.startProcess(bin, fmt.Sprintf("worker-%d", i+1), envv)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	r, err := e.measureQuota(ctx, s, fmt.Sprintf("%d worker processes, Redis GCRA", e.opt.Processes))
	if err != nil {
		return err
	}
	if r.Requests == 0 {
		return fmt.Errorf("no request reached the simulator; worker-1 log:\n%s", procs[0].tail())
	}
	rep.Quota = r
	return nil
}

// quotaLocal: the baseline, in-process workers each with its own
// x/time/rate limiter at the full quota (what RATE_LIMITER=local would do).
func (e *env) quotaLocal(ctx context.Context, rep *Report) error {
	s, err := e.quotaSim()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := e.submit(ctx, e.quotaOrders("ql")); err != nil {
		return err
	}
	var ws []*app.Worker
	defer func() { shutdownAll(ws) }()
	for i := 0; i < e.opt.Processes; i++ {
		x, _, err := clients(s)
		if err != nil {
			return err
		}
		lim := ratelimit.NewLocal(map[string]ratelimit.Quota{providers.Xportcn: {Rate: e.opt.Quota, Burst: e.opt.QuotaBurst}})
		w, err := e.startWorker(map[string]providers.Provider{providers.Xportcn: gate.Wrap(x, gate.Config{Limiter: lim})},
			nil, []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, time.Second})
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	r, err := e.measureQuota(ctx, s, fmt.Sprintf("baseline: %d workers, x/time/rate each", e.opt.Processes))
	if err != nil {
		return err
	}
	rep.BaselineQuota = r
	return nil
}

func shutdownAll(ws []*app.Worker) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.Shutdown() }()
	}
	wg.Wait()
}

// taskCounter is a pipeline.Observer counting processed tasks by type and
// orders reaching created by provider.
type taskCounter struct {
	preview, create, poll atomic.Int64 // poll: order polls and parcel traces
	xCreated              atomic.Int64
	dCreated              atomic.Int64
	completed             atomic.Int64
}

func (c *taskCounter) TaskProcessed(taskType, _ string, _ time.Duration) {
	switch taskType {
	case tasks.TypePreview:
		c.preview.Add(1)
	case tasks.TypeCreate:
		c.create.Add(1)
	case tasks.TypePoll, tasks.TypeTrack: // a poll run: of the order, or of its parcel
		c.poll.Add(1)
	}
}

// StepRepaired implements pipeline.Observer.
func (c *taskCounter) StepRepaired(string, string) {}

func (c *taskCounter) OrderTransition(provider, _, to string) {
	if to == string(providers.StateCompleted) {
		c.completed.Add(1)
	}
	if to != string(providers.StateCreated) {
		return
	}
	if provider == providers.Depal {
		c.dCreated.Add(1)
	} else {
		c.xCreated.Add(1)
	}
}

// overheadOrders per provider.
const overheadOrders = 1500

// overhead: preview+create steps/s through the real handlers (unlimited,
// zero-latency simulator, polls pushed out of the way) against no-op
// handlers on the same Redis with the same servers.
func (e *env) overhead(ctx context.Context, rep *Report) error {
	s, err := startSim(sim.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	reqs := append(normalOrders("ov", providers.Xportcn, overheadOrders), normalOrders("ov", providers.Depal, overheadOrders)...)
	if err := e.submit(ctx, reqs); err != nil {
		return err
	}
	x, d, err := clients(s)
	if err != nil {
		return err
	}
	cnt := &taskCounter{}
	start := time.Now()
	w, err := e.startWorker(map[string]providers.Provider{
		providers.Xportcn: gate.Wrap(x, gate.Config{}), providers.Depal: gate.Wrap(d, gate.Config{})},
		cnt, []time.Duration{time.Hour})
	if err != nil {
		return err
	}
	// Two steps per order, preview and create, whether they ran in one
	// task (createInline) or in two: the no-op baseline runs two tasks
	// per order.
	want := int64(2 * len(reqs))
	created := func() int64 { return cnt.xCreated.Load() + cnt.dCreated.Load() }
	err = testkit.Poll(ctx, 2*time.Minute, func() bool { return created() >= int64(len(reqs)) })
	elapsed := time.Since(start)
	w.Shutdown()
	if err != nil {
		return fmt.Errorf("real handlers: %d of %d orders created: %w", created(), len(reqs), err)
	}
	rep.PipelineTPS = float64(want) / elapsed.Seconds()
	e.log.Info("overhead tasks", "preview", cnt.preview.Load(), "create", cnt.create.Load(), "orders", len(reqs))

	// Baseline: the same number of tasks, already enqueued in the same
	// queues (half preview, half create), through no-op handlers on the
	// servers app.New runs (noopServers).
	if err := e.flush(ctx); err != nil {
		return err
	}
	client := asynq.NewClientFromRedisClient(e.rdb)
	for i := int64(0); i < want; i++ {
		p := providers.Names[i%2]
		kind := tasks.KindPreview
		if i%4 >= 2 {
			kind = tasks.KindCreate
		}
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", nil), asynq.Queue(tasks.Queue(p, kind))); err != nil {
			return err
		}
	}
	var done atomic.Int64
	start = time.Now()
	stop, err := e.noopServers(func(context.Context, *asynq.Task) error { done.Add(1); return nil })
	if err != nil {
		return err
	}
	err = testkit.Poll(ctx, 2*time.Minute, func() bool { return done.Load() >= want })
	elapsed = time.Since(start)
	stop()
	if err != nil {
		return fmt.Errorf("no-op handlers: %d of %d tasks: %w", done.Load(), want, err)
	}
	rep.NoopTPS = float64(want) / elapsed.Seconds()
	e.log.Info("overhead", "pipeline_tps", rep.PipelineTPS, "noop_tps", rep.NoopTPS)
	return nil
}

// noopServers starts the asynq servers app.New starts for each provider
// (an intake server and one for the orders under way, the slots split
// between them), plain asynq without the wake-up of announced tasks,
// running fn for every task.
func (e *env) noopServers(fn asynq.HandlerFunc) (func(), error) {
	var srvs []*asynq.Server
	type server struct {
		queues map[string]int
		check  time.Duration
	}
	var all []server
	for _, p := range providers.Names {
		all = append(all, server{map[string]int{pipeline.IntakeQueue(p): 1}, taskCheckInterval},
			server{pipeline.FollowQueues(p), max(taskCheckInterval, 200*time.Millisecond)})
	}
	for _, sv := range all {
		srv := asynq.NewServer(asynq.RedisClientOpt{Addr: e.addr}, asynq.Config{
			Concurrency:              10,
			Queues:                   sv.queues,
			TaskCheckInterval:        sv.check,
			DelayedTaskCheckInterval: delayedTaskCheckInterval,
			ShutdownTimeout:          3 * time.Second,
			LogLevel:                 asynq.ErrorLevel,
		})
		if err := srv.Start(fn); err != nil {
			for _, s := range srvs {
				s.Shutdown()
			}
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	return func() {
		for _, s := range srvs {
			s.Shutdown()
		}
	}, nil
}

// stamp wraps a client and reports the first Preview of each order.
type stamp struct {
	providers.Provider
	first chan<- string
}

func (s stamp) Preview(ctx context.Context, req *providers.OrderRequest) (*providers.Quote, error) {
	select {
	case s.first <- req.OutOrderID:
	default:
	}
	return s.Provider.Preview(ctx, req)
}

// latencySamples is the number of orders submitted one at a time.
const latencySamples = 100

// latency: submit -> first provider call on an idle worker (the Redis
// limiter in place), against enqueue -> no-op handler start.
func (e *env) latency(ctx context.Context, rep *Report) error {
	s, err := startSim(sim.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	x, _, err := clients(s)
	if err != nil {
		return err
	}
	first := make(chan string, 1)
	lim := ratelimit.NewRedis(e.rdb, map[string]ratelimit.Quota{providers.Xportcn: {Rate: e.opt.Quota, Burst: e.opt.QuotaBurst}})
	w, err := e.startWorker(map[string]providers.Provider{
		providers.Xportcn: gate.Wrap(stamp{x, first}, gate.Config{Limiter: lim})}, nil, []time.Duration{time.Hour})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Shutdown()
		}
	}()
	reqs := normalOrders("lat", providers.Xportcn, latencySamples)
	rng := rand.New(rand.NewPCG(1, 2))
	var got []time.Duration
	for _, r := range reqs {
		time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond)))) // idle, at a random phase
		t0 := time.Now()
		if err := e.submit(ctx, []providers.OrderRequest{r}); err != nil {
			return err
		}
		select {
		case id := <-first:
			if id != r.OutOrderID {
				return fmt.Errorf("first call for %s, want %s", id, r.OutOrderID)
			}
			got = append(got, time.Since(t0))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no provider call for %s within 10s", r.OutOrderID)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rep.Latency = percentiles(got)
	w.Shutdown() // the baseline's tasks go to the same queue
	stopped = true
	if err := e.flush(ctx); err != nil {
		return err
	}

	// Baseline: asynq's own enqueue -> handler latency with the same knobs.
	started := make(chan struct{}, 1)
	stop, err := e.noopServers(func(context.Context, *asynq.Task) error {
		select {
		case started <- struct{}{}:
		default:
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer stop()
	client := asynq.NewClientFromRedisClient(e.rdb)
	got = got[:0]
	for i := 0; i < latencySamples; i++ {
		time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond))))
		t0 := time.Now()
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", nil),
			asynq.Queue(tasks.Queue(providers.Xportcn, tasks.KindPreview))); err != nil {
			return err
		}
		select {
		case <-started:
			got = append(got, time.Since(t0))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no-op task %d not started within 10s", i)
		}
	}
	rep.NoopLatency = percentiles(got)
	e.log.Debug("latency samples", "noop", got)
	return nil
}

func percentiles(ds []time.Duration) Percentiles {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Percentiles{N: len(s), P50: at(0.50), P99: at(0.99)}
}

// isolationOrders per provider.
const isolationOrders = 1000

// isolation: Depal orders created/s while Xportcn answers 503 to
// everything, against both up. The simulator answers after 20 ms, so
// worker slots matter.
func (e *env) isolation(ctx context.Context, rep *Report) error {
	run := func(prefix string, xDown bool) (float64, error) {
		if err := e.flush(ctx); err != nil {
			return 0, err
		}
		s, err := startSim(sim.Config{Latency: 20 * time.Millisecond})
		if err != nil {
			return 0, err
		}
		defer s.Close()
		s.SetDown(providers.Xportcn, xDown)
		reqs := append(normalOrders(prefix, providers.Xportcn, isolationOrders), normalOrders(prefix, providers.Depal, isolationOrders)...)
		if err := e.submit(ctx, reqs); err != nil {
			return 0, err
		}
		x, d, err := clients(s)
		if err != nil {
			return 0, err
		}
		g := gate.Config{Breaker: gate.BreakerSettings{ConsecutiveFailures: 5, OpenTimeout: time.Second}}
		cnt := &taskCounter{}
		start := time.Now()
		w, err := e.startWorker(map[string]providers.Provider{
			providers.Xportcn: gate.Wrap(x, g), providers.Depal: gate.Wrap(d, g)}, cnt, []time.Duration{time.Hour})
		if err != nil {
			return 0, err
		}
		defer w.Shutdown()
		if err := testkit.Poll(ctx, 2*time.Minute, func() bool { return cnt.dCreated.Load() >= isolationOrders }); err != nil {
			return 0, fmt.Errorf("depal: %d of %d created: %w", cnt.dCreated.Load(), isolationOrders, err)
		}
		ops := float64(isolationOrders) / time.Since(start).Seconds()
		e.log.Info("isolation", "xportcn_down", xDown, "depal_orders_per_s", ops,
			"xportcn_created", cnt.xCreated.Load(), "xportcn_requests", s.Counters().RequestsTo(providers.Xportcn))
		return ops, nil
	}
	var err error
	if rep.BothUpOPS, err = run("iu", false); err != nil {
		return err
	}
	if rep.IsolatedOPS, err = run("id", true); err != nil {
		return err
	}
	return nil
}
