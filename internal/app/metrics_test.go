package app_test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// TestMetricsFromTheFirstSecond: a worker just started, before any task,
// exposes every orderflow_* family whose label values are known, at 0:
// dashboards and alerts on breaker state or queue size never see "no
// data". The exposition passes promtool check metrics.
func TestMetricsFromTheFirstSecond(t *testing.T) {
	srv := redistest.Mini(t)
	env := workerEnv(srv.URL())
	env["XPORTCN_BASE_URL"], env["XPORTCN_ACCESS_KEY"], env["XPORTCN_ACCESS_SECRET"] = "http://127.0.0.1:1/xportcn/api", "k", "s"
	info := startWorker(t, env)
	resp, err := http.Get(info.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	body := string(b)
	if srv.Mini.Exists("asynq:queues") {
		t.Fatal("a task was queued before the scrape: the test would prove nothing")
	}
	var want []string
	for _, p := range providers.Names {
		want = append(want,
			`orderflow_breaker_state{provider="`+p+`"} 0`,
			`orderflow_breaker_transitions_total{provider="`+p+`",state="open"} 0`,
			`orderflow_provider_requests_total{class="ok",op="create",provider="`+p+`"} 0`,
			`orderflow_provider_request_duration_seconds_count{op="details",provider="`+p+`"} 0`,
			`orderflow_ratelimit_wait_seconds_count{provider="`+p+`"} 0`,
			`orderflow_deferrals_total{provider="`+p+`",reason="rate_limit"} 0`,
			`orderflow_order_transitions_total{provider="`+p+`",to="failed"} 0`,
			`orderflow_repairs_total{provider="`+p+`",type="order:create"} 0`,
			`orderflow_orders{provider="`+p+`",state="needs_review"} 0`,
		)
		for _, kind := range []string{tasks.KindCreate, tasks.KindPreview, tasks.KindPoll} {
			q := tasks.Queue(p, kind)
			want = append(want, `orderflow_queue_size{queue="`+q+`",state="pending"} 0`,
				`orderflow_queue_size{queue="`+q+`",state="retry"} 0`,
				`orderflow_queue_latency_seconds{queue="`+q+`"} 0`)
		}
	}
	want = append(want, `orderflow_queue_size{queue="`+tasks.QueueNotify+`",state="archived"} 0`)
	for _, typ := range tasks.Types {
		want = append(want, `orderflow_tasks_processed_total{outcome="retry",type="`+typ+`"} 0`,
			`orderflow_task_duration_seconds_count{type="`+typ+`"} 0`)
	}
	for _, w := range want {
		if !strings.Contains(body, w+"\n") {
			t.Errorf("a fresh worker's /metrics lacks %s", w)
		}
	}

	t.Run("promtool", func(t *testing.T) {
		bin, err := exec.LookPath("promtool")
		if err != nil {
			if os.Getenv("CI") == "true" || redistest.Required() {
				t.Fatal("promtool is not installed (CI=true or REQUIRE_REDIS=1)")
			}
			t.Skip("promtool not installed (with CI=true or REQUIRE_REDIS=1 this fails)")
		}
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
}
