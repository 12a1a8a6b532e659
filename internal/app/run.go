package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/gate"
	"orderflow/internal/metrics"
	"orderflow/internal/pipeline"
	"orderflow/internal/redact"
	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
	"orderflow/ratelimit"
	"orderflow/tasks"
)

// EmbeddedRedisAddr is where the embedded default's in-process Redis
// listens unless EMBEDDED_REDIS_ADDR says otherwise.
const EmbeddedRedisAddr = "127.0.0.1:6380"

// AdminCloseTimeout is how long Run gives the admin HTTP server to close
// after the asynq servers drained.
const AdminCloseTimeout = 5 * time.Second

// EmbeddedSpeed is how much faster than wall time the embedded
// simulator's clock runs: an hour of order life takes a second.
const EmbeddedSpeed = 3600

// embeddedPollSchedule is the embedded default's POLL_SCHEDULE.
var embeddedPollSchedule = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}

// embeddedDeadline is the embedded default's ORDER_DEADLINE: at its
// simulator's speed an order's life takes seconds, so the demo's orders
// that never end on their own (never paid, never shipped) meet their
// deadline within the demo.
const embeddedDeadline = 30 * time.Second

// embeddedSettleWindow is the embedded default's CREATE_SETTLE_WINDOW: its
// simulator commits and indexes at once.
const embeddedSettleWindow = time.Second

// Info describes a started worker, for the start-up announcement.
type Info struct {
	AdminURL string
	UIURL    string
	// ConsoleURL is the order console.
	ConsoleURL string
	RedisURL   string
	Embedded   bool
	Providers  []string
	// Sim is the embedded simulator, nil outside embedded mode.
	Sim *sim.Sim
}

// Run runs the worker until ctx ends, then drains. started, when set, is
// called once everything serves. A nil log discards.
func Run(ctx context.Context, s *Settings, log *slog.Logger, started func(Info)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		info    = Info{Embedded: s.Embedded()}
		cleanup []func()
	)
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	if err := s.Validate(); err != nil {
		return err
	}
	if s.TestTimings {
		log.Warn("TEST_TIMINGS=1: the floors of test rigs apply (polls, deadline, drain); not for production")
	}
	ln, err := net.Listen("tcp", s.AdminAddr)
	if err != nil {
		return fmt.Errorf("ADMIN_ADDR: %w", err)
	}
	cleanup = append(cleanup, func() { _ = ln.Close() })
	info.AdminURL = "http://" + ln.Addr().String()
	info.UIURL = info.AdminURL + "/monitoring/"
	info.ConsoleURL = info.AdminURL + "/console/"

	redisURL := s.RedisURL
	if info.Embedded {
		log.Warn("EMBEDDED DEFAULT: in-process Redis (miniredis) and a provider simulator. NOT FOR PRODUCTION: set REDIS_URL and the provider credentials.")
		if vars := s.providerVars(); len(vars) > 0 {
			log.Warn("EMBEDDED=1: the simulator replaces the provider settings given", "ignored", strings.Join(vars, ","))
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr(s.EmbeddedRedisAddr); err != nil {
			return fmt.Errorf("EMBEDDED_REDIS_ADDR: embedded Redis on %s: %w", s.EmbeddedRedisAddr, err)
		}
		cleanup = append(cleanup, m.Close)
		stopTick := tickTTLs(m)
		cleanup = append(cleanup, stopTick)
		redisURL = "redis://" + m.Addr()
		simulator, err := startSim(s, info.AdminURL+"/callbacks/xportcn", log)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, func() { _ = simulator.Close() })
		info.Sim = simulator
		if !s.PollScheduleSet {
			s.PollSchedule = embeddedPollSchedule
		}
		if !s.DeadlineSet {
			s.Deadline = embeddedDeadline
		}
		if s.SettleWindow == 0 {
			s.SettleWindow = embeddedSettleWindow
		}
	}
	info.RedisURL = redact.URL(redisURL)
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %v", redact.URLIn(err.Error(), redisURL))
	}
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return errors.New("REDIS_URL: unsupported connection type")
	}
	cleanup = append(cleanup, func() { _ = rdb.Close() })
	if err := checkRedis(ctx, rdb, opt); err != nil {
		return err
	}

	if s.CallbackSecret == "" {
		log.Warn("CALLBACK_SECRET is not set: callbacks to upstreams are sent unsigned")
	}
	m := metrics.New()
	ps, lim, err := buildProviders(s, rdb, m, log)
	if err != nil {
		return err
	}
	for _, p := range providers.Names {
		if _, ok := ps[p]; ok {
			info.Providers = append(info.Providers, p)
		} else {
			log.Warn("provider not served: no credentials; its orders wait in its queues until a worker serves it", "provider", p)
		}
	}
	w, err := New(Config{
		Redis:                    opt,
		Client:                   rdb, // the limiter's: their round trips coalesce
		Providers:                ps,
		Concurrency:              s.Concurrency,
		PollSchedule:             s.PollSchedule,
		SettleWindow:             s.SettleWindow,
		QuoteMaxAge:              s.QuoteMaxAge,
		RetryBackoffMax:          s.RetryBackoffMax,
		Deadline:                 s.Deadline,
		Retention:                s.Retention,
		EventsMaxLen:             int64(s.EventsMaxLen),
		CallbackSecret:           s.CallbackSecret,
		CallbackAllowPrivate:     s.CallbackAllowPrivate,
		NotifyConcurrency:        s.NotifyConcurrency,
		ShutdownTimeout:          s.ShutdownTimeout,
		SweepInterval:            sweepInterval(info.Embedded),
		TaskCheckInterval:        s.TaskCheckInterval,
		DelayedTaskCheckInterval: s.DelayedTaskCheckInterval,
		Observer:                 m,
		Logger:                   log,
	})
	if err != nil {
		return err
	}
	m.Preset(info.Providers, knownQueues())
	m.WatchQueues(w.Inspector())
	m.OrdersInState(func() map[string]map[string]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := w.Store().LiveCounts(ctx)
		if err != nil {
			return nil // the family is left out of this scrape, never reported as 0
		}
		return c
	})
	admin := AdminHandler(AdminConfig{Worker: w, Redis: opt, Metrics: m.Handler(), Token: s.AdminToken,
		CookieSecure: s.AdminCookieSecure, Quota: lim, Logger: log})
	defer func() { _ = admin.Close() }()
	srv := adminServer(admin)
	go func() { _ = srv.Serve(ln) }()
	if err := w.Start(); err != nil {
		_ = srv.Close()
		return err
	}
	log.Info("worker started", "admin", info.AdminURL, "ui", info.UIURL, "console", info.ConsoleURL, "redis", info.RedisURL,
		"providers", strings.Join(info.Providers, ","), "embedded", info.Embedded)
	if started != nil {
		started(info)
	}
	<-ctx.Done()
	log.Info("draining: no new tasks; running ones get the shutdown timeout")
	w.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), AdminCloseTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return nil
}

