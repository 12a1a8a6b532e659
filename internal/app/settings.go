package app

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"orderflow/internal/pipeline"
	"orderflow/internal/redact"
	"orderflow/providers"
)

// Settings are the worker's settings (docs/interface.md), read from the
// environment by FromEnv and checked by Validate. A zero RedisURL means
// the embedded default.
type Settings struct {
	RedisURL  string
	AdminAddr string
	// AdminToken guards /monitoring/ and /v1/ (required when AdminAddr is
	// not loopback).
	AdminToken string
	// EmbeddedRedisAddr is where the embedded default's in-process Redis
	// listens (EMBEDDED_REDIS_ADDR); "127.0.0.1:0" takes a free port.
	EmbeddedRedisAddr string
	// EmbeddedAsked is EMBEDDED=1: run the embedded default even with
	// provider settings or a non-loopback ADMIN_ADDR.
	EmbeddedAsked bool
	// TestTimings is TEST_TIMINGS=1: the lower floors of test rigs (see
	// Floors).
	TestTimings bool
	Xportcn     XportcnSettings
	Depal       DepalSettings
	Rate        map[string]float64
	Burst       map[string]int
	Concurrency map[string]int
	// PollSchedule; PollScheduleSet is true when POLL_SCHEDULE was given
	// (the embedded default polls faster otherwise).
	PollSchedule    []time.Duration
	PollScheduleSet bool
	// SettleWindow is CREATE_SETTLE_WINDOW (see pipeline.Config); zero:
	// the pipeline's default, or the embedded default's when embedded.
	SettleWindow time.Duration
	// QuoteMaxAge is QUOTE_MAX_AGE: a create whose quote is older previews
	// the order again first.
	QuoteMaxAge time.Duration
	// RetryBackoffMax is RETRY_BACKOFF_MAX: the longest wait between two
	// runs of a failing step (the backoff doubles from 1 s up to it).
	RetryBackoffMax time.Duration
	// Deadline is ORDER_DEADLINE; DeadlineSet is true when it was given
	// (the embedded default has its own, for its fast clock).
	Deadline    time.Duration
	DeadlineSet bool
	Retention   time.Duration
	// ShutdownTimeout is how long a drain waits for running tasks (then
	// they return to their queues); unset: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// EventsMaxLen trims the event stream (EVENTS_MAXLEN); zero: the default.
	EventsMaxLen int
	// CallbackSecret signs callbacks to upstreams (CALLBACK_SECRET).
	CallbackSecret string
	// AdminCookieSecure is ADMIN_COOKIE_SECURE: the session cookie is
	// always Secure (else only over TLS or X-Forwarded-Proto: https).
	AdminCookieSecure bool
	// CallbackAllowPrivate is CALLBACK_ALLOW_PRIVATE: callbacks may target
	// loopback and private addresses (default: only in the embedded
	// default).
	CallbackAllowPrivate bool
	// NotifyConcurrency; zero: the default.
	NotifyConcurrency int
	// TaskCheckInterval is TASK_CHECK_INTERVAL: the pause of an idle
	// intake server between two waits for an announced task (package
	// wake); the other servers look every followCheckInterval or this,
	// whichever is longer.
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval is DELAYED_TASK_CHECK_INTERVAL: how often
	// scheduled and retried tasks (polls, deferrals) that are due are moved
	// to their queues.
	DelayedTaskCheckInterval time.Duration
	LogFormat                string
	// Version is stamped at build time.
	Version string
}

// XportcnSettings are the Xportcn endpoint and credentials.
type XportcnSettings struct {
	BaseURL, AccessKey, AccessSecret, UserID string
	TimestampUnit                            string
}

// DepalSettings are the Depal endpoint and credentials.
type DepalSettings struct {
	BaseURL, AppKey, AppSecret string
}

