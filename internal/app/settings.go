package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// Settings are the worker's settings (docs/interface.md), read from the
// environment by FromEnv. A zero RedisURL means the embedded default.
type Settings struct {
	RedisURL  string
	AdminAddr string
	// AdminToken guards /monitoring/ and /v1/ (required when AdminAddr is
	// not loopback).
	AdminToken string
	// AdminCookieSecure is ADMIN_COOKIE_SECURE: the web UI's session
	// cookie is always Secure (else only over TLS or X-Forwarded-Proto:
	// https).
	AdminCookieSecure bool
	// EmbeddedRedisAddr is where the embedded default's in-process Redis
	// listens (EMBEDDED_REDIS_ADDR); "127.0.0.1:0" takes a free port.
	EmbeddedRedisAddr string
	Xportcn           XportcnSettings
	Depal             DepalSettings
	Rate              map[string]float64
	Burst             map[string]int
	Concurrency       map[string]int
	PollSchedule      []time.Duration
	// PollScheduleSet is true when POLL_SCHEDULE was given (the embedded
	// default polls faster otherwise).
	PollScheduleSet bool
	// DeadlineSet is true when ORDER_DEADLINE was given (the embedded
	// default has its own, for its fast clock).
	DeadlineSet bool
	// SettleWindow is CREATE_SETTLE_WINDOW (see pipeline.Config); zero:
	// the pipeline's default, or the embedded default's when embedded.
	SettleWindow time.Duration
	// QuoteMaxAge is QUOTE_MAX_AGE: a create whose quote is older previews
	// the order again first; default 30m.
	QuoteMaxAge time.Duration
	Deadline    time.Duration
	Retention   time.Duration
	// ShutdownTimeout is how long a drain waits for running tasks (then
	// they return to their queues); unset: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// EventsMaxLen trims the event stream (EVENTS_MAXLEN).
	EventsMaxLen int
	// CallbackSecret signs callbacks to upstreams (CALLBACK_SECRET).
	CallbackSecret string
	// CallbackAllowPrivate is CALLBACK_ALLOW_PRIVATE: callbacks may target
	// loopback and private addresses (default: only in the embedded
	// default).
	CallbackAllowPrivate bool
	NotifyConcurrency    int
	LogFormat            string
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

// FromEnv reads the settings; an error names the variable that is wrong.
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
	}
	var err error
	for _, p := range providers.Names {
		up := strings.ToUpper(p)
		if s.Rate[p], err = floatVar(getenv, up+"_RATE", 10); err != nil {
			return nil, err
		}
		if s.Burst[p], err = intVar(getenv, up+"_BURST", 10); err != nil {
			return nil, err
		}
		if s.Concurrency[p], err = intVar(getenv, up+"_CONCURRENCY", 20); err != nil {
			return nil, err
		}
		if s.Concurrency[p] < 1 {
			return nil, fmt.Errorf("%s_CONCURRENCY must be at least 1", up)
		}
	}
	if v := getenv("POLL_SCHEDULE"); v != "" {
		s.PollScheduleSet = true
		if s.PollSchedule, err = ParseSchedule(v); err != nil {
			return nil, fmt.Errorf("POLL_SCHEDULE: %w", err)
		}
	} else {
		s.PollSchedule = pipeline.DefaultPollSchedule
	}
	if s.SettleWindow, err = durationVar(getenv, "CREATE_SETTLE_WINDOW", 0); err != nil {
		return nil, err
	}
	if s.QuoteMaxAge, err = durationVar(getenv, "QUOTE_MAX_AGE", pipeline.DefaultQuoteMaxAge); err != nil {
		return nil, err
	}
	if s.Deadline, err = durationVar(getenv, "ORDER_DEADLINE", 720*time.Hour); err != nil {
		return nil, err
	}
	s.DeadlineSet = getenv("ORDER_DEADLINE") != ""
	if s.Retention, err = durationVar(getenv, "ORDER_RETENTION", 720*time.Hour); err != nil {
		return nil, err
	}
	if s.ShutdownTimeout, err = durationVar(getenv, "SHUTDOWN_TIMEOUT", DefaultShutdownTimeout); err != nil {
		return nil, err
	}
	if s.EventsMaxLen, err = intVar(getenv, "EVENTS_MAXLEN", 1_000_000); err != nil {
		return nil, err
	}
	if s.NotifyConcurrency, err = intVar(getenv, "NOTIFY_CONCURRENCY", 10); err != nil {
		return nil, err
	}
	s.CallbackSecret = getenv("CALLBACK_SECRET")
	if s.AdminCookieSecure, err = boolVar(getenv, "ADMIN_COOKIE_SECURE", false); err != nil {
		return nil, err
	}
	if s.CallbackAllowPrivate, err = boolVar(getenv, "CALLBACK_ALLOW_PRIVATE", s.Embedded()); err != nil {
		return nil, err
	}
	s.LogFormat = getenv("LOG_FORMAT")
	switch s.LogFormat {
	case "", "json", "text":
	default:
		return nil, fmt.Errorf("LOG_FORMAT must be json or text, got %q", s.LogFormat)
	}
	if s.Xportcn.TimestampUnit != "" && s.Xportcn.TimestampUnit != "s" && s.Xportcn.TimestampUnit != "ms" {
		return nil, fmt.Errorf("XPORTCN_TIMESTAMP_UNIT must be s or ms, got %q", s.Xportcn.TimestampUnit)
	}
	return s, nil
}

// ParseSchedule parses "30s,1m,2m": positive durations, the last repeating.
func ParseSchedule(v string) ([]time.Duration, error) {
	var out []time.Duration
	for i, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("step %d %q is not a positive duration", i+1, f)
		}
		out = append(out, d)
	}
	return out, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func floatVar(getenv func(string) string, name string, def float64) (float64, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%s must be a non-negative number, got %q", name, v)
	}
	return f, nil
}

func intVar(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer, got %q", name, v)
	}
	return n, nil
}

func boolVar(getenv func(string) string, name string, def bool) (bool, error) {
	switch v := getenv(name); v {
	case "":
		return def, nil
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	default:
		return false, fmt.Errorf("%s must be 1 or 0, got %q", name, v)
	}
}

func durationVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s must be a positive duration like 720h, got %q", name, v)
	}
	return d, nil
}
