// Package app wires orderflow's worker: one asynq server per provider (its
// own queues and worker slots: a bulkhead), the pipeline handlers, the
// provider clients behind their gates, and the admin HTTP listener. The
// worker command only turns settings into a Config and calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/coalesce"
	"orderflow/internal/intake"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/wake"
	"orderflow/providers"
	"orderflow/tasks"
)

// Config is a worker's wiring. Zero values take the documented defaults.
type Config struct {
	// Redis is the connection (asynq.ParseRedisURI of REDIS_URL). Required.
	Redis asynq.RedisConnOpt
	// Client, when set, is the go-redis client to run on instead of one
	// made from Redis: the client the providers' Redis limiter uses, so
	// that quota takes share round trips with the worker's own commands
	// (package coalesce). The worker adds its hooks and retries to it,
	// and closes it at Shutdown.
	Client redis.UniversalClient
	// RedisHooks are go-redis hooks added to the worker's client after its
	// own (package wake's), so that they see what is sent to Redis (the
	// bench counts round trips with one).
	RedisHooks []redis.Hook
	// Providers are the providers this worker serves, already gated
	// (rate limit, breaker). At least one.
	Providers map[string]providers.Provider
	// Concurrency is the worker slots per provider; absent or zero: 20.
	Concurrency map[string]int
	// PollSchedule, Deadline, SettleWindow: see pipeline.Config.
	PollSchedule []time.Duration
	SettleWindow time.Duration
	// QuoteMaxAge is QUOTE_MAX_AGE: see pipeline.Config.
	QuoteMaxAge time.Duration
	// RetryBackoffMax is RETRY_BACKOFF_MAX: the longest wait between two
	// runs of a failing order step (pipeline.RetryDelayUpTo; callback
	// deliveries keep 5 min); zero: 5 min.
	RetryBackoffMax time.Duration
	Deadline        time.Duration
	// Retention is how long ended orders are kept; zero: 720h.
	Retention time.Duration
	// EventsMaxLen trims the orderflow:events stream to about this many
	// entries; zero: 1,000,000.
	EventsMaxLen int64
	// CallbackSecret signs callbacks (CALLBACK_SECRET).
	CallbackSecret string
	// CallbackAllowPrivate (CALLBACK_ALLOW_PRIVATE) lets callbacks, and
	// the callbackUrl of orders submitted through POST /v1/orders, target
	// loopback and private addresses.
	CallbackAllowPrivate bool
	// NotifyConcurrency is the worker slots for callback deliveries; zero: 10.
	NotifyConcurrency int
	// TaskCheckInterval and DelayedTaskCheckInterval are asynq's latency
	// knobs; zero: 200ms and 1s. TaskCheckInterval is the intake servers'
	// (the pause between two waits for an announced task); the other
	// servers look every FollowCheckInterval, or TaskCheckInterval when
	// longer.
	TaskCheckInterval        time.Duration
	DelayedTaskCheckInterval time.Duration
	// FollowCheckInterval is how often the servers that are not intake
	// servers look at their empty queues at most; zero: 200ms (test rigs
	// that move orders in a fraction of a second set less).
	FollowCheckInterval time.Duration
	// SweepInterval is how often the worker looks for orders past their
	// deadline; zero: 30s.
	SweepInterval time.Duration
	// ShutdownTimeout is how long a drain waits for running tasks (then
	// they return to their queues); zero: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Observer is told of tasks and transitions (the metrics); nil: none.
	Observer pipeline.Observer
	// Logger; nil: discard.
	Logger *slog.Logger
}

// DefaultShutdownTimeout is the drain when SHUTDOWN_TIMEOUT is unset (and
// when Config.ShutdownTimeout is zero): above tasks.Timeout, so a running
// provider call can finish. The servers drain at the same time, so a
// whole drain is this once, plus AdminCloseTimeout in Run.
const DefaultShutdownTimeout = 135 * time.Second

// Worker is a running (or ready to run) worker.
type Worker struct {
	cfg Config
	log *slog.Logger
	rdb redis.UniversalClient
	// probeRDB sends the readiness probe: one attempt, so the probe says
	// what Redis answers (READONLY, OOM) rather than waiting out rdb's
	// retries.
	probeRDB redis.UniversalClient
	client   *asynq.Client
	insp     *asynq.Inspector
	store    *orders.Store
	handlers *pipeline.Handlers
	servers  map[string]*asynq.Server
	waker    *wake.Waker
	fin      *orders.Finisher
	// batchRDB sends the coalesced batches (nil: no coalescing).
	batchRDB *redis.Client
	started  atomic.Bool
	// stopSweeps ends the deadline sweep Start began.
	stopSweeps context.CancelFunc
	// probe is Ready's last write probe.
	probe struct {
		sync.Mutex
		at  time.Time
		err error
	}
}

