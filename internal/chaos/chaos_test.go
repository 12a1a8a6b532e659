package chaos

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"orderflow/internal/redistest"
)

// lockedBuffer is a progress sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSmallChaosRun is the small chaos run: 100 orders over 3 worker
// processes, one SIGKILLed and replaced, one Redis restart on its AOF, the
// simulator with every fault on. Every order ends in its planned state with
// one terminal event, nothing is created twice, no request goes over the
// quota, and no task is left active or pending.
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
	var progress lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Orders:    100,
		Workers:   3,
		KillEvery: 3 * time.Second,
		MaxKills:  1,
		Seed:      7,
		Timeout:   4 * time.Minute,
		Dir:       t.TempDir(),
		Progress:  &progress,
	})
	if err != nil {
		t.Fatalf("chaos run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Log(res.Summary())
	if !res.Pass() {
		t.Errorf("chaos run failed:\n%s\nprogress:\n%s", strings.Join(res.Problems, "\n"), progress.String())
	}
	// The run did what it says: the chaos happened and was counted.
	if res.Kills != 1 || res.RedisRestarts != 1 {
		t.Errorf("kills %d, redis restarts %d; want 1 and 1", res.Kills, res.RedisRestarts)
	}
	if res.Faults["5xx"] == 0 || res.Faults["commit_then_drop"] == 0 || res.Faults["throttle"] == 0 {
		t.Errorf("faults %v: want 5xx, throttling and commit-then-drop injected", res.Faults)
	}
	if res.Scheduled["order:expire"] != res.Orders {
		t.Errorf("scheduled tasks %v: want one order:expire per order (%d)", res.Scheduled, res.Orders)
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
		QuotaViolations: map[string]int64{"depal": 0}, Scheduled: map[string]int{"order:expire": 10}}
	if s := r.Summary(); !strings.HasSuffix(s, ": PASS") || !strings.Contains(s, "10 orders, 2 kills, 1 redis restart,") ||
		!strings.Contains(s, "faults {5xx:3}") || !strings.Contains(s, "quota violations 0,") {
		t.Errorf("summary %q", s)
	}
	r.QuotaViolations["depal"] = 2
	r.problem("depal: over quota")
	if s := r.Summary(); !strings.HasSuffix(s, ": FAIL") || !strings.Contains(s, "quota violations 2 {depal:2}") {
		t.Errorf("summary %q", s)
	}
}
