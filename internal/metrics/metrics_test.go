package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"orderflow/internal/fakeprovider"
	"orderflow/internal/gate"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// Metrics is the gate's observer.
var _ gate.Observer = (*Metrics)(nil)

// scrape GETs the handler's exposition.
func scrape(tb testing.TB, m *Metrics) string {
	tb.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}

func TestObserverMovesCollectors(t *testing.T) {
	m := New()
	m.Request("xportcn", "create", providers.ClassNone, 120*time.Millisecond)
	m.Request("xportcn", "create", providers.ClassTransient, time.Second)
	m.Request("xportcn", "create", providers.ClassTransient, time.Second)
	m.LimiterWait("depal", 300*time.Millisecond)
	m.Deferred("depal", providers.ReasonThrottled)
	m.BreakerState("xportcn", gate.StateOpen)

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"requests ok", testutil.ToFloat64(m.requests.WithLabelValues("xportcn", "create", "ok")), 1},
		{"requests transient", testutil.ToFloat64(m.requests.WithLabelValues("xportcn", "create", "transient")), 2},
		{"deferrals", testutil.ToFloat64(m.deferrals.WithLabelValues("depal", "throttled")), 1},
		{"breaker open", testutil.ToFloat64(m.breakerState.WithLabelValues("xportcn")), 2},
		{"transitions to open", testutil.ToFloat64(m.breakerTransitions.WithLabelValues("xportcn", "open")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requestDuration); n != 1 {
		t.Errorf("request duration series = %d, want 1", n)
	}
	if n := testutil.CollectAndCount(m.limiterWait); n != 1 {
		t.Errorf("limiter wait series = %d, want 1", n)
	}

	m.BreakerState("xportcn", gate.StateHalfOpen)
	if v := testutil.ToFloat64(m.breakerState.WithLabelValues("xportcn")); v != 1 {
		t.Errorf("breaker half-open = %v, want 1", v)
	}
	m.BreakerState("xportcn", gate.StateClosed)
	if v := testutil.ToFloat64(m.breakerState.WithLabelValues("xportcn")); v != 0 {
		t.Errorf("breaker closed = %v, want 0", v)
	}

	body := scrape(t, m)
	for _, want := range []string{
		`orderflow_provider_request_duration_seconds_count{op="create",provider="xportcn"} 3`,
		`orderflow_ratelimit_wait_seconds_sum{provider="depal"} 0.3`,
		`orderflow_breaker_transitions_total{provider="xportcn",state="half_open"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestPipelineCollectors(t *testing.T) {
	m := New()
	m.TaskProcessed("order:create", "ok", 2*time.Second)
	m.TaskProcessed("order:create", "deferred", time.Millisecond)
	m.TaskProcessed("order:create", "deferred", time.Millisecond)
	m.OrderTransition("depal", "created", "paid")
	m.OrderTransition("depal", "awaiting_payment", "paid")

	if v := testutil.ToFloat64(m.tasks.WithLabelValues("order:create", "deferred")); v != 2 {
		t.Errorf("deferred tasks = %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.orderTransitions.WithLabelValues("depal", "paid")); v != 2 {
		t.Errorf("transitions to paid = %v, want 2", v)
	}
	want := `
# HELP orderflow_task_duration_seconds Duration of task processing, by task type.
# TYPE orderflow_task_duration_seconds histogram
orderflow_task_duration_seconds_bucket{type="order:create",le="0.01"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="0.025"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="0.05"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="0.1"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="0.25"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="0.5"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="1"} 2
orderflow_task_duration_seconds_bucket{type="order:create",le="2.5"} 3
orderflow_task_duration_seconds_bucket{type="order:create",le="5"} 3
orderflow_task_duration_seconds_bucket{type="order:create",le="10"} 3
orderflow_task_duration_seconds_bucket{type="order:create",le="30"} 3
orderflow_task_duration_seconds_bucket{type="order:create",le="60"} 3
orderflow_task_duration_seconds_bucket{type="order:create",le="+Inf"} 3
orderflow_task_duration_seconds_sum{type="order:create"} 2.002
orderflow_task_duration_seconds_count{type="order:create"} 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "orderflow_task_duration_seconds"); err != nil {
		t.Error(err)
	}
}

