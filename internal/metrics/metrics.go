// Package metrics is orderflow's Prometheus instrumentation: a private
// registry holding the provider gate's collectors (it implements
// gate.Observer), the pipeline's task and order collectors, and collectors
// read at scrape time (asynq's queues, orders by state). Names carry their
// unit, only counters end in _total, and every label has a bounded set of
// values (never an id or an error string).
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"orderflow/providers"
	"orderflow/tasks"
)

// Metrics owns a private *prometheus.Registry and orderflow's collectors.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests           *prometheus.CounterVec
	requestDuration    *prometheus.HistogramVec
	limiterWait        *prometheus.HistogramVec
	deferrals          *prometheus.CounterVec
	breakerState       *prometheus.GaugeVec
	breakerTransitions *prometheus.CounterVec
	tasks              *prometheus.CounterVec
	taskDuration       *prometheus.HistogramVec
	orderTransitions   *prometheus.CounterVec
	repairs            *prometheus.CounterVec

	queues *queueCollector
	orders *ordersCollector
}

// New returns a Metrics with every collector registered in a new private
// registry, together with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_provider_requests_total",
			Help: "Calls that reached a provider, by operation and outcome class (ok, transient, throttled, auth, permanent, unknown_outcome).",
		}, []string{"provider", "op", "class"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderflow_provider_request_duration_seconds",
			Help:    "Duration of calls that reached a provider.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "op"}),
		limiterWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderflow_ratelimit_wait_seconds",
			Help:    "Time a call slept for the provider's rate limit before going (0 when it did not wait).",
			Buckets: []float64{0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"provider"}),
		deferrals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_deferrals_total",
			Help: "Provider calls deferred (rescheduled, not counted as attempts), by reason (rate_limit, breaker_open, throttled).",
		}, []string{"provider", "reason"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orderflow_breaker_state",
			Help: "The provider's circuit breaker in this process: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		breakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_breaker_transitions_total",
			Help: "Circuit breaker state changes, by the state entered (closed, half_open, open).",
		}, []string{"provider", "state"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_tasks_processed_total",
			Help: "Tasks processed, by task type and outcome (ok, retry, deferred, archived).",
		}, []string{"type", "outcome"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderflow_task_duration_seconds",
			Help:    "Duration of task processing, by task type.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"type"}),
		orderTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_order_transitions_total",
			Help: "Order state changes, by provider and the state entered.",
		}, []string{"provider", "to"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_repairs_total",
			Help: "Steps of live orders that had no task queued (a task deleted, a step lost with Redis's last writes), re-queued by the repair sweep, by provider and task type.",
		}, []string{"provider", "type"}),
		queues: newQueueCollector(),
		orders: newOrdersCollector(),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.limiterWait, m.deferrals,
		m.breakerState, m.breakerTransitions,
		m.tasks, m.taskDuration, m.orderTransitions, m.repairs,
		m.queues, m.orders,
	)
	return m
}

// Label values known in advance, for Preset: ops are the provider calls
// the gate observes; classes, reasons and breaker states are providers'
// and the gate's words; outcomes are the pipeline handler's.
var (
	ops           = []string{"preview", "create", "lookup", "details", "trace", "cancel"}
	classes       = []providers.Class{providers.ClassNone, providers.ClassTransient, providers.ClassThrottled, providers.ClassAuth, providers.ClassPermanent, providers.ClassUnknownOutcome}
	reasons       = []string{providers.ReasonRateLimit, providers.ReasonBreakerOpen, providers.ReasonThrottled}
	breakerStates = []string{"closed", "half_open", "open"}
	outcomes      = []string{"ok", "retry", "deferred", "archived"}
)

// Preset makes every family whose label values are known present from
// now on, at 0: the per-process families for each provider in served
// (requests, waits, deferrals, breaker closed, transitions, repairs), the
// task families for every task type, the queue gauges for every queue in
// queues (0 while asynq does not know it), and the fleet-wide orders gauge
// for every provider and live state. Dashboards and alerts then see 0, not
// "no data", before the first traffic.
func (m *Metrics) Preset(served, queues []string) {
	for _, p := range served {
		for _, op := range ops {
			for _, c := range classes {
				m.requests.WithLabelValues(p, op, c.String())
			}
			m.requestDuration.WithLabelValues(p, op)
		}
		m.limiterWait.WithLabelValues(p)
		for _, r := range reasons {
			m.deferrals.WithLabelValues(p, r)
		}
		m.breakerState.WithLabelValues(p).Set(breakerValues["closed"])
		for _, st := range breakerStates {
			m.breakerTransitions.WithLabelValues(p, st)
		}
		for _, st := range providers.States {
			m.orderTransitions.WithLabelValues(p, string(st))
		}
		for _, t := range tasks.Types {
			m.repairs.WithLabelValues(p, t)
		}
	}
	for _, t := range tasks.Types {
		for _, o := range outcomes {
			m.tasks.WithLabelValues(t, o)
		}
		m.taskDuration.WithLabelValues(t)
	}
	m.queues.known(queues)
	m.orders.known(providers.Names)
}

// Registry is the private registry, for registering more collectors or for
// tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the private registry in the Prometheus exposition format.
// A collector that fails (Redis unreachable while reading the queues) drops
// its own metrics from the scrape and the rest is served; the failures are
// counted in promhttp_metric_handler_errors_total.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// Request implements gate.Observer: a call that reached provider.
func (m *Metrics) Request(provider, op string, class providers.Class, d time.Duration) {
	m.requests.WithLabelValues(provider, op, class.String()).Inc()
	m.requestDuration.WithLabelValues(provider, op).Observe(d.Seconds())
}