// Bounds of the settings (docs/interface.md, "Settings").
const (
	// MinRate and MaxRate bound XPORTCN_RATE and DEPAL_RATE (requests per
	// second): below one request per 100 s a provider is paused, not
	// limited; above 1000/s the limit is not a provider quota.
	MinRate = 0.01
	MaxRate = 1000
	// MaxBurst bounds the _BURST settings (at least 1).
	MaxBurst = 10_000
	// MaxConcurrency bounds the _CONCURRENCY settings and NOTIFY_CONCURRENCY.
	MaxConcurrency = 1000
	// MaxPollStep bounds each POLL_SCHEDULE step; MaxPollSteps their number.
	MaxPollStep  = 24 * time.Hour
	MaxPollSteps = 32
	// MaxSettleWindow bounds CREATE_SETTLE_WINDOW, well under the 30 min a
	// create's outcome may stay unknown before the order is parked.
	MaxSettleWindow = 15 * time.Minute
	// MaxDeadline bounds ORDER_DEADLINE.
	MaxDeadline = 8760 * time.Hour
	// MaxQuoteMaxAge bounds QUOTE_MAX_AGE: a quote a day old is no quote.
	MaxQuoteMaxAge = 24 * time.Hour
	// MaxRetryBackoffMax bounds RETRY_BACKOFF_MAX.
	MaxRetryBackoffMax = time.Hour
	// MaxShutdownTimeout bounds SHUTDOWN_TIMEOUT.
	MaxShutdownTimeout = time.Hour
	// MinAdminToken is the shortest ADMIN_TOKEN accepted.
	MinAdminToken = 16
	// MinEventsMaxLen and MaxEventsMaxLen bound EVENTS_MAXLEN when set.
	MinEventsMaxLen = 1000
	MaxEventsMaxLen = 100_000_000
	// MinTaskCheckInterval and MaxTaskCheckInterval bound
	// TASK_CHECK_INTERVAL: below 5 ms an idle pod's empty dequeues load
	// Redis for nothing; above 1 s an order waits seconds to start.
	MinTaskCheckInterval = 5 * time.Millisecond
	MaxTaskCheckInterval = time.Second
	// MinDelayedTaskCheckInterval and MaxDelayedTaskCheckInterval bound
	// DELAYED_TASK_CHECK_INTERVAL.
	MinDelayedTaskCheckInterval = 50 * time.Millisecond
	MaxDelayedTaskCheckInterval = 10 * time.Second
)

// Defaults of TASK_CHECK_INTERVAL and DELAYED_TASK_CHECK_INTERVAL: an idle
// pod starts an order's first step within 20 ms at p50 and loads Redis
// with under 1% of a core (BENCHMARKS.md).
const (
	DefaultTaskCheckInterval        = 20 * time.Millisecond
	DefaultDelayedTaskCheckInterval = 250 * time.Millisecond
)

// Floors are the lowest durations accepted (SHUTDOWN_TIMEOUT must be more
// than its floor): ProductionFloors normally, TestFloors with
// TEST_TIMINGS=1 and in the embedded default.
type Floors struct {
	PollStep, SettleWindow, Deadline, QuoteMaxAge, ShutdownTimeout, RetryBackoffMax time.Duration
}

var (
	// ProductionFloors: polls at most once a second, a settle window a
	// provider's index can keep up with, a deadline of a minute, and a
	// drain that lets the longest task finish.
	ProductionFloors = Floors{PollStep: time.Second, SettleWindow: 10 * time.Second,
		Deadline: time.Minute, QuoteMaxAge: time.Minute, ShutdownTimeout: pipeline.LongestTimeout,
		RetryBackoffMax: 10 * time.Second}
	// TestFloors are for test rigs with an accelerated provider clock.
	TestFloors = Floors{PollStep: 100 * time.Millisecond, SettleWindow: 100 * time.Millisecond,
		Deadline: time.Second, QuoteMaxAge: time.Second, ShutdownTimeout: time.Second,
		RetryBackoffMax: time.Second}
)

// Floors returns the floors that apply to s.
func (s *Settings) Floors() Floors {
	if s.TestTimings || s.Embedded() {
		return TestFloors
	}
	return ProductionFloors
}

// Embedded reports whether no Redis is configured.
func (s *Settings) Embedded() bool { return s.RedisURL == "" }

// HasXportcn reports whether Xportcn credentials are complete.
func (s *Settings) HasXportcn() bool {
	return s.Xportcn.BaseURL != "" && s.Xportcn.AccessKey != "" && s.Xportcn.AccessSecret != ""
}

// HasDepal reports whether Depal credentials are complete.
func (s *Settings) HasDepal() bool {
	return s.Depal.BaseURL != "" && s.Depal.AppKey != "" && s.Depal.AppSecret != ""
}

// providerVars names the provider settings that are set: in the embedded
// default the simulator replaces them all.
func (s *Settings) providerVars() []string {
	var set []string
	for _, v := range []struct{ name, value string }{
		{"XPORTCN_BASE_URL", s.Xportcn.BaseURL}, {"XPORTCN_ACCESS_KEY", s.Xportcn.AccessKey},
		{"XPORTCN_ACCESS_SECRET", s.Xportcn.AccessSecret}, {"XPORTCN_USER_ID", s.Xportcn.UserID},
		{"DEPAL_BASE_URL", s.Depal.BaseURL}, {"DEPAL_APP_KEY", s.Depal.AppKey}, {"DEPAL_APP_SECRET", s.Depal.AppSecret},
	} {
		if v.value != "" {
			set = append(set, v.name)
		}
	}
	return set
}