// New builds a worker from cfg; nothing runs until Start.
func New(cfg Config) (*Worker, error) {
	if cfg.Redis == nil {
		return nil, errors.New("app: Config.Redis is required")
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("app: Config.Providers needs at least one provider")
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 30 * time.Second
	}
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = 200 * time.Millisecond
	}
	if cfg.DelayedTaskCheckInterval <= 0 {
		cfg.DelayedTaskCheckInterval = time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rdb := cfg.Client
	if rdb == nil {
		var ok bool
		if rdb, ok = cfg.Redis.MakeRedisClient().(redis.UniversalClient); !ok {
			return nil, errors.New("app: Config.Redis does not make a go-redis client")
		}
	}
	probeRDB := singleAttempt(rdb)
	rideOut(rdb)
	fin := orders.NewFinisher()
	w := &Worker{
		probeRDB: probeRDB,
		cfg:      cfg,
		log:      log,
		rdb:      rdb,
		client:   asynq.NewClientFromRedisClient(rdb),
		insp:     asynq.NewInspectorFromRedisClient(rdb),
		store:    orders.NewStore(rdb, orders.Config{Retention: cfg.Retention, StreamMaxLen: cfg.EventsMaxLen, Finisher: fin}),
		servers:  map[string]*asynq.Server{},
		fin:      fin,
	}
	h, err := pipeline.New(pipeline.Config{
		Store:          w.store,
		Providers:      cfg.Providers,
		Enqueuer:       w.client,
		Inspector:      w.insp,
		PollSchedule:   cfg.PollSchedule,
		SettleWindow:   cfg.SettleWindow,
		QuoteMaxAge:    cfg.QuoteMaxAge,
		Deadline:       cfg.Deadline,
		CallbackSecret: cfg.CallbackSecret,
		HTTPClient:     pipeline.CallbackClient(cfg.CallbackAllowPrivate, callbackTimeout),
		Observer:       cfg.Observer,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	w.handlers = h
	// The intake servers (one queue each) wait for announced tasks
	// instead of looking every TaskCheckInterval (package wake); the
	// others look at the slower FollowCheckInterval.
	var intake, quiet []string
	for _, name := range w.ProviderNames() {
		intake = append(intake, pipeline.IntakeQueue(name))
		quiet = append(quiet, tasks.Queue(name, tasks.KindCreate))
	}
	w.waker = wake.New(intake, IntakeWait)
	// A follow server's create queue (create retries, cancels, decisions)
	// is empty most of the time: asked a few times a second, not before
	// most polls.
	w.waker.SkipEmpty(quiet, QuietSkip)
	rdb.AddHook(w.waker)
	// A poll run's write completes its task: asynq's own completion is
	// answered here.
	rdb.AddHook(fin)
	// Commands issued together share a round trip; the batches go on a
	// client that tries each once (package coalesce retries a batch's
	// failed commands one by one). A client of another kind (Cluster)
	// sends every command alone.
	if w.batchRDB = tryOnce(rdb); w.batchRDB != nil {
		rdb.AddHook(coalesce.New(w.batchRDB, coalesceFlights))
	}
	for _, hk := range cfg.RedisHooks {
		rdb.AddHook(hk)
		if w.batchRDB != nil {
			w.batchRDB.AddHook(hk)
		}
	}
	if cfg.FollowCheckInterval <= 0 {
		cfg.FollowCheckInterval = followCheckInterval
	}
	follow := max(cfg.TaskCheckInterval, cfg.FollowCheckInterval)
	// Due retries of previews and callbacks wait a second at most for the
	// forwarder (their backoff is a second or more); due polls and create
	// retries DelayedTaskCheckInterval.
	slowForward := max(cfg.DelayedTaskCheckInterval, time.Second)
	// Order steps back off up to RETRY_BACKOFF_MAX; callback deliveries
	// keep their own schedule (30 retries over about two hours).
	stepRetry := pipeline.RetryDelayUpTo(cfg.RetryBackoffMax)
	server := func(conc int, queues map[string]int, check, forward time.Duration, retry asynq.RetryDelayFunc, l *slog.Logger) *asynq.Server {
		return asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency:              conc,
			Queues:                   queues,
			IsFailure:                pipeline.IsFailure,
			RetryDelayFunc:           retry,
			TaskCheckInterval:        check,
			DelayedTaskCheckInterval: forward,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			Logger:                   asynqLogger{l},
			LogLevel:                 asynq.WarnLevel,
		})
	}
	for _, name := range w.ProviderNames() {
		conc := cfg.Concurrency[name]
		if conc <= 0 {
			conc = 20
		}
		in, on := splitSlots(conc)
		l := log.With("component", "asynq", "provider", name)
		w.servers[name+intakeSuffix] = server(in, map[string]int{pipeline.IntakeQueue(name): 1}, cfg.TaskCheckInterval, slowForward, stepRetry, l)
		w.servers[name] = server(on, pipeline.FollowQueues(name), follow, cfg.DelayedTaskCheckInterval, stepRetry, l)
	}
	conc := cfg.NotifyConcurrency
	if conc <= 0 {
		conc = 10
	}
	w.servers[notifyServer] = server(conc, map[string]int{tasks.QueueNotify: 1}, follow, slowForward, pipeline.RetryDelay,
		log.With("component", "asynq", "queue", tasks.QueueNotify))
	return w, nil
}