// LimiterWait implements gate.Observer: time slept for the rate limit.
func (m *Metrics) LimiterWait(provider string, d time.Duration) {
	m.limiterWait.WithLabelValues(provider).Observe(d.Seconds())
}

// Deferred implements gate.Observer: a deferred call.
func (m *Metrics) Deferred(provider, reason string) {
	m.deferrals.WithLabelValues(provider, reason).Inc()
}

// BreakerState implements gate.Observer: the breaker entered state
// ("closed", "half_open" or "open"; anything else is recorded as a
// transition and leaves the gauge alone).
func (m *Metrics) BreakerState(provider string, state string) {
	m.breakerTransitions.WithLabelValues(provider, state).Inc()
	if v, ok := breakerValues[state]; ok {
		m.breakerState.WithLabelValues(provider).Set(v)
	}
}

var breakerValues = map[string]float64{"closed": 0, "half_open": 1, "open": 2}

// TaskProcessed records one task processed: outcome is "ok", "retry",
// "deferred" or "archived" (internal/pipeline's handler).
func (m *Metrics) TaskProcessed(taskType string, outcome string, d time.Duration) {
	m.tasks.WithLabelValues(taskType, outcome).Inc()
	m.taskDuration.WithLabelValues(taskType).Observe(d.Seconds())
}

// OrderTransition records an order of provider moving from one state to
// another. Only the state entered is a label (from would multiply the
// series for little use; the order's history has it).
func (m *Metrics) OrderTransition(provider, from, to string) {
	m.orderTransitions.WithLabelValues(provider, to).Inc()
}

// StepRepaired records a lost step the repair sweep re-queued.
func (m *Metrics) StepRepaired(provider, taskType string) {
	m.repairs.WithLabelValues(provider, taskType).Inc()
}

// WatchQueues makes every scrape read asynq's queues through insp:
// orderflow_queue_size{queue,state} and orderflow_queue_latency_seconds{queue}.
// A later call replaces insp; nil stops the reading.
func (m *Metrics) WatchQueues(insp *asynq.Inspector) { m.queues.set(insp) }

// OrdersInState makes every scrape report orderflow_orders{provider,state}
// from count, which answers provider -> state -> number of orders. A later
// call replaces count; nil stops the reporting. count must be fast and safe
// for concurrent use; it answers nil when it could not count (Redis
// unreachable), and the family is then left out of that scrape.
func (m *Metrics) OrdersInState(count func() map[string]map[string]int64) { m.orders.set(count) }

// queueCollector reads asynq's queues on each scrape.
type queueCollector struct {
	size    *prometheus.Desc
	latency *prometheus.Desc

	mu    sync.Mutex
	insp  *asynq.Inspector
	queue []string // reported even before asynq knows them
}

func newQueueCollector() *queueCollector {
	return &queueCollector{
		size: prometheus.NewDesc("orderflow_queue_size",
			"Tasks in an asynq queue, by state (pending, active, scheduled, retry, archived, completed).",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("orderflow_queue_latency_seconds",
			"Age of the oldest pending task in an asynq queue.",
			[]string{"queue"}, nil),
	}
}

func (c *queueCollector) set(insp *asynq.Inspector) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insp = insp
}

func (c *queueCollector) known(queues []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append([]string(nil), queues...)
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.latency
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	insp, known := c.insp, c.queue
	c.mu.Unlock()
	if insp == nil {
		return
	}
	queues, err := insp.Queues()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.size, err)
		return
	}
	var unknown []string // no task yet: every state 0
	for _, q := range known {
		if !slices.Contains(queues, q) {
			unknown = append(unknown, q)
		}
	}
	for _, q := range append(queues, unknown...) {
		info, err := &asynq.QueueInfo{Queue: q}, error(nil)
		if !slices.Contains(unknown, q) {
			info, err = insp.GetQueueInfo(q)
		}
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.size, err)
			continue
		}
		for _, s := range []struct {
			state string
			n     int
		}{
			{"pending", info.Pending}, {"active", info.Active}, {"scheduled", info.Scheduled},
			{"retry", info.Retry}, {"archived", info.Archived}, {"completed", info.Completed},
		} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(s.n), q, s.state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
}

// ordersCollector reports orders by state from a callback on each scrape.
// The callback reads the fleet-wide counts in Redis, so every pod reports
// the same values: dashboards take max() across pods, never sum().
type ordersCollector struct {
	desc *prometheus.Desc

	mu        sync.Mutex
	count     func() map[string]map[string]int64
	providers []string // reported at 0 in every live state they lack
}

func newOrdersCollector() *ordersCollector {
	return &ordersCollector{desc: prometheus.NewDesc("orderflow_orders",
		"Live (not ended) orders by provider and current state: a fleet-wide gauge read from Redis's counts at scrape time, the same on every pod (aggregate with max(), not sum()).", []string{"provider", "state"}, nil)}
}

func (c *ordersCollector) set(count func() map[string]map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count = count
}

func (c *ordersCollector) known(ps []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.providers = append([]string(nil), ps...)
}

// Describe implements prometheus.Collector.
func (c *ordersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *ordersCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	count, known := c.count, c.providers
	c.mu.Unlock()
	if count == nil {
		return
	}
	counts := count()
	if counts == nil { // could not count: no series rather than zeros
		return
	}
	for _, p := range known {
		for _, st := range providers.States {
			if _, ok := counts[p][string(st)]; !ok && !st.Terminal() {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 0, p, string(st))
			}
		}
	}
	for provider, states := range counts {
		for state, n := range states {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), provider, state)
		}
	}
}
