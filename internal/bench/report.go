package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Target is one figure of issue 13's table against its goal.
type Target struct {
	Name  string // the JSON name of the figure
	What  string
	Value float64
	Goal  string
	Met   bool
}

// Targets lists the figures with a goal, of the scenarios that ran.
func (r *Report) Targets() []Target {
	var ts []Target
	add := func(scenario, name, what string, v float64, goal string, met bool) {
		if r.Ran[scenario] {
			ts = append(ts, Target{Name: name, What: what, Value: v, Goal: goal, Met: met})
		}
	}
	add("quota", "quota_use", "fleet quota use", r.Quota.Use, ">= 0.90", r.Quota.Use >= 0.9)
	add("quota", "quota_violations", "fleet quota violations", float64(r.Quota.Violations), "0", r.Quota.Violations == 0)
	ov := ratio(r.PipelineTPS, r.NoopTPS)
	add("overhead", "overhead_ratio", "pipeline overhead (real ÷ no-op tasks/s)", ov, ">= 0.50", ov >= 0.5)
	add("latency", "latency_p50_ms", "idle submit -> first provider call p50, ms", ms(r.Latency.P50), "<= 20", r.Latency.P50 <= 20*time.Millisecond)
	add("latency", "latency_p99_ms", "idle submit -> first provider call p99, ms", ms(r.Latency.P99), "<= 100", r.Latency.P99 <= 100*time.Millisecond)
	iso := ratio(r.IsolatedOPS, r.BothUpOPS)
	add("isolation", "isolation_ratio", "isolation (Depal, Xportcn down ÷ both up)", iso, ">= 0.80", iso >= 0.8)
	if len(r.Memory) > 0 {
		m := r.Memory[0]
		add("memory", "memory_inflight_bytes", "Redis memory per in-flight order, B", m.InFlight, "<= 2048", m.InFlight <= 2048)
		add("memory", "memory_ended_bytes", "Redis memory per ended, retained order, B", m.Ended, "<= 1536", m.Ended <= 1536)
	}
	if rt := r.RoundTrips; rt != nil {
		add("roundtrips", "roundtrips_to_created", "Redis round trips, submit -> created", rt.ToCreated.RoundTrips, "<= 10", rt.ToCreated.RoundTrips <= 10)
		add("roundtrips", "roundtrips_per_poll", "Redis round trips per poll run", rt.PerPoll.RoundTrips, "<= 3", rt.PerPoll.RoundTrips <= 3)
	}
	if len(r.Idle) > 0 {
		i := r.Idle[0]
		add("idle", "idle_redis_cpu_pct", fmt.Sprintf("idle pod's Redis load, %% of a core (TASK_CHECK_INTERVAL %s)", i.TaskCheckInterval),
			100*i.RedisCPU, "<= 1", i.RedisCPU <= 0.01)
	}
	return ts
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Fprint writes the report as the text BENCHMARKS.md quotes: each
// scenario that ran, then the targets.
func (r *Report) Fprint(w io.Writer, quota float64) {
	rs := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	fmt.Fprintf(w, "orderflow bench: %d CPUs, %s %s/%s, run took %s\n\n", r.CPUs, runtime.Version(), runtime.GOOS, runtime.GOARCH, r.Elapsed.Round(time.Second))
	if r.Ran["quota"] {
		fmt.Fprintf(w, "quota use (provider quota %.0f req/s, window %s):\n", quota, r.Quota.Window)
		for _, q := range []QuotaResult{r.Quota, r.BaselineQuota} {
			fmt.Fprintf(w, "  %-52s %6.1f req/s  use %.2f  within quota %.2f  violations %d\n",
				q.Workers, q.PerSecond, q.Use, q.Accepted, q.Violations)
		}
		fmt.Fprintf(w, "  ratio fleet/baseline (requests/s): %s\n\n", rs(r.Quota.Use, r.BaselineQuota.Use))
	}
	if r.Ran["overhead"] {
		fmt.Fprintf(w, "pipeline overhead (unlimited zero-latency simulator):\n")
		fmt.Fprintf(w, "  real handlers: %.0f preview+create steps/s; no-op handlers: %.0f tasks/s (two per order); ratio %s\n\n",
			r.PipelineTPS, r.NoopTPS, rs(r.PipelineTPS, r.NoopTPS))
	}
	if r.Ran["latency"] {
		fmt.Fprintf(w, "latency, idle worker (n=%d, TASK_CHECK_INTERVAL %s):\n", r.Latency.N, taskCheckInterval)
		fmt.Fprintf(w, "  submit -> first provider call: p50 %s  p99 %s\n", round(r.Latency.P50), round(r.Latency.P99))
		fmt.Fprintf(w, "  enqueue -> no-op handler:      p50 %s  p99 %s\n", round(r.NoopLatency.P50), round(r.NoopLatency.P99))
		fmt.Fprintf(w, "  ratio p50 %s  p99 %s\n\n", rs(float64(r.Latency.P50), float64(r.NoopLatency.P50)),
			rs(float64(r.Latency.P99), float64(r.NoopLatency.P99)))
	}
	if r.Ran["isolation"] {
		fmt.Fprintf(w, "isolation (Depal orders created/s):\n")
		fmt.Fprintf(w, "  xportcn down: %.1f/s; both up: %.1f/s; ratio %s\n\n",
			r.IsolatedOPS, r.BothUpOPS, rs(r.IsolatedOPS, r.BothUpOPS))
	}
	if r.Ran["memory"] {
		fmt.Fprintf(w, "Redis memory per order (used_memory growth / %d orders):\n", memoryOrders)
		for _, m := range r.Memory {
			fmt.Fprintf(w, "  hash-max-listpack-value %-5d in flight %6.0f B  ended %6.0f B  (record encoding %s)\n",
				m.ListpackValue, m.InFlight, m.Ended, m.RecordEncoding)
		}
		fmt.Fprintln(w)
	}
	if rt := r.RoundTrips; rt != nil {
		fmt.Fprintf(w, "Redis per step (round trips counted on the clients; commands, scripts' own included, and CPU on the server):\n")
		fmt.Fprintf(w, "  submit -> created (n=%d):        %5.1f round trips  %5.1f commands  %5.0f µs Redis CPU\n",
			roundTripOrders, rt.ToCreated.RoundTrips, rt.ToCreated.Commands, float64(rt.ToCreated.CPU)/1e3)
		fmt.Fprintf(w, "  per poll run (%d orders every %s): %5.1f round trips  %5.1f commands  %5.0f µs Redis CPU\n\n",
			pollOrders, pollStep, rt.PerPoll.RoundTrips, rt.PerPoll.Commands, float64(rt.PerPoll.CPU)/1e3)
	}
	if r.Ran["idle"] {
		fmt.Fprintf(w, "idle worker pod (cmd/worker, both providers, %s window; redis-server alone: %.2f%% of a core):\n", idleWindow, 100*r.IdleBaselineCPU)
		for _, i := range r.Idle {
			fmt.Fprintf(w, "  TASK_CHECK_INTERVAL %-6s %6.0f Redis commands/s  Redis %.2f%% of a core  worker %.2f%% of a core\n",
				i.TaskCheckInterval, i.CmdsPerSec, 100*i.RedisCPU, 100*i.WorkerCPU)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "targets:\n")
	for _, t := range r.Targets() {
		met := "met"
		if !t.Met {
			met = "NOT MET"
		}
		fmt.Fprintf(w, "  %-62s %9.2f  target %-8s %s\n", t.What, t.Value, t.Goal, met)
	}
}

// JSON is every figure under its stable name (BENCHMARKS.md lists them);
// a figure of a scenario that did not run is null.
func (r *Report) JSON() map[string]any {
	out := map[string]any{"cpus": r.CPUs, "elapsed_s": r.Elapsed.Seconds()}
	set := func(scenario string, kv ...any) {
		for i := 0; i < len(kv); i += 2 {
			if r.Ran[scenario] {
				out[kv[i].(string)] = kv[i+1]
			} else {
				out[kv[i].(string)] = nil
			}
		}
	}
	set("quota", "quota_use", r.Quota.Use, "quota_within", r.Quota.Accepted, "quota_violations", r.Quota.Violations,
		"quota_req_per_s", r.Quota.PerSecond, "quota_baseline_use", r.BaselineQuota.Use,
		"quota_baseline_within", r.BaselineQuota.Accepted, "quota_baseline_violations", r.BaselineQuota.Violations)
	set("overhead", "overhead_ratio", ratio(r.PipelineTPS, r.NoopTPS), "pipeline_tasks_per_s", r.PipelineTPS, "noop_tasks_per_s", r.NoopTPS)
	set("latency", "latency_p50_ms", ms(r.Latency.P50), "latency_p99_ms", ms(r.Latency.P99),
		"noop_latency_p50_ms", ms(r.NoopLatency.P50), "noop_latency_p99_ms", ms(r.NoopLatency.P99),
		"task_check_interval_ms", ms(taskCheckInterval))
	set("isolation", "isolation_ratio", ratio(r.IsolatedOPS, r.BothUpOPS),
		"isolation_down_orders_per_s", r.IsolatedOPS, "isolation_up_orders_per_s", r.BothUpOPS)
	var mem [2]MemoryResult
	copy(mem[:], r.Memory)
	set("memory", "memory_inflight_bytes", mem[0].InFlight, "memory_ended_bytes", mem[0].Ended,
		"memory_inflight_bytes_listpack4096", mem[1].InFlight, "memory_ended_bytes_listpack4096", mem[1].Ended)
	rt := RoundTripResult{}
	if r.RoundTrips != nil {
		rt = *r.RoundTrips
	}
	set("roundtrips", "roundtrips_to_created", rt.ToCreated.RoundTrips, "roundtrips_per_poll", rt.PerPoll.RoundTrips,
		"commands_to_created", rt.ToCreated.Commands, "commands_per_poll", rt.PerPoll.Commands,
		"redis_cpu_us_to_created", float64(rt.ToCreated.CPU)/1e3, "redis_cpu_us_per_poll", float64(rt.PerPoll.CPU)/1e3)
	var idle [2]IdleResult
	copy(idle[:], r.Idle)
	set("idle", "idle_redis_cmds_per_s", idle[0].CmdsPerSec, "idle_redis_cpu_pct", 100*idle[0].RedisCPU,
		"idle_worker_cpu_pct", 100*idle[0].WorkerCPU, "idle_task_check_interval_ms", ms(idle[0].TaskCheckInterval),
		"idle_redis_cmds_per_s_100ms", idle[1].CmdsPerSec, "idle_redis_cpu_pct_100ms", 100*idle[1].RedisCPU,
		"idle_worker_cpu_pct_100ms", 100*idle[1].WorkerCPU, "redis_alone_cpu_pct", 100*r.IdleBaselineCPU)
	return out
}

// WriteJSON writes JSON as one object on one line.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.JSON())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