// coalesceFlights is how many commands (or batches) the worker's client
// has in flight at once before the next ones wait to go together (package
// coalesce): one, the most sharing; Redis runs one command at a time
// anyway.
const coalesceFlights = 1

// IntakeWait is how long an intake server's empty look waits for an
// announced task (package wake) before it looks again: the most a task
// nobody announced (a Go producer's that does not call wake.Announce, a
// deferred preview coming due in another pod) waits for an idle worker.
const IntakeWait = time.Second

// QuietSkip is how long a follow server's create queue, found empty, is
// taken to stay empty unless a task is announced for it (package wake):
// the most a create retry, cancel or decision nobody announced waits for
// an idle worker, beyond the check interval.
const QuietSkip = 500 * time.Millisecond

// followCheckInterval is FollowCheckInterval's default, the least
// TaskCheckInterval of the servers that are not intake servers: their
// tasks (polls, retries, cancels, decisions, callbacks) are scheduled or
// come after a step, and a fifth of a second more costs nobody, while
// every idle look costs Redis a round trip per queue per pod.
const followCheckInterval = 200 * time.Millisecond

// intakeSuffix names a provider's intake server among w.servers.
const intakeSuffix = "/intake"

// splitSlots splits a provider's worker slots between its intake server
// (new orders: preview and create) and the server of the orders already
// under way (polls, tracking, cancels, create retries): half each, at
// least one each.
func splitSlots(conc int) (intake, follow int) {
	intake = max(conc/2, 1)
	return intake, max(conc-intake, 1)
}

// callbackTimeout bounds one callback delivery.
const callbackTimeout = 10 * time.Second

// notifyServer names the server of callback deliveries among w.servers.
const notifyServer = "notify"

// Retries of a Redis command that failed on the connection: about 9 s of
// them, enough to ride out a Sentinel failover or a short outage. asynq
// retries a task's completion write (done, retry) with a context it has
// already cancelled, so a write that fails once leaves the task active
// until asynq's lease recovery (a minute or two); retried here, it lands.
const (
	redisMaxRetries      = 20
	redisMinRetryBackoff = 50 * time.Millisecond
	redisMaxRetryBackoff = 500 * time.Millisecond
)

// rideOut sets the retries of the worker's Redis client (before its first
// command). A caller's cancelled context still ends a command at once.
func rideOut(rdb redis.UniversalClient) {
	var o *redis.Options
	switch c := rdb.(type) {
	case *redis.Client:
		o = c.Options()
	default:
		return
	}
	o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff = redisMaxRetries, redisMinRetryBackoff, redisMaxRetryBackoff
}

// singleAttempt returns a small client like rdb's (the same dialer, so a
// Sentinel client's follows the failover) that tries each command once;
// rdb itself for clients of another kind.
func singleAttempt(rdb redis.UniversalClient) redis.UniversalClient {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return rdb
	}
	o := twinOptions(c)
	o.MaxRetries, o.PoolSize, o.MinIdleConns = -1, 2, 0
	return redis.NewClient(&o)
}

// tryOnce returns a client like rdb's (the same dialer and pool size) that
// tries each command once, or nil for a client of another kind.
func tryOnce(rdb redis.UniversalClient) *redis.Client {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil
	}
	o := twinOptions(c)
	o.MaxRetries = -1
	return redis.NewClient(&o)
}

// twinOptions are c's options for another client of the same server. The
// copy gets its own push-notification processor: go-redis keeps the first
// client's in its options, and a second client registering its handlers on
// it fails ("failed to initialize maintnotifications" on standard error at
// every start; a panic where those notifications are required).
func twinOptions(c *redis.Client) redis.Options {
	o := *c.Options()
	o.PushNotificationProcessor = nil
	if m := o.MaintNotificationsConfig; m != nil {
		cp := *m
		o.MaintNotificationsConfig = &cp
	}
	return o
}

