package app_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/tasks"
)

// TestPollRunsCompleteTheirTasks: under the worker's own servers, a poll
// run that changes nothing completes its task with its record write
// (asynq's own completion is answered without a round trip), and asynq
// still counts every poll run processed exactly once, leaves nothing
// active and logs no complaint about a task it could not complete.
func TestPollRunsCompleteTheirTasks(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		f := fakeprovider.New(providers.Depal)
		f.SetPlan("quiet", fakeprovider.Plan{Words: []string{"waitbuyerpay", "waitbuyerpay", "waitbuyerpay",
			"waitbuyerpay", "waitbuyerpay", "waitbuyerpay", "terminated"}})
		logs := &testkit.SyncBuffer{}
		w, err := app.New(app.Config{
			Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
			Providers:                map[string]providers.Provider{providers.Depal: f},
			PollSchedule:             []time.Duration{50 * time.Millisecond},
			TaskCheckInterval:        20 * time.Millisecond,
			DelayedTaskCheckInterval: 50 * time.Millisecond,
			FollowCheckInterval:      20 * time.Millisecond,
			ShutdownTimeout:          2 * time.Second,
			Logger:                   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		defer func() {
			if !stopped {
				w.Shutdown()
			}
		}()
		b := &bundle{w: w, fakes: map[string]*fakeprovider.Fake{providers.Depal: f}}
		b.submit(t, order(providers.Depal, "quiet"))
		k := orders.Key{Provider: providers.Depal, OutOrderID: "quiet"}
		b.waitState(t, map[orders.Key]providers.State{k: providers.StateTerminated}, 30*time.Second)

		// The drain waits for every run's completion by asynq (sent, or
		// answered by the Finisher), so what follows sees them all.
		w.Shutdown()
		stopped = true
		q := tasks.Queue(providers.Depal, tasks.KindPoll)
		polls := int64(f.Calls("details"))
		insp := asynq.NewInspectorFromRedisClient(srv.Client(t))
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		if polls < 7 || int64(info.Processed) != polls || info.Active != 0 || info.Pending != 0 || info.Retry != 0 || info.Archived != 0 {
			t.Errorf("%d poll runs; queue %s: processed %d, active %d, pending %d, retry %d, archived %d; want each run processed once, nothing left",
				polls, q, info.Processed, info.Active, info.Pending, info.Retry, info.Archived)
		}
		// Six runs saw nothing change (the first one's state, created,
		// is the record's already): each but the ones before the
		// Finisher first saw asynq complete a task was completed by
		// its write.
		if n := w.FinishedByWrites(); n < 4 || n > 6 {
			t.Errorf("%d poll runs completed by their write, want 4 to 6 of the 6 that changed nothing", n)
		}
		if s := logs.String(); strings.Contains(s, "Could not") || strings.Contains(s, "NOT FOUND") {
			t.Errorf("asynq complained:\n%s", s)
		}
	})
}