// Limits of the admin listener, which also serves the public push
// endpoint: a client that trickles its headers or body, never reads the
// answer, or holds idle connections open is cut off.
const (
	adminReadHeaderTimeout = 5 * time.Second
	adminReadTimeout       = 30 * time.Second // a POST /v1/orders body of up to 8 MiB
	adminWriteTimeout      = 60 * time.Second
	adminIdleTimeout       = 120 * time.Second
	adminMaxHeaderBytes    = 64 << 10
)

// adminServer is the admin listener's HTTP server.
func adminServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
	}
}

// RedisCheckTimeout bounds Run's start-up check of REDIS_URL.
const RedisCheckTimeout = 5 * time.Second

// checkRedis is Run's start-up check of REDIS_URL: connect, AUTH, SELECT
// and a write (the readiness probe's), within RedisCheckTimeout. The error
// says which step failed and where, without the password.
func checkRedis(ctx context.Context, rdb redis.UniversalClient, opt asynq.RedisConnOpt) error {
	ctx, cancel := context.WithTimeout(ctx, RedisCheckTimeout)
	defer cancel()
	err := writeProbe(ctx, rdb)
	if err == nil {
		return nil
	}
	target, password := describeRedis(opt)
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	var what string
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout():
		what = fmt.Sprintf("no answer within %s: %s", RedisCheckTimeout, msg)
	case errors.As(err, new(*net.OpError)):
		what = "cannot connect: " + msg
	case strings.HasPrefix(msg, "NOAUTH"):
		what = "the server wants a password (AUTH): " + msg
	case strings.HasPrefix(msg, "WRONGPASS"), strings.Contains(msg, "AUTH"):
		what = "AUTH refused: " + msg
	case strings.Contains(msg, "DB index"):
		what = "SELECT refused: " + msg
	case strings.HasPrefix(msg, "READONLY"), strings.HasPrefix(msg, "OOM"), strings.HasPrefix(msg, "MISCONF"):
		what = "the test write (SET " + probeKey + " PX) was refused: " + msg
	default:
		what = "the test write (SET " + probeKey + " PX) failed: " + msg
	}
	pw := "no password given"
	if password != "" {
		pw = "password redacted"
	}
	return fmt.Errorf("REDIS_URL: %s (%s, %s)", what, target, pw)
}

// describeRedis names where opt connects (without the password), and the
// password.
func describeRedis(opt asynq.RedisConnOpt) (target, password string) {
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		scheme := "redis"
		if o.TLSConfig != nil {
			scheme = "rediss"
		}
		return fmt.Sprintf("%s://%s/%d", scheme, o.Addr, o.DB), o.Password
	case asynq.RedisFailoverClientOpt:
		return fmt.Sprintf("redis-sentinel://%s/%d?master=%s", strings.Join(o.SentinelAddrs, ","), o.DB, o.MasterName), o.Password
	}
	return fmt.Sprintf("%T", opt), ""
}