// ProviderNames lists the providers served, sorted.
func (w *Worker) ProviderNames() []string {
	names := make([]string, 0, len(w.cfg.Providers))
	for n := range w.cfg.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Store is the order store.
func (w *Worker) Store() *orders.Store { return w.store }

// Client is the asynq client (for producers in the same process).
func (w *Worker) Client() *asynq.Client { return w.client }

// Inspector is the asynq inspector.
func (w *Worker) Inspector() *asynq.Inspector { return w.insp }

// Handlers are the pipeline's handlers (decisions included).
func (w *Worker) Handlers() *pipeline.Handlers { return w.handlers }

// Providers are the (gated) clients of the providers served; callers must
// not change the map.
func (w *Worker) Providers() map[string]providers.Provider { return w.cfg.Providers }

// CallbackPolicy is what submissions through this worker allow.
func (w *Worker) CallbackPolicy() intake.Policy {
	return intake.Policy{AllowPrivateCallbacks: w.cfg.CallbackAllowPrivate}
}

// Redis is the go-redis client.
func (w *Worker) Redis() redis.UniversalClient { return w.rdb }

// FinishedByWrites is how many tasks' runs were completed by their last
// record write so far (orders.Finisher): asynq's own completion of each
// was answered without a round trip.
func (w *Worker) FinishedByWrites() int64 { return w.fin.Elided() }

// Start starts every server.
func (w *Worker) Start() error {
	ctx := context.Background()
	if err := w.waker.Start(ctx, w.rdb); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	names := make([]string, 0, len(w.servers))
	for name := range w.servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := w.servers[name].Start(w.handlers); err != nil {
			w.Shutdown()
			return fmt.Errorf("app: start %s server: %w", name, err)
		}
	}
	for _, name := range w.ProviderNames() {
		w.log.Info("serving provider", "provider", name, "queues", pipeline.Queues(name))
	}
	ctx, cancel := context.WithCancel(ctx)
	w.stopSweeps = cancel
	go w.handlers.RunSweeps(ctx, w.cfg.SweepInterval)
	w.started.Store(true)
	return nil
}

// ReadyProbeInterval is how often Ready writes to Redis at most; between
// probes it answers the last probe's result.
const ReadyProbeInterval = time.Second

// probeKey is the key the readiness probe and the start-up check write
// (SET PX probeTTL): a Redis that refuses writes (OOM under noeviction, a
// read-only replica) fails it as it would fail every task.
const (
	probeKey = "orderflow:probe"
	probeTTL = 10 * time.Second
)

// writeProbe writes probeKey.
func writeProbe(ctx context.Context, rdb redis.UniversalClient) error {
	return rdb.Set(ctx, probeKey, "1", probeTTL).Err()
}

// Ready reports whether the servers run and Redis takes a write (at most
// one probe per ReadyProbeInterval; callers in between share its result).
func (w *Worker) Ready(ctx context.Context) error {
	if !w.started.Load() {
		return errors.New("servers not started")
	}
	w.probe.Lock()
	defer w.probe.Unlock()
	if !w.probe.at.IsZero() && time.Since(w.probe.at) < ReadyProbeInterval {
		return w.probe.err
	}
	err := writeProbe(ctx, w.probeRDB)
	if err != nil {
		err = fmt.Errorf("redis write probe (SET %s PX) failed: %w", probeKey, err)
	}
	w.probe.at, w.probe.err = time.Now(), err
	return err
}

// Shutdown drains: no new tasks start, running ones get ShutdownTimeout
// to finish (then return to the queue), and the connections close. The
// servers drain at the same time, so the whole drain takes at most one
// ShutdownTimeout however many providers are served; the connections
// close only after every server has stopped.
func (w *Worker) Shutdown() {
	w.started.Store(false)
	if w.stopSweeps != nil {
		w.stopSweeps()
	}
	w.waker.Close() // no look waits for an announcement any more
	var wg sync.WaitGroup
	for _, s := range w.servers {
		wg.Go(s.Shutdown)
	}
	wg.Wait()
	_ = w.client.Close()
	_ = w.insp.Close()
	if w.probeRDB != w.rdb {
		_ = w.probeRDB.Close()
	}
	if w.batchRDB != nil {
		_ = w.batchRDB.Close()
	}
	_ = w.rdb.Close()
}

// asynqLogger routes asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