func TestOrdersInState(t *testing.T) {
	m := New()
	if n, err := testutil.GatherAndCount(m.Registry(), "orderflow_orders"); err != nil || n != 0 {
		t.Fatalf("before OrdersInState: %d series, %v; want 0", n, err)
	}
	counts := map[string]map[string]int64{"xportcn": {"created": 3, "paid": 1}}
	m.OrdersInState(func() map[string]map[string]int64 { return counts })
	want := `
# HELP orderflow_orders Live (not ended) orders by provider and current state: a fleet-wide gauge read from Redis's counts at scrape time, the same on every pod (aggregate with max(), not sum()).
# TYPE orderflow_orders gauge
orderflow_orders{provider="xportcn",state="created"} 3
orderflow_orders{provider="xportcn",state="paid"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "orderflow_orders"); err != nil {
		t.Fatal(err)
	}
	// The values move with the callback's answer at the next scrape.
	counts = map[string]map[string]int64{"xportcn": {"created": 2, "paid": 2}, "depal": {"failed": 1}}
	want = `
# HELP orderflow_orders Live (not ended) orders by provider and current state: a fleet-wide gauge read from Redis's counts at scrape time, the same on every pod (aggregate with max(), not sum()).
# TYPE orderflow_orders gauge
orderflow_orders{provider="depal",state="failed"} 1
orderflow_orders{provider="xportcn",state="created"} 2
orderflow_orders{provider="xportcn",state="paid"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "orderflow_orders"); err != nil {
		t.Fatal(err)
	}
}

func TestWatchQueues(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, s *redistest.Server) {
		m := New()
		opt := asynq.RedisClientOpt{Addr: s.Addr}
		client := asynq.NewClient(opt)
		t.Cleanup(func() { _ = client.Close() })
		insp := asynq.NewInspector(opt)
		t.Cleanup(func() { _ = insp.Close() })

		m.WatchQueues(insp)
		if body := scrape(t, m); strings.Contains(body, "orderflow_queue_size{") {
			t.Fatalf("queue sizes before any queue exists:\n%s", grep(body, "orderflow_queue"))
		}
		for i := 0; i < 2; i++ {
			if _, err := client.Enqueue(asynq.NewTask("order:preview", []byte(`{}`)), asynq.Queue("xportcn")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := client.Enqueue(asynq.NewTask("order:poll", nil), asynq.Queue("xportcn"), asynq.ProcessIn(time.Hour)); err != nil {
			t.Fatal(err)
		}
		body := scrape(t, m)
		for _, want := range []string{
			`orderflow_queue_size{queue="xportcn",state="pending"} 2`,
			`orderflow_queue_size{queue="xportcn",state="scheduled"} 1`,
			`orderflow_queue_size{queue="xportcn",state="active"} 0`,
			`orderflow_queue_latency_seconds{queue="xportcn"}`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("scrape lacks %q; queue lines:\n%s", want, grep(body, "orderflow_queue"))
			}
		}
	})
}

func TestWatchQueuesRedisDown(t *testing.T) {
	m := New()
	m.TaskProcessed("order:preview", "ok", time.Millisecond)
	s := redistest.Mini(t)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.Addr})
	t.Cleanup(func() { _ = insp.Close() })
	m.WatchQueues(insp)
	s.Mini.Close()
	// The queues drop out; the rest is still served.
	body := scrape(t, m)
	if !strings.Contains(body, `orderflow_tasks_processed_total{outcome="ok",type="order:preview"} 1`) {
		t.Fatalf("scrape with Redis down lost the other metrics:\n%s", grep(body, "orderflow_"))
	}
	if strings.Contains(body, "orderflow_queue_size{") {
		t.Fatal("queue sizes reported with Redis down")
	}
}

// grep returns the lines of s containing sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Each help text that lists a label's values lists exactly the values the
// callers pass.
func TestHelpListsTheValuesEmitted(t *testing.T) {
	m := New()
	var classes []string
	for c := providers.ClassNone; c <= providers.ClassUnknownOutcome; c++ {
		classes = append(classes, c.String())
	}
	for _, c := range []struct {
		name string
		vec  prometheus.Collector
		want []string
	}{
		{"requests", m.requests, classes},
		{"deferrals", m.deferrals, []string{providers.ReasonRateLimit, providers.ReasonBreakerOpen, providers.ReasonThrottled}},
		{"breaker transitions", m.breakerTransitions, []string{gate.StateClosed, gate.StateHalfOpen, gate.StateOpen}},
		// internal/pipeline's handler: the outcomes of Handlers.ProcessTask.
		{"tasks", m.tasks, []string{"ok", "retry", "deferred", "archived"}},
	} {
		ch := make(chan *prometheus.Desc, 1)
		c.vec.Describe(ch)
		desc := (<-ch).String()
		// The list is the help's last parenthesis: "..., by reason (a, b, c)."
		help := desc[strings.Index(desc, `help: "`):]
		open, end := strings.LastIndex(help, "("), strings.LastIndex(help, ")")
		if open < 0 || end < open {
			t.Errorf("%s: no list of values in %s", c.name, desc)
			continue
		}
		got := strings.Split(help[open+1:end], ", ")
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: help lists %v, the code emits %v", c.name, got, want)
		}
	}
}

