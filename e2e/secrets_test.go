package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers/sim"
)

// TestFullRunLeaksNoSecretAndMovesMetrics runs the worker as `worker` does
// (app.Run, settings from the environment) against a password-protected
// redis-server and the simulator with faults and short-lived tokens, logs
// at debug level, and then scans every log line, every order record and
// every task error for each secret it configured. It also checks that the
// metrics the operators rely on appear and move.
func TestFullRunLeaksNoSecretAndMovesMetrics(t *testing.T) {
	secrets := map[string]string{
		"redis password":        "redis-pw-Q7x9",
		"xportcn access secret": "xp-secret-Z3k8",
		"depal app secret":      "dp-secret-M4n2",
		"admin token":           "admin-token-R5t1",
		"callback secret":       "cb-secret-W8v6",
	}
	srv := redistest.Real(t, "requirepass "+secrets["redis password"])
	s := testkit.StartSim(t, sim.Config{
		Xportcn:  sim.XportcnCreds{AccessKey: "xp-key", AccessSecret: secrets["xportcn access secret"], UserID: "u1"},
		Depal:    sim.DepalCreds{AppKey: "dpkey", AppSecret: secrets["depal app secret"]},
		Clock:    sim.NewAccelClock(3600),
		Timeline: testkit.FastTimeline,
		Faults:   sim.Faults{Seed: 11, HTTP5xx: 0.05, Throttle: 0.03, CommitThenDrop: 0.1},
	})
	var hooks sync.Mutex
	var received []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks.Lock()
		received = append(received, string(b)+" "+r.Header.Get("X-Orderflow-Signature"))
		hooks.Unlock()
	}))
	t.Cleanup(upstream.Close)

	env := map[string]string{
		"REDIS_URL":  fmt.Sprintf("redis://:%s@%s/0", secrets["redis password"], srv.Addr),
		"ADMIN_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": secrets["admin token"],
		"CALLBACK_SECRET": secrets["callback secret"], "CALLBACK_ALLOW_PRIVATE": "1", // the upstream is on loopback
		"XPORTCN_BASE_URL": s.XportcnURL(), "XPORTCN_ACCESS_KEY": "xp-key",
		"XPORTCN_ACCESS_SECRET": secrets["xportcn access secret"], "XPORTCN_USER_ID": "u1",
		"DEPAL_BASE_URL": s.DepalURL(), "DEPAL_APP_KEY": "dpkey", "DEPAL_APP_SECRET": secrets["depal app secret"],
		"XPORTCN_RATE": "1000", "XPORTCN_BURST": "1000", "DEPAL_RATE": "1000", "DEPAL_BURST": "1000", // the ceiling: not the subject here
		"POLL_SCHEDULE": "200ms,500ms,1s", "TEST_TIMINGS": "1", "TASK_CHECK_INTERVAL": "100ms",
		"CREATE_SETTLE_WINDOW": settleWindow.String(),
		"RETRY_BACKOFF_MAX":    retryBackoffMax.String(),
	}
	settings, err := app.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan app.Info, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, settings, log, func(i app.Info) { infoc <- i }) }()
	var info app.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not start")
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	scrape := func() string {
		code, body := httpDo(t, "GET", info.AdminURL+"/metrics", "", nil)
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	before := scrape()

	batch := testkit.Batch("sec", 40)
	for i := range batch {
		if i%4 == 0 {
			batch[i].Req.CallbackURL = upstream.URL + "/hook"
		}
	}
	var reqs []any
	for _, p := range batch {
		reqs = append(reqs, p.Req)
	}
	body, _ := json.Marshal(reqs)
	if code, out := httpDo(t, "POST", info.AdminURL+"/v1/orders", secrets["admin token"], body); code != http.StatusOK {
		t.Fatalf("POST /v1/orders: %d %s", code, out)
	}
	// Revoke Depal's tokens now and then: the client must refresh on 510.
	revoke := make(chan struct{})
	go func() {
		t := time.NewTicker(700 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-revoke:
				return
			case <-t.C:
				s.ExpireTokens()
			}
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: secrets["redis password"]})
	t.Cleanup(func() { _ = rdb.Close() })
	st := orders.NewStore(rdb, orders.Config{})
	recs := testkit.WaitEnded(t, st, batch, 3*time.Minute)
	close(revoke)
	testkit.CheckStates(t, batch, recs)
	if c := s.Counters(); c.TokenExpired == 0 {
		t.Errorf("no Depal token expired mid-run (counters %+v): the refresh path was not exercised", c)
	}

	after := scrape()
	for _, name := range []string{
		"orderflow_provider_requests_total", "orderflow_provider_request_duration_seconds_bucket",
		"orderflow_tasks_processed_total", "orderflow_task_duration_seconds_bucket",
		"orderflow_order_transitions_total", "orderflow_queue_size", "orderflow_deferrals_total",
	} {
		if !strings.Contains(after, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if a, b := sumMetric(after, "orderflow_order_transitions_total"), sumMetric(before, "orderflow_order_transitions_total"); a <= b {
		t.Errorf("orderflow_order_transitions_total did not move: %v -> %v", b, a)
	}

	// Give the callbacks a moment, then stop and scan everything.
	testkit.WaitFor(t, 20*time.Second, "callbacks delivered", func() bool {
		hooks.Lock()
		defer hooks.Unlock()
		return len(received) >= 10
	})
	stop()
	var haystack strings.Builder
	haystack.WriteString(logs.String())
	for _, r := range recs {
		b, _ := json.Marshal(r)
		haystack.Write(b)
	}
	keys, _ := rdb.Keys(context.Background(), "asynq:*").Result()
	for _, k := range keys {
		if typ, _ := rdb.Type(context.Background(), k).Result(); typ == "hash" {
			vals, _ := rdb.HGetAll(context.Background(), k).Result()
			for _, v := range vals {
				haystack.WriteString(v)
			}
		}
	}
	hooks.Lock()
	haystack.WriteString(strings.Join(received, "\n"))
	hooks.Unlock()
	text := haystack.String()
	if len(logs.String()) < 1000 {
		t.Fatalf("only %d bytes of logs: the scan would prove nothing", len(logs.String()))
	}
	for what, secret := range secrets {
		if i := strings.Index(text, secret); i >= 0 {
			lo, hi := max(0, i-200), min(len(text), i+100)
			t.Errorf("the %s appears in the run's output: …%s…", what, text[lo:hi])
		}
	}
}

var sampleLine = regexp.MustCompile(`^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`)

func sumMetric(exposition, name string) float64 {
	var sum float64
	for _, l := range strings.Split(exposition, "\n") {
		m := sampleLine.FindStringSubmatch(l)
		if m != nil && m[1] == name {
			v, _ := strconv.ParseFloat(m[3], 64)
			sum += v
		}
	}
	return sum
}

func httpDo(t *testing.T, method, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