// knownQueues are every provider's queues and the notify queue: the
// queue gauges report them from start-up, at 0 until asynq knows them.
func knownQueues() []string {
	var qs []string
	for _, p := range providers.Names {
		for q := range pipeline.Queues(p) {
			qs = append(qs, q)
		}
	}
	return append(qs, tasks.QueueNotify)
}

// sweepInterval is how often the worker looks for orders past their
// deadline: every second in the embedded default (its clock is fast).
func sweepInterval(embedded bool) time.Duration {
	if embedded {
		return time.Second
	}
	return 30 * time.Second
}

// tickTTLs advances miniredis's TTLs with wall time (it does not on its own).
func tickTTLs(m *miniredis.Miniredis) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.FastForward(time.Second)
			}
		}
	}()
	return func() { close(done) }
}

// startSim starts the embedded simulator on a free loopback port, with
// light faults so retries show, and quotas the worker's settings leave
// ratelimit.Headroom under (the provider's burst is larger by the
// requests of one ArrivalSpread).
func startSim(s *Settings, pushURL string, log *slog.Logger) (*sim.Sim, error) {
	quota := map[string]sim.Quota{}
	for _, p := range providers.Names {
		extra := int(math.Ceil(s.Rate[p] * ratelimit.ArrivalSpread.Seconds()))
		quota[p] = sim.Quota{Rate: s.Rate[p], Burst: s.Burst[p] + extra}
	}
	simulator, err := sim.New(sim.Config{
		Clock: sim.NewAccelClock(EmbeddedSpeed),
		// Payment three hours after creation (3 s of wall time): time
		// enough, even on a busy machine, for the price guard to cancel a
		// re-priced order, as a buyer who pays within minutes gives it in
		// real life.
		Timeline: sim.Timeline{PayAfter: 3 * time.Hour},
		Quota:    quota,
		PushURL:  pushURL,
		Faults:   sim.Faults{Seed: 1, HTTP5xx: 0.02, Throttle: 0.01, CommitThenDrop: 0.05},
		Logger:   log.With("component", "simulator"),
	})
	if err != nil {
		return nil, err
	}
	if err := simulator.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	s.Xportcn = XportcnSettings{BaseURL: simulator.XportcnURL(), AccessKey: "sim-ak", AccessSecret: "sim-secret-x", UserID: "sim-user"}
	s.Depal = DepalSettings{BaseURL: simulator.DepalURL(), AppKey: "simapp", AppSecret: "sim-secret-d"}
	return simulator, nil
}

// buildProviders makes a gated client for every provider with credentials.
func buildProviders(s *Settings, rdb redis.UniversalClient, obs gate.Observer, log *slog.Logger) (map[string]providers.Provider, *ratelimit.Redis, error) {
	quotas := map[string]ratelimit.Quota{}
	for _, p := range providers.Names {
		quotas[p] = ratelimit.Quota{Rate: s.Rate[p], Burst: s.Burst[p]}
	}
	lim := ratelimit.NewRedis(rdb, quotas)
	gcfg := gate.Config{Limiter: lim, Observer: obs, Logger: log}
	ps := map[string]providers.Provider{}
	if s.HasXportcn() {
		c, err := xportcn.New(xportcn.Config{
			BaseURL: s.Xportcn.BaseURL, AccessKey: s.Xportcn.AccessKey, AccessSecret: s.Xportcn.AccessSecret,
			UserID: s.Xportcn.UserID, TimestampUnit: s.Xportcn.TimestampUnit,
			// a lookup's further pages spend the shared quota too
			Admit: func(ctx context.Context) error { return ratelimit.Wait(ctx, lim, providers.Xportcn) }})
		if err != nil {
			return nil, nil, err
		}
		ps[providers.Xportcn] = gate.Wrap(c, gcfg)
	}
	if s.HasDepal() {
		c, err := depal.New(depal.Config{BaseURL: s.Depal.BaseURL, AppKey: s.Depal.AppKey, AppSecret: s.Depal.AppSecret,
			// token fetches, 510 resends and calls that waited for a token spend the shared quota too
			Admit: func(ctx context.Context) error { return ratelimit.Wait(ctx, lim, providers.Depal) }})
		if err != nil {
			return nil, nil, err
		}
		ps[providers.Depal] = gate.Wrap(c, gcfg)
	}
	if len(ps) == 0 {
		return nil, nil, errors.New("no provider credentials: set XPORTCN_BASE_URL, XPORTCN_ACCESS_KEY, XPORTCN_ACCESS_SECRET and/or DEPAL_BASE_URL, DEPAL_APP_KEY, DEPAL_APP_SECRET (or unset REDIS_URL for the embedded default)")
	}
	return ps, lim, nil
}