// Preset makes every family with known label values present at 0 before
// any traffic: per-process families for the served providers only, the
// task families for every type, the queue gauges for the known queues
// (even before asynq knows them), the orders gauge for every provider and
// live state.
func TestPresetBeforeAnyTraffic(t *testing.T) {
	m := New()
	s := redistest.Mini(t)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.Addr})
	t.Cleanup(func() { _ = insp.Close() })
	m.WatchQueues(insp)
	m.OrdersInState(func() map[string]map[string]int64 {
		return map[string]map[string]int64{"depal": {"paid": 2}}
	})
	m.Preset([]string{"depal"}, []string{"depal:create", "orderflow:notify"})
	body := scrape(t, m)
	for _, want := range []string{
		`orderflow_provider_requests_total{class="unknown_outcome",op="cancel",provider="depal"} 0`,
		`orderflow_provider_request_duration_seconds_count{op="trace",provider="depal"} 0`,
		`orderflow_ratelimit_wait_seconds_count{provider="depal"} 0`,
		`orderflow_deferrals_total{provider="depal",reason="breaker_open"} 0`,
		`orderflow_breaker_state{provider="depal"} 0`,
		`orderflow_breaker_transitions_total{provider="depal",state="open"} 0`,
		`orderflow_order_transitions_total{provider="depal",to="expired"} 0`,
		`orderflow_repairs_total{provider="depal",type="order:poll"} 0`,
		`orderflow_tasks_processed_total{outcome="archived",type="order:notify"} 0`,
		`orderflow_task_duration_seconds_count{type="order:expire"} 0`,
		`orderflow_queue_size{queue="depal:create",state="pending"} 0`,
		`orderflow_queue_size{queue="orderflow:notify",state="archived"} 0`,
		`orderflow_queue_latency_seconds{queue="depal:create"} 0`,
		`orderflow_orders{provider="depal",state="paid"} 2`,
		`orderflow_orders{provider="depal",state="needs_review"} 0`,
		`orderflow_orders{provider="xportcn",state="received"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, absent := range []string{
		`provider="xportcn",op=`, `orderflow_breaker_state{provider="xportcn"}`, // not served by this process
		`orderflow_orders{provider="depal",state="completed"}`, // ended states are not counted
	} {
		if strings.Contains(body, absent) {
			t.Errorf("scrape has %q:\n%s", absent, grep(body, absent))
		}
	}
	// A count that failed reports nothing rather than zeros.
	m.OrdersInState(func() map[string]map[string]int64 { return nil })
	if body := scrape(t, m); strings.Contains(body, "orderflow_orders{") {
		t.Errorf("orders reported while they could not be counted:\n%s", grep(body, "orderflow_orders{"))
	}
}

// Preset's label values are the ones the callers emit: the gate's ops,
// the provider classes and reasons, the breaker's states.
func TestPresetValuesAreTheEmittedOnes(t *testing.T) {
	m := New()
	g := gate.Wrap(fakeprovider.New(providers.Depal), gate.Config{Observer: m})
	ctx := context.Background()
	req := &providers.OrderRequest{Provider: providers.Depal, OutOrderID: "ops-1"}
	q, _ := g.Preview(ctx, req)
	_, _ = g.Create(ctx, req, q)
	_, _ = g.Lookup(ctx, "ops-1")
	_, _ = g.Details(ctx, "1")
	_, _ = g.Trace(ctx, "1", &providers.ParcelRef{})
	_ = g.Cancel(ctx, "1", "test")
	ch := make(chan prometheus.Metric, 64)
	m.requests.Collect(ch)
	close(ch)
	var ops []string
	for c := range ch {
		var pb dto.Metric
		if err := c.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "op" && !slices.Contains(ops, l.GetValue()) {
				ops = append(ops, l.GetValue())
			}
		}
	}
	if got, want := slices.Sorted(slices.Values(ops)), slices.Sorted(slices.Values(ops)); !slices.Equal(got, want) {
		t.Errorf("the gate observes ops %v, Preset presets %v", got, want)
	}
	var all, preset []string
	for c := providers.ClassNone; c <= providers.ClassUnknownOutcome; c++ {
		all = append(all, c.String())
	}
	for _, c := range classes {
		preset = append(preset, c.String())
	}
	if !slices.Equal(preset, all) {
		t.Errorf("classes %v, Preset presets %v", all, preset)
	}
	if want := []string{gate.StateClosed, gate.StateHalfOpen, gate.StateOpen}; !slices.Equal(breakerStates, want) {
		t.Errorf("breaker states %v, Preset presets %v", want, breakerStates)
	}
	if want := []string{providers.ReasonRateLimit, providers.ReasonBreakerOpen, providers.ReasonThrottled}; !slices.Equal(reasons, want) {
		t.Errorf("reasons %v, Preset presets %v", want, reasons)
	}
}