// FromEnv reads the settings and validates them (Validate). The error
// lists every problem, one per line, each naming its variable and what it
// allows.
func FromEnv(getenv func(string) string) (*Settings, error) {
	s := &Settings{
		RedisURL:          getenv("REDIS_URL"),
		AdminAddr:         or(getenv("ADMIN_ADDR"), "127.0.0.1:8080"),
		AdminToken:        getenv("ADMIN_TOKEN"),
		EmbeddedRedisAddr: or(getenv("EMBEDDED_REDIS_ADDR"), EmbeddedRedisAddr),
		Rate:              map[string]float64{},
		Burst:             map[string]int{},
		Concurrency:       map[string]int{},
		Xportcn: XportcnSettings{
			BaseURL: getenv("XPORTCN_BASE_URL"), AccessKey: getenv("XPORTCN_ACCESS_KEY"),
			AccessSecret: getenv("XPORTCN_ACCESS_SECRET"), UserID: getenv("XPORTCN_USER_ID"),
			TimestampUnit: getenv("XPORTCN_TIMESTAMP_UNIT"),
		},
		Depal: DepalSettings{
			BaseURL: getenv("DEPAL_BASE_URL"), AppKey: getenv("DEPAL_APP_KEY"), AppSecret: getenv("DEPAL_APP_SECRET"),
		},
		CallbackSecret: getenv("CALLBACK_SECRET"),
		LogFormat:      getenv("LOG_FORMAT"),
	}
	p := &problems{bad: map[string]bool{}}
	s.EmbeddedAsked = p.flag(getenv, "EMBEDDED")
	s.TestTimings = p.flag(getenv, "TEST_TIMINGS")
	for _, name := range providers.Names {
		up := strings.ToUpper(name)
		s.Rate[name] = floatVar(p, getenv, up+"_RATE", 10)
		s.Burst[name] = intVar(p, getenv, up+"_BURST", 10)
		s.Concurrency[name] = intVar(p, getenv, up+"_CONCURRENCY", 20)
	}
	if v := getenv("POLL_SCHEDULE"); v != "" {
		s.PollScheduleSet = true
		sched, err := ParseSchedule(v)
		if err != nil {
			p.bad["POLL_SCHEDULE"] = true
			p.add("POLL_SCHEDULE", "%v", err)
		}
		s.PollSchedule = sched
	} else {
		s.PollSchedule = pipeline.DefaultPollSchedule
	}
	s.SettleWindow = durationVar(p, getenv, "CREATE_SETTLE_WINDOW", 0)
	s.QuoteMaxAge = durationVar(p, getenv, "QUOTE_MAX_AGE", pipeline.DefaultQuoteMaxAge)
	s.RetryBackoffMax = durationVar(p, getenv, "RETRY_BACKOFF_MAX", pipeline.DefaultBackoffMax)
	s.Deadline = durationVar(p, getenv, "ORDER_DEADLINE", 720*time.Hour)
	s.DeadlineSet = getenv("ORDER_DEADLINE") != ""
	s.Retention = durationVar(p, getenv, "ORDER_RETENTION", 720*time.Hour)
	s.ShutdownTimeout = durationVar(p, getenv, "SHUTDOWN_TIMEOUT", DefaultShutdownTimeout)
	s.EventsMaxLen = intVar(p, getenv, "EVENTS_MAXLEN", 0)
	s.NotifyConcurrency = intVar(p, getenv, "NOTIFY_CONCURRENCY", 0)
	s.TaskCheckInterval = durationVar(p, getenv, "TASK_CHECK_INTERVAL", DefaultTaskCheckInterval)
	s.DelayedTaskCheckInterval = durationVar(p, getenv, "DELAYED_TASK_CHECK_INTERVAL", DefaultDelayedTaskCheckInterval)
	s.AdminCookieSecure = p.flag(getenv, "ADMIN_COOKIE_SECURE")
	s.CallbackAllowPrivate = s.Embedded()
	if getenv("CALLBACK_ALLOW_PRIVATE") != "" {
		s.CallbackAllowPrivate = p.flag(getenv, "CALLBACK_ALLOW_PRIVATE")
	}
	s.check(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks every setting against its bounds (docs/interface.md)
// and against the others; the error lists every problem, one per line.
// Run calls it first.
func (s *Settings) Validate() error {
	p := &problems{bad: map[string]bool{}}
	s.check(p)
	return p.err()
}

// check adds s's problems to p, leaving out rules about variables p
// already found unreadable.
func (s *Settings) check(p *problems) {
	s.checkRedis(p)
	s.checkAdmin(p)
	for _, name := range providers.Names {
		up := strings.ToUpper(name)
		if r := s.Rate[name]; !p.bad[up+"_RATE"] && !(r >= MinRate && r <= MaxRate) {
			p.add(up+"_RATE", "want requests per second from %g to %g, got %s", MinRate, float64(MaxRate), fmtFloat(r))
		}
		p.intRange(up+"_BURST", s.Burst[name], 1, MaxBurst)
		p.intRange(up+"_CONCURRENCY", s.Concurrency[name], 1, MaxConcurrency)
	}
	if s.NotifyConcurrency != 0 {
		p.intRange("NOTIFY_CONCURRENCY", s.NotifyConcurrency, 1, MaxConcurrency)
	}
	if s.EventsMaxLen != 0 {
		p.intRange("EVENTS_MAXLEN", s.EventsMaxLen, MinEventsMaxLen, MaxEventsMaxLen)
	}
	f := s.Floors()
	if !p.bad["POLL_SCHEDULE"] {
		if len(s.PollSchedule) > MaxPollSteps {
			p.add("POLL_SCHEDULE", "want at most %d steps, got %d", MaxPollSteps, len(s.PollSchedule))
		}
		for i, d := range s.PollSchedule {
			if d < f.PollStep || d > MaxPollStep {
				p.add("POLL_SCHEDULE", "want each step from %s to %s%s, got step %d %s", dur(f.PollStep), dur(MaxPollStep), f.note(), i+1, dur(d))
			}
		}
	}
	if s.SettleWindow != 0 {
		p.durationRange("CREATE_SETTLE_WINDOW", s.SettleWindow, f.SettleWindow, MaxSettleWindow, f.note())
	}
	p.durationRange("ORDER_DEADLINE", s.Deadline, f.Deadline, MaxDeadline, f.note())
	p.durationRange("QUOTE_MAX_AGE", s.QuoteMaxAge, f.QuoteMaxAge, MaxQuoteMaxAge, f.note())
	p.durationRange("RETRY_BACKOFF_MAX", s.RetryBackoffMax, f.RetryBackoffMax, MaxRetryBackoffMax, f.note())
	p.durationRange("TASK_CHECK_INTERVAL", s.TaskCheckInterval, MinTaskCheckInterval, MaxTaskCheckInterval, "")
	p.durationRange("DELAYED_TASK_CHECK_INTERVAL", s.DelayedTaskCheckInterval, MinDelayedTaskCheckInterval, MaxDelayedTaskCheckInterval, "")
	if !p.bad["ORDER_RETENTION"] && !p.bad["ORDER_DEADLINE"] && s.Retention < s.Deadline {
		p.add("ORDER_RETENTION", "want at least ORDER_DEADLINE (%s): an ended order's record must outlive its deadline task, got %s", dur(s.Deadline), dur(s.Retention))
	}
	if !p.bad["SHUTDOWN_TIMEOUT"] && (s.ShutdownTimeout <= f.ShutdownTimeout || s.ShutdownTimeout > MaxShutdownTimeout) {
		if f == ProductionFloors {
			p.add("SHUTDOWN_TIMEOUT", "want more than the longest task timeout (%s, pipeline.LongestTimeout) and at most %s, got %s", dur(pipeline.LongestTimeout), dur(MaxShutdownTimeout), dur(s.ShutdownTimeout))
		} else {
			p.add("SHUTDOWN_TIMEOUT", "want more than %s and at most %s%s, got %s", dur(f.ShutdownTimeout), dur(MaxShutdownTimeout), f.note(), dur(s.ShutdownTimeout))
		}
	}
	switch s.LogFormat {
	case "", "json", "text":
	default:
		p.add("LOG_FORMAT", "want json or text, got %q", s.LogFormat)
	}
	switch s.Xportcn.TimestampUnit {
	case "", "s", "ms":
	default:
		p.add("XPORTCN_TIMESTAMP_UNIT", "want s or ms, got %q", s.Xportcn.TimestampUnit)
	}
}

// checkRedis: REDIS_URL parses, and an empty one (the embedded default,
// whose Redis is in memory) is what was meant.
func (s *Settings) checkRedis(p *problems) {
	if !s.Embedded() {
		if _, err := asynq.ParseRedisURI(s.RedisURL); err != nil {
			p.add("REDIS_URL", "want redis://, rediss:// or redis-sentinel://, got %q: %v", redact.URL(s.RedisURL), redact.URLIn(err.Error(), s.RedisURL))
		}
		if s.EmbeddedAsked {
			p.add("EMBEDDED", "1 asks for the in-memory Redis, but REDIS_URL is set: unset one of them")
		}
		return
	}
	if !validHostPort(s.EmbeddedRedisAddr) || !IsLoopback(s.EmbeddedRedisAddr) {
		p.add("EMBEDDED_REDIS_ADDR", "want a loopback host:port (the embedded Redis has no password), got %q", s.EmbeddedRedisAddr)
	}
	if s.EmbeddedAsked {
		return
	}
	var why []string
	if vars := s.providerVars(); len(vars) > 0 {
		why = append(why, "provider settings that the simulator would replace are set: "+strings.Join(vars, ", "))
	}
	if validHostPort(s.AdminAddr) && !IsLoopback(s.AdminAddr) {
		why = append(why, fmt.Sprintf("ADMIN_ADDR %s is not loopback", s.AdminAddr))
	}
	if len(why) > 0 {
		p.list = append(p.list, fmt.Errorf("REDIS_URL is empty: orderflow would run on an in-memory Redis and lose every order on restart (%s); set REDIS_URL, or EMBEDDED=1 to mean it", strings.Join(why, "; ")))
	}
}

// checkAdmin: ADMIN_ADDR is host:port, and ADMIN_TOKEN is strong, and set
// when the listener is not loopback only.
func (s *Settings) checkAdmin(p *problems) {
	if !validHostPort(s.AdminAddr) {
		p.add("ADMIN_ADDR", "want host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080), got %q", s.AdminAddr)
		return
	}
	t := s.AdminToken
	switch {
	case t == "" && !IsLoopback(s.AdminAddr):
		p.add("ADMIN_TOKEN", "required when ADMIN_ADDR (%s) is not a loopback address", s.AdminAddr)
	case t == "":
	case strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		p.add("ADMIN_TOKEN", "want at least %d characters without whitespace or control characters, got one with such a character", MinAdminToken)
	case utf8.RuneCountInString(t) < MinAdminToken:
		p.add("ADMIN_TOKEN", "want at least %d characters without whitespace (e.g. openssl rand -hex 32), got %d", MinAdminToken, utf8.RuneCountInString(t))
	}
}

// validHostPort reports whether addr is host:port with a numeric port.
func validHostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// note says which floors apply, for a refusal.
func (f Floors) note() string {
	if f == TestFloors {
		return " (the floors of TEST_TIMINGS=1 and the embedded default)"
	}
	return ""
}

// ParseSchedule parses "30s,1m,2m": positive durations, the last repeating.
func ParseSchedule(v string) ([]time.Duration, error) {
	var out []time.Duration
	for i, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("want comma-separated Go durations like 30s,1m,2m; step %d %q is not a positive duration", i+1, f)
		}
		out = append(out, d)
	}
	return out, nil
}

