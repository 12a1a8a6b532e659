package e2e

import (
	"context"
	"log/slog"
	"os"
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

func startWorker(tb testing.TB, srv *redistest.Server, ps map[string]providers.Provider) *app.Worker {
	tb.Helper()
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                ps,
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

// TestOrdersUnderFaults: 120 orders across both providers through the
// simulator with 5xx, throttling and commit-then-drop; every order ends in
// its planned state, nothing is created twice, and a re-submission is a
// duplicate that changes nothing.
func TestOrdersUnderFaults(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		s := testkit.StartSim(t, sim.Config{
			Clock:    sim.NewAccelClock(3600),
			Timeline: testkit.FastTimeline,
			Faults:   sim.Faults{Seed: 7, HTTP5xx: 0.05, Throttle: 0.05, CommitThenDrop: 0.15},
		})
		rdb := srv.Client(t)
		w := startWorker(t, srv, gated(t, s, rdb, nil))
		batch := testkit.Batch("e2e", 120)
		submitAll(t, w, batch, pipeline.Accepted)
		recs := testkit.WaitEnded(t, w.Store(), batch, 3*time.Minute)
		testkit.CheckStates(t, batch, recs)

		c := s.Counters()
		if c.Duplicates != 0 {
			t.Errorf("simulator counted %d duplicates, want 0", c.Duplicates)
		}
		if c.Faults["commit_then_drop"] == 0 || c.Faults["5xx"] == 0 || c.Faults["throttle"] == 0 {
			t.Errorf("faults injected %v: want each kind at least once", c.Faults)
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
