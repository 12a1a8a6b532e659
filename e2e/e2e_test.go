package e2e

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/gate"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/providers/depal"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
	"orderflow/ratelimit"
)

// gated builds the real clients for the simulator, behind gates.
func gated(tb testing.TB, s *sim.Sim, rdb redis.UniversalClient, quotas map[string]ratelimit.Quota) map[string]providers.Provider {
	tb.Helper()
	x, err := xportcn.New(xportcn.Config{BaseURL: s.XportcnURL(), AccessKey: "sim-ak", AccessSecret: "sim-secret-x",
		UserID: "sim-user", Timeout: 2 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	lim := ratelimit.NewRedis(rdb, quotas)
	d, err := depal.New(depal.Config{BaseURL: s.DepalURL(), AppKey: "simapp", AppSecret: "sim-secret-d", Timeout: 2 * time.Second,
		Admit: func(ctx context.Context) error { return ratelimit.Wait(ctx, lim, providers.Depal) }})
	if err != nil {
		tb.Fatal(err)
	}
	g := gate.Config{Limiter: lim,
		Breaker: gate.BreakerSettings{ConsecutiveFailures: 10, OpenTimeout: time.Second}}
	return map[string]providers.Provider{providers.Xportcn: gate.Wrap(x, g), providers.Depal: gate.Wrap(d, g)}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return nil
}

// settleWindow is the workers' CREATE_SETTLE_WINDOW in these tests: the
// simulator's late commit (2 s) and search lag (at most 2 s here) are
// short, so 5 s stands for production's 2 m.
const settleWindow = 5 * time.Second

// retryBackoffMax is the workers' RETRY_BACKOFF_MAX in these tests: an
// order whose create fails several times running (faults at 5–30 %)
// retries within seconds instead of minutes, so the suite's time is the
// pipeline's, not one unlucky order's backoff. The faults are the same.
const retryBackoffMax = 10 * time.Second

func startWorker(tb testing.TB, srv *redistest.Server, ps map[string]providers.Provider) *app.Worker {
	tb.Helper()
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                ps,
		SettleWindow:             settleWindow,
		RetryBackoffMax:          retryBackoffMax,
		PollSchedule:             []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second},
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:          3 * time.Second,
		Logger:                   testLogger(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Shutdown)
	return w
}

func submitAll(tb testing.TB, w *app.Worker, batch []testkit.Planned, want pipeline.Outcome) {
	tb.Helper()
	for _, p := range batch {
		res, err := pipeline.Submit(context.Background(), w.Store(), w.Client(), w.Inspector(), p.Req)
		if err != nil {
			tb.Fatal(err)
		}
		if res.Outcome != want {
			tb.Fatalf("submit %s = %s (%v), want %s", p.Key(), res.Outcome, res.Err, want)
		}
	}
}

// hostileFaults are the faults of TestOrdersUnderFaults: today's (5xx,
// throttling, commit-then-drop) and the hostile provider's: late commits,
// a search index 1 s behind, gateway answers after a commit, empty
// successes, unfiltered lookups, partial creates of multi-line carts.
//
// Each fault must be drawn at least once in a run (the test checks). The
// answer faults of a create exclude each other, so at these rates a create
// meets a late commit about 8 % of the time and a gateway answer about 7 %:
// about 100 creates miss one of them once in some 1,500 runs. At 5 % and
// 6 % they missed the late commit about once in 60, and a CI run failed on
// "no late_commit".
func hostileFaults(seed int64) sim.Faults {
	return sim.Faults{Seed: seed, HTTP5xx: 0.05, Throttle: 0.05, CommitThenDrop: 0.1,
		LateCommit: 0.1, LateCommitDelay: 2 * time.Second, SearchLag: time.Second,
		GatewayAfterCommit: 0.1, EmptySuccess: 0.05, UnfilteredList: 0.1, PartialCreate: 0.3}
}

// TestOrdersUnderFaults: 120 orders across both providers (half the
// completing ones with a two-line cart) through the real clients against
// the simulator with today's faults and the hostile provider's (see
// hostileFaults), on miniredis and on a real redis-server. Every order
// ends in its planned state with one terminal event; nothing is created
// twice (a late commit, the search lag, an empty success or a gateway
// answer never led to a second create); each order holds exactly the
// simulator's orders for its own outOrderId (an unfiltered lookup adopted
// nobody else's); no order failed for a gateway answer after a commit;
// every partial create the simulator made was parked (needs_review,
// PARTIAL_CREATE) and followed to its end; and a re-submission is a
// duplicate that changes nothing.
func TestOrdersUnderFaults(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		simLog := testkit.NewSimLog()
		s := testkit.StartSim(t, sim.Config{
			Clock:    sim.NewAccelClock(3600),
			Timeline: testkit.FastTimeline,
			Faults:   hostileFaults(7),
			Logger:   simLog.Logger(),
		})
		rdb := srv.Client(t)
		w := startWorker(t, srv, gated(t, s, rdb, nil))
		batch := testkit.Batch("e2e", 120)
		multi := testkit.WithSecondLine(batch, func(i int) bool { return i%2 == 0 })
		submitAll(t, w, batch, pipeline.Accepted)
		recs := testkit.WaitEnded(t, w.Store(), batch, 3*time.Minute)
		testkit.CheckStates(t, batch, recs)
		partial := simLog.Partial()
		bad, unnoticed := testkit.CheckCreates(s, batch, recs, partial)
		// A partial create whose answer was lost is adopted through a
		// lookup without its refused line: a known pipeline gap that
		// TestPartialCreateAnswerLost fails on; here it is only counted.
		bad = slices.DeleteFunc(bad, func(b string) bool { return strings.Contains(b, "went unnoticed") })
		if len(bad) > 0 {
			t.Errorf("%d orders' creates wrong:\n%s", len(bad), strings.Join(bad, "\n"))
		}
		if len(unnoticed) > 0 {
			t.Logf("partial creates adopted through a lookup without their refused line (see TestPartialCreateAnswerLost): %v", unnoticed)
		}

		c := s.Counters()
		t.Logf("faults %v; %d multi-line orders, %d created partially; simulator orders %v", c.Faults, len(multi), len(partial), c.OrdersCreated)
		if c.Duplicates != 0 {
			t.Errorf("simulator counted %d duplicates (%v), want 0", c.Duplicates, simLog.Duplicates())
		}
		for _, kind := range []string{sim.FaultCommitThenDrop, sim.Fault5xx, sim.FaultThrottle, sim.FaultLateCommit,
			sim.FaultSearchLag, sim.FaultGatewayAfterCommit, sim.FaultEmptySuccess, sim.FaultUnfilteredList, sim.FaultPartialCreate} {
			if c.Faults[kind] == 0 {
				t.Errorf("faults injected %v: no %s", c.Faults, kind)
			}
		}
		delivered := 0
		for _, p := range batch {
			r := recs[p.Key()]
			if p.Want == providers.StateFailed && (r.Error == nil || r.Error.Code == "") {
				t.Errorf("%s failed without an error code", p.Key())
			}
			if r.Delivered {
				delivered++
			}
		}
		// The simulator completes an order shortly after its parcel is
		// signed for, so tracking does not always see SIGN first; it must
		// for some.
		if delivered == 0 {
			t.Error("no order saw its parcel signed for")
		}

		// Every order has exactly one terminal event on the stream.
		evs, err := rdb.XRange(context.Background(), orders.EventStream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		ended := map[string]int{}
		for _, e := range evs {
			if providers.State(e.Values["state"].(string)).Terminal() {
				ended[e.Values["provider"].(string)+"/"+e.Values["outOrderId"].(string)]++
			}
		}
		for _, p := range batch {
			if ended[p.Key().String()] != 1 {
				t.Errorf("%s has %d terminal events, want 1", p.Key(), ended[p.Key().String()])
			}
		}

		created := c.OrdersCreated[providers.Xportcn] + c.OrdersCreated[providers.Depal]
		submitAll(t, w, batch, pipeline.Duplicate)
		time.Sleep(500 * time.Millisecond) // give a wrongly enqueued task time to show
		if c2 := s.Counters(); c2.OrdersCreated[providers.Xportcn]+c2.OrdersCreated[providers.Depal] != created {
			t.Errorf("re-submission created orders: %d -> %d", created, c2.OrdersCreated[providers.Xportcn]+c2.OrdersCreated[providers.Depal])
		}
	})
}
