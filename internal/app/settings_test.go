package app_test

import (
	"strings"
	"testing"
	"time"

	"orderflow/internal/app"
	"orderflow/internal/pipeline"
)

// prodEnv is a production-shaped environment that FromEnv accepts: a
// Redis, one provider's credentials, an open listener with its token.
func prodEnv() map[string]string {
	return map[string]string{
		"REDIS_URL":  "redis://:pw@10.0.0.5:6379/0",
		"ADMIN_ADDR": "0.0.0.0:8080", "ADMIN_TOKEN": "0123456789abcdef",
		"DEPAL_BASE_URL": "https://openapi.example", "DEPAL_APP_KEY": "k", "DEPAL_APP_SECRET": "s",
	}
}

func fromEnv(env map[string]string) (*app.Settings, error) {
	return app.FromEnv(func(k string) string { return env[k] })
}

// with returns prodEnv changed by kv (name, value pairs; "" unsets).
func with(kv ...string) map[string]string {
	env := prodEnv()
	for i := 0; i < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// TestSettingsRefused: every nonsense value is refused, and the refusal
// names the variable and says what is allowed.
func TestSettingsRefused(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string // the whole line of the problem, or its start
	}{
		{"rate 0", with("XPORTCN_RATE", "0"), "XPORTCN_RATE: want requests per second from 0.01 to 1000, got 0"},
		{"rate NaN", with("DEPAL_RATE", "NaN"), `DEPAL_RATE: want requests per second from 0.01 to 1000, got "NaN"`},
		{"rate Inf", with("DEPAL_RATE", "Inf"), `DEPAL_RATE: want requests per second from 0.01 to 1000, got "Inf"`},
		{"rate -Inf", with("DEPAL_RATE", "-Inf"), `DEPAL_RATE: want requests per second from 0.01 to 1000, got "-Inf"`},
		{"rate tiny", with("XPORTCN_RATE", "1e-9"), "XPORTCN_RATE: want requests per second from 0.01 to 1000, got 1e-09"},
		{"rate negative", with("XPORTCN_RATE", "-5"), "XPORTCN_RATE: want requests per second from 0.01 to 1000, got -5"},
		{"rate huge", with("XPORTCN_RATE", "1000.5"), "XPORTCN_RATE: want requests per second from 0.01 to 1000, got 1000.5"},
		{"rate word", with("XPORTCN_RATE", "fast"), `XPORTCN_RATE: want requests per second from 0.01 to 1000, got "fast"`},
		{"burst 0", with("XPORTCN_BURST", "0"), "XPORTCN_BURST: want an integer from 1 to 10000, got 0"},
		{"burst huge", with("DEPAL_BURST", "10001"), "DEPAL_BURST: want an integer from 1 to 10000, got 10001"},
		{"burst word", with("DEPAL_BURST", "1.5"), `DEPAL_BURST: want an integer, got "1.5"`},
		{"concurrency 0", with("DEPAL_CONCURRENCY", "0"), "DEPAL_CONCURRENCY: want an integer from 1 to 1000, got 0"},
		{"notify concurrency", with("NOTIFY_CONCURRENCY", "-1"), "NOTIFY_CONCURRENCY: want an integer from 1 to 1000, got -1"},
		{"events maxlen", with("EVENTS_MAXLEN", "5"), "EVENTS_MAXLEN: want an integer from 1000 to 100000000, got 5"},
		{"poll 1ns", with("POLL_SCHEDULE", "1ns"), "POLL_SCHEDULE: want each step from 1s to 24h, got step 1 1ns"},
		{"poll below floor", with("POLL_SCHEDULE", "30s,999ms"), "POLL_SCHEDULE: want each step from 1s to 24h, got step 2 999ms"},
		{"poll word", with("POLL_SCHEDULE", "30s,soon"), `POLL_SCHEDULE: want comma-separated Go durations like 30s,1m,2m; step 2 "soon" is not a positive duration`},
		{"deadline 1ns", with("ORDER_DEADLINE", "1ns"), "ORDER_DEADLINE: want a Go duration from 1m to 8760h, got 1ns"},
		{"deadline word", with("ORDER_DEADLINE", "forever"), `ORDER_DEADLINE: want a Go duration like 720h or 90s, got "forever"`},
		{"retention below deadline", with("ORDER_DEADLINE", "48h", "ORDER_RETENTION", "24h"),
			"ORDER_RETENTION: want at least ORDER_DEADLINE (48h): an ended order's record must outlive its deadline task, got 24h"},
		{"settle 1ns", with("CREATE_SETTLE_WINDOW", "1ns"), "CREATE_SETTLE_WINDOW: want a Go duration from 10s to 15m, got 1ns"},
		{"backoff 1s", with("RETRY_BACKOFF_MAX", "1s"), "RETRY_BACKOFF_MAX: want a Go duration from 10s to 1h, got 1s"},
		{"backoff 2h", with("RETRY_BACKOFF_MAX", "2h"), "RETRY_BACKOFF_MAX: want a Go duration from 10s to 1h, got 2h"},
		{"shutdown = task timeout", with("SHUTDOWN_TIMEOUT", pipeline.LongestTimeout.String()),
			"SHUTDOWN_TIMEOUT: want more than the longest task timeout (2m, pipeline.LongestTimeout) and at most 1h, got 2m"},
		{"shutdown 5s", with("SHUTDOWN_TIMEOUT", "5s"), "SHUTDOWN_TIMEOUT: want more than the longest task timeout"},
		{"task check 1ms", with("TASK_CHECK_INTERVAL", "1ms"), "TASK_CHECK_INTERVAL: want a Go duration from 5ms to 1s, got 1ms"},
		{"task check 2s", with("TASK_CHECK_INTERVAL", "2s"), "TASK_CHECK_INTERVAL: want a Go duration from 5ms to 1s, got 2s"},
		{"task check word", with("TASK_CHECK_INTERVAL", "often"), `TASK_CHECK_INTERVAL: want a Go duration like 720h or 90s, got "often"`},
		{"delayed check 10ms", with("DELAYED_TASK_CHECK_INTERVAL", "10ms"), "DELAYED_TASK_CHECK_INTERVAL: want a Go duration from 50ms to 10s, got 10ms"},
		{"delayed check 1m", with("DELAYED_TASK_CHECK_INTERVAL", "1m"), "DELAYED_TASK_CHECK_INTERVAL: want a Go duration from 50ms to 10s, got 1m"},
		{"admin garbage", with("ADMIN_ADDR", "garbage"), `ADMIN_ADDR: want host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080), got "garbage"`},
		{"admin port word", with("ADMIN_ADDR", "0.0.0.0:http"), `ADMIN_ADDR: want host:port`},
		{"token missing", with("ADMIN_TOKEN", ""), "ADMIN_TOKEN: required when ADMIN_ADDR (0.0.0.0:8080) is not a loopback address"},
		{"token short", with("ADMIN_TOKEN", "a"), "ADMIN_TOKEN: want at least 16 characters without whitespace (e.g. openssl rand -hex 32), got 1"},
		{"token space", with("ADMIN_TOKEN", " "), "ADMIN_TOKEN: want at least 16 characters without whitespace or control characters, got one with such a character"},
		{"token inner space", with("ADMIN_TOKEN", "0123456789 abcdef"), "ADMIN_TOKEN: want at least 16 characters without whitespace or control characters"},
		{"short token on loopback", with("ADMIN_ADDR", "127.0.0.1:8080", "ADMIN_TOKEN", "secret"), "ADMIN_TOKEN: want at least 16 characters"},
		{"redis url", with("REDIS_URL", "http://:pw@host/0"), `REDIS_URL: want redis://, rediss:// or redis-sentinel://, got "http://:xxxxx@host/0"`},
		{"embedded flag word", with("EMBEDDED", "yes"), `EMBEDDED: want 1 or 0 (or unset), got "yes"`},
		{"embedded with a redis", with("EMBEDDED", "1"), "EMBEDDED: 1 asks for the in-memory Redis, but REDIS_URL is set: unset one of them"},
		{"test timings word", with("TEST_TIMINGS", "true"), `TEST_TIMINGS: want 1 or 0 (or unset), got "true"`},
		{"log format", with("LOG_FORMAT", "xml"), `LOG_FORMAT: want json or text, got "xml"`},
		{"timestamp unit", with("XPORTCN_TIMESTAMP_UNIT", "us"), `XPORTCN_TIMESTAMP_UNIT: want s or ms, got "us"`},
		// The embedded default: only what was meant.
		{"embedded with credentials", with("REDIS_URL", "", "ADMIN_ADDR", "127.0.0.1:8080"),
			"REDIS_URL is empty: orderflow would run on an in-memory Redis and lose every order on restart (provider settings that the simulator would replace are set: DEPAL_BASE_URL, DEPAL_APP_KEY, DEPAL_APP_SECRET); set REDIS_URL, or EMBEDDED=1 to mean it"},
		{"embedded on an open address", map[string]string{"ADMIN_ADDR": "0.0.0.0:8080", "ADMIN_TOKEN": "0123456789abcdef"},
			"REDIS_URL is empty: orderflow would run on an in-memory Redis and lose every order on restart (ADMIN_ADDR 0.0.0.0:8080 is not loopback); set REDIS_URL, or EMBEDDED=1 to mean it"},
		{"embedded redis not loopback", map[string]string{"EMBEDDED_REDIS_ADDR": "0.0.0.0:6380"},
			`EMBEDDED_REDIS_ADDR: want a loopback host:port (the embedded Redis has no password), got "0.0.0.0:6380"`},
		// The embedded default's floors are lower, not absent.
		{"embedded poll 1ns", map[string]string{"POLL_SCHEDULE": "1ns"},
			"POLL_SCHEDULE: want each step from 100ms to 24h (the floors of TEST_TIMINGS=1 and the embedded default), got step 1 1ns"},
		{"test timings shutdown 1s", with("TEST_TIMINGS", "1", "SHUTDOWN_TIMEOUT", "1s"),
			"SHUTDOWN_TIMEOUT: want more than 1s and at most 1h (the floors of TEST_TIMINGS=1 and the embedded default), got 1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := fromEnv(c.env)
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			lines := strings.Split(err.Error(), "\n")
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, c.want)
			}
			if !found {
				t.Fatalf("refusal:\n%s\nwant a line starting %q", err, c.want)
			}
			if len(lines) != 1 {
				t.Errorf("%d problems for one wrong value:\n%s", len(lines), err)
			}
			if strings.Contains(err.Error(), ":pw@") || strings.Contains(err.Error(), "0123456789") {
				t.Errorf("the refusal shows a secret: %s", err)
			}
		})
	}
}