// problems collects what is wrong with the settings, one line each.
type problems struct {
	list []error
	// bad: variables that could not be read (their value is the default).
	bad map[string]bool
}

func (p *problems) add(name, format string, args ...any) {
	p.list = append(p.list, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (p *problems) err() error { return errors.Join(p.list...) }

func (p *problems) intRange(name string, n, lo, hi int) {
	if !p.bad[name] && (n < lo || n > hi) {
		p.add(name, "want an integer from %d to %d, got %d", lo, hi, n)
	}
}

func (p *problems) durationRange(name string, d, lo, hi time.Duration, note string) {
	if !p.bad[name] && (d < lo || d > hi) {
		p.add(name, "want a Go duration from %s to %s%s, got %s", dur(lo), dur(hi), note, dur(d))
	}
}

// flag reads a switch: unset, 0 or 1.
func (p *problems) flag(getenv func(string) string, name string) bool {
	switch v := getenv(name); v {
	case "", "0":
		return false
	case "1":
		return true
	default:
		p.bad[name] = true
		p.add(name, "want 1 or 0 (or unset), got %q", v)
		return false
	}
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// dur formats d as it would be written: 24h, 2m, 1m30s.
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func floatVar(p *problems, getenv func(string) string, name string, def float64) float64 {
	v := getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.bad[name] = true
		p.add(name, "want requests per second from %g to %g, got %q", MinRate, float64(MaxRate), v)
		return def
	}
	return f
}

func intVar(p *problems, getenv func(string) string, name string, def int) int {
	v := getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		p.bad[name] = true
		p.add(name, "want an integer, got %q", v)
		return def
	}
	return n
}

func durationVar(p *problems, getenv func(string) string, name string, def time.Duration) time.Duration {
	v := getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.bad[name] = true
		p.add(name, "want a Go duration like 720h or 90s, got %q", v)
		return def
	}
	return d
}
