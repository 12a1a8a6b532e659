package chaos

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
)

// TestSmallChaosRun is the small chaos run: 100 orders over 3 worker
// processes, one SIGKILLed and replaced, one Redis restart on its AOF, the
// simulator with every fault on (the hostile provider's a little more often
// than in `make chaos`, so 100 orders see each). Every order ends in its
// planned state with one terminal event, each has exactly the simulator's
// orders for its outOrderId, every partial create was parked and followed,
// nothing is created twice, no request goes over the quota, and no task is
// left in any state (active, pending, retry, archived or scheduled).
func TestSmallChaosRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes and waits for asynq's lease recovery (~1-2 min)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if redistest.Required() {
			t.Fatalf("REQUIRE_REDIS=1 but redis-server is not installed: %v", err)
		}
		t.Skip("redis-server not installed (set REQUIRE_REDIS=1 to make this a failure)")
	}
	var progress testkit.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	faults := DefaultFaults(7)
	faults.LateCommit, faults.GatewayAfterCommit, faults.EmptySuccess = 0.06, 0.06, 0.05
	faults.UnfilteredList, faults.PartialCreate = 0.1, 0.3
	res, err := Run(ctx, Config{
		Faults: faults,
		// A partial create whose answer was lost is adopted through a
		// lookup without its refused line: counted, not failed here (e2e
		// TestPartialCreateAnswerLost fails on it).
		TolerateUnnoticedPartial: true,
		Orders:                   100,
		Workers:                  3,
		KillEvery:                3 * time.Second,
		MaxKills:                 1,
		Seed:                     7,
		Timeout:                  4 * time.Minute,
		Dir:                      t.TempDir(),
		Progress:                 &progress,
	})
	if err != nil {
		t.Fatalf("chaos run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Log(res.Summary())
	if res.PartialUnnoticed > 0 {
		t.Logf("%d of %d partial creates adopted through a lookup without their refused line (tolerated here; e2e TestPartialCreateAnswerLost fails on it)",
			res.PartialUnnoticed, res.Partial)
	}
	if !res.Pass() {
		t.Errorf("chaos run failed:\n%s\nprogress:\n%s", strings.Join(res.Problems, "\n"), progress.String())
	}
	// The run did what it says: the chaos happened and was counted.
	if res.Kills != 1 || res.RedisRestarts != 1 {
		t.Errorf("kills %d, redis restarts %d; want 1 and 1", res.Kills, res.RedisRestarts)
	}
	for _, kind := range []string{"5xx", "commit_then_drop", "throttle", "late_commit", "search_lag",
		"gateway_after_commit", "empty_success", "unfiltered_list", "partial_create"} {
		if res.Faults[kind] == 0 {
			t.Errorf("faults %v: no %s injected", res.Faults, kind)
		}
	}
	if res.Partial == 0 || res.MultiLine == 0 {
		t.Errorf("%d multi-line orders, %d partially created: want some of each", res.MultiLine, res.Partial)
	}
	if len(res.Scheduled) != 0 || res.Retry != 0 || res.Archived != 0 || res.Active+res.Pending != 0 {
		t.Errorf("tasks left: scheduled %v, retry %d, archived %d, active/pending %d; want none", res.Scheduled, res.Retry, res.Archived, res.Active+res.Pending)
	}
	if !strings.HasSuffix(res.Summary(), ": PASS") && res.Pass() {
		t.Errorf("summary %q of a passing run does not end in PASS", res.Summary())
	}
}

// TestConfigRejectsBadFields: a bad field is named in the error.
func TestConfigRejectsBadFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative orders", Config{Orders: -1}, "Config.Orders"},
		{"negative kill interval", Config{KillEvery: -time.Second}, "Config.KillEvery"},
		{"burst of one", Config{Burst: 1}, "Config.Burst"},
		{"negative timeout", Config{Timeout: -time.Second}, "Config.Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
			}
		})
	}
}

// TestSummaryVerdict: the summary ends in PASS without problems and in FAIL
// with one, and counts what it is given.
func TestSummaryVerdict(t *testing.T) {
	r := &Result{Orders: 10, Kills: 2, RedisRestarts: 1, Faults: map[string]int64{"5xx": 3},
		QuotaViolations: map[string]int64{"depal": 0}, Scheduled: map[string]int{}, MultiLine: 4, Partial: 1}
	if s := r.Summary(); !strings.HasSuffix(s, ": PASS") || !strings.Contains(s, "10 orders (4 multi-line, 1 partially created, 0 of them unnoticed), 2 kills, 1 redis restart,") ||
		!strings.Contains(s, "faults {5xx:3}") || !strings.Contains(s, "quota violations 0,") {
		t.Errorf("summary %q", s)
	}
	r.QuotaViolations["depal"] = 2
	r.problem("depal: over quota")
	if s := r.Summary(); !strings.HasSuffix(s, ": FAIL") || !strings.Contains(s, "quota violations 2 {depal:2}") {
		t.Errorf("summary %q", s)
	}
}