// TestSettingsAllProblemsAtOnce: every problem is reported, one per line.
func TestSettingsAllProblemsAtOnce(t *testing.T) {
	_, err := fromEnv(with("XPORTCN_RATE", "0", "DEPAL_BURST", "0", "POLL_SCHEDULE", "1ns",
		"ORDER_DEADLINE", "1ns", "SHUTDOWN_TIMEOUT", "1m", "ADMIN_ADDR", "garbage"))
	if err == nil {
		t.Fatal("accepted")
	}
	got := strings.Split(err.Error(), "\n")
	for _, name := range []string{"XPORTCN_RATE", "DEPAL_BURST", "POLL_SCHEDULE", "ORDER_DEADLINE", "SHUTDOWN_TIMEOUT", "ADMIN_ADDR"} {
		n := 0
		for _, l := range got {
			if strings.HasPrefix(l, name+": ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d lines, want 1, in:\n%s", name, n, err)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d lines, want 6:\n%s", len(got), err)
	}
	// ADMIN_ADDR garbage is reported as such, not as a missing token.
	if strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Errorf("ADMIN_ADDR=garbage reported as a token problem:\n%s", err)
	}
}

// TestSettingsAcceptedBoundaries: the bounds themselves are accepted.
func TestSettingsAcceptedBoundaries(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		check func(*app.Settings) bool
	}{
		{"defaults", prodEnv(), func(s *app.Settings) bool {
			return s.Rate["xportcn"] == 10 && s.Burst["depal"] == 10 && s.ShutdownTimeout == app.DefaultShutdownTimeout && s.Deadline == 720*time.Hour &&
				s.TaskCheckInterval == 20*time.Millisecond && s.DelayedTaskCheckInterval == 250*time.Millisecond
		}},
		{"check interval floors", with("TASK_CHECK_INTERVAL", "5ms", "DELAYED_TASK_CHECK_INTERVAL", "50ms"), func(s *app.Settings) bool {
			return s.TaskCheckInterval == 5*time.Millisecond && s.DelayedTaskCheckInterval == 50*time.Millisecond
		}},
		{"check interval ceilings", with("TASK_CHECK_INTERVAL", "1s", "DELAYED_TASK_CHECK_INTERVAL", "10s"), func(s *app.Settings) bool {
			return s.TaskCheckInterval == time.Second && s.DelayedTaskCheckInterval == 10*time.Second
		}},
		{"rate floor", with("XPORTCN_RATE", "0.01"), func(s *app.Settings) bool { return s.Rate["xportcn"] == 0.01 }},
		{"rate ceiling", with("DEPAL_RATE", "1000"), func(s *app.Settings) bool { return s.Rate["depal"] == 1000 }},
		{"burst 1", with("XPORTCN_BURST", "1"), func(s *app.Settings) bool { return s.Burst["xportcn"] == 1 }},
		{"burst ceiling", with("XPORTCN_BURST", "10000"), func(s *app.Settings) bool { return s.Burst["xportcn"] == 10000 }},
		{"poll 1s", with("POLL_SCHEDULE", "1s, 24h"), func(s *app.Settings) bool {
			return len(s.PollSchedule) == 2 && s.PollSchedule[0] == time.Second && s.PollSchedule[1] == 24*time.Hour
		}},
		{"deadline 1m, retention equal", with("ORDER_DEADLINE", "1m", "ORDER_RETENTION", "1m"), func(s *app.Settings) bool {
			return s.Deadline == time.Minute && s.Retention == time.Minute
		}},
		{"settle window bounds", with("CREATE_SETTLE_WINDOW", "10s"), func(s *app.Settings) bool { return s.SettleWindow == 10*time.Second }},
		{"backoff default", with(), func(s *app.Settings) bool { return s.RetryBackoffMax == pipeline.DefaultBackoffMax }},
		{"backoff 30s", with("RETRY_BACKOFF_MAX", "30s"), func(s *app.Settings) bool { return s.RetryBackoffMax == 30*time.Second }},
		{"backoff 2s with test timings", with("TEST_TIMINGS", "1", "RETRY_BACKOFF_MAX", "2s"), func(s *app.Settings) bool { return s.RetryBackoffMax == 2*time.Second }},
		{"shutdown just above the task timeout", with("SHUTDOWN_TIMEOUT", (pipeline.LongestTimeout + time.Millisecond).String()), func(s *app.Settings) bool {
			return s.ShutdownTimeout > pipeline.LongestTimeout
		}},
		{"shutdown ceiling", with("SHUTDOWN_TIMEOUT", "1h"), func(s *app.Settings) bool { return s.ShutdownTimeout == time.Hour }},
		{"token of 16", with("ADMIN_TOKEN", "abcdefghijklmnop"), func(s *app.Settings) bool { return s.AdminToken == "abcdefghijklmnop" }},
		{"loopback without token", with("ADMIN_ADDR", "127.0.0.1:0", "ADMIN_TOKEN", ""), func(s *app.Settings) bool { return s.AdminToken == "" }},
		{"any-host port", with("ADMIN_ADDR", ":8080"), func(s *app.Settings) bool { return s.AdminAddr == ":8080" }},
		{"test timings", with("TEST_TIMINGS", "1", "POLL_SCHEDULE", "100ms", "SHUTDOWN_TIMEOUT", "5s", "ORDER_DEADLINE", "1s", "CREATE_SETTLE_WINDOW", "100ms"),
			func(s *app.Settings) bool { return s.TestTimings && s.ShutdownTimeout == 5*time.Second }},
		// make run: no settings at all is the embedded default.
		{"embedded default", map[string]string{}, func(s *app.Settings) bool { return s.Embedded() && !s.EmbeddedAsked }},
		{"embedded fast polls", map[string]string{"POLL_SCHEDULE": "100ms"}, func(s *app.Settings) bool { return s.PollSchedule[0] == 100*time.Millisecond }},
		{"embedded meant", with("REDIS_URL", "", "EMBEDDED", "1"), func(s *app.Settings) bool { return s.Embedded() && s.EmbeddedAsked }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := fromEnv(c.env)
			if err != nil {
				t.Fatalf("refused:\n%s", err)
			}
			if !c.check(s) {
				t.Errorf("read as %+v", s)
			}
		})
	}
}

// TestValidateSettingsChangedAfterFromEnv: Run checks the settings it is
// given, also when a caller changed them after FromEnv.
func TestValidateSettingsChangedAfterFromEnv(t *testing.T) {
	s, err := fromEnv(prodEnv())
	if err != nil {
		t.Fatal(err)
	}
	s.AdminAddr = "garbage"
	s.Rate["depal"] = 0
	err = app.Run(t.Context(), s, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "ADMIN_ADDR: want host:port") || !strings.Contains(err.Error(), "DEPAL_RATE: ") {
		t.Fatalf("Run = %v, want the refusal of ADMIN_ADDR and DEPAL_RATE", err)
	}
}
