package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/providers/sim"
)

// TestAmbiguousAnswersPastTheSettleWindow drives the case a moderate fault
// rate rarely reaches: a create whose outcome is unknown, then lookups
// that answer an ambiguous "success" (empty data) after the settle window
// has passed. Every create is first a late commit (no answer; the order
// made 2 s after arrival, seen by lookups 1 s later); once every order has
// sent its create, every lookup answers success with empty data until at
// least 3 lookups were so answered after the last send plus the settle
// window; then the faults end. A pipeline reading the empty success as
// "not found" would create again once the window has passed: the
// simulator would count a duplicate. Each order must end completed with
// exactly the simulator's one order for its outOrderId.
func TestAmbiguousAnswersPastTheSettleWindow(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		simLog := testkit.NewSimLog()
		s := testkit.StartSim(t, sim.Config{
			Clock:    sim.NewAccelClock(3600),
			Timeline: testkit.FastTimeline,
			Faults:   sim.Faults{Seed: 11, LateCommit: 1, LateCommitDelay: 2 * time.Second, SearchLag: time.Second},
			Logger:   simLog.Logger(),
		})
		rdb := srv.Client(t)
		w := startWorker(t, srv, gated(t, s, rdb, nil))
		var batch []testkit.Planned
		for _, p := range testkit.Batch("amb", 40) {
			if p.Want == providers.StateCompleted && p.Req.MaxTotal == "" && p.Req.Items[0].ProductID != sim.ProductSplit &&
				p.Req.Items[0].ProductID != sim.ProductUnknownStatus && len(batch) < 8 {
				batch = append(batch, p)
			}
		}
		submitAll(t, w, batch, pipeline.Accepted)

		ctx := context.Background()
		var lastSend time.Time
		testkit.WaitFor(t, 30*time.Second, "every order to send its create", func() bool {
			lastSend = time.Time{}
			for _, p := range batch {
				r, err := w.Store().Get(ctx, p.Key())
				if err != nil || r.CreateAttempts == 0 {
					return false
				}
				lastSend = later(lastSend, r.CreateSentAt)
			}
			return true
		})
		s.SetFaults(sim.Faults{Seed: 12, EmptySuccess: 1, SearchLag: time.Second})
		unresolved := 0
		for _, p := range batch {
			if r, err := w.Store().Get(ctx, p.Key()); err == nil && len(r.ProviderOrderIDs) == 0 {
				unresolved++
			}
		}
		pastWindow := lastSend.Add(settleWindow + 500*time.Millisecond)
		time.Sleep(time.Until(pastWindow))
		before := s.Counters().Faults[sim.FaultEmptySuccess]
		var after int64
		testkit.WaitFor(t, 40*time.Second, "3 lookups answered empty past the settle window", func() bool {
			after = s.Counters().Faults[sim.FaultEmptySuccess]
			return after-before >= 3
		})
		t.Logf("%d of %d orders still unresolved when lookups turned empty; %d empty lookups past the settle window (last send + %s)",
			unresolved, len(batch), after-before, settleWindow)
		if unresolved == 0 {
			t.Fatal("every order was resolved before the lookups turned empty: the test proves nothing")
		}
		s.SetFaults(sim.Faults{})

		recs := testkit.WaitEnded(t, w.Store(), batch, 2*time.Minute)
		testkit.CheckStates(t, batch, recs)
		if bad, _ := testkit.CheckCreates(s, batch, recs, simLog.Partial()); len(bad) > 0 {
			t.Errorf("%d orders' creates wrong:\n%s", len(bad), strings.Join(bad, "\n"))
		}
		c := s.Counters()
		if c.Duplicates != 0 {
			t.Errorf("simulator counted %d duplicates (%v), want 0: an empty success was read as not found", c.Duplicates, simLog.Duplicates())
		}
		// A create recorded as sent may reach the simulator just after the
		// switch to empty successes: then it is answered empty, not late.
		if c.Faults[sim.FaultLateCommit] == 0 {
			t.Errorf("no late commit injected (faults %v)", c.Faults)
		}
		for _, p := range batch {
			if r := recs[p.Key()]; r != nil && r.CreateAttempts != 1 {
				t.Errorf("%s: %d creates sent, want 1 (the first one's order was there all along)", p.Key(), r.CreateAttempts)
			}
		}
	})
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestPartialCreateAnswerLost: a partial create (the provider refused a
// cart's last line and made the order for the rest) whose answer is lost
// (the connection dropped after the commit) must still be noticed: the
// order holds the simulator's one order, and it is recorded with the
// refused line or at least parked for a person (needs_review,
// PARTIAL_CREATE in its history) before the provider ends it. Today the
// next run's lookup adopts the order as if whole (history "created:
// reconciled", no Rejected), and the order completes without its line.
func TestPartialCreateAnswerLost(t *testing.T) {
	srv := redistest.Mini(t)
	simLog := testkit.NewSimLog()
	s := testkit.StartSim(t, sim.Config{
		Clock:    sim.NewAccelClock(3600),
		Timeline: testkit.FastTimeline,
		Faults:   sim.Faults{Seed: 5, PartialCreate: 1, CommitThenDrop: 1},
		Logger:   simLog.Logger(),
	})
	rdb := srv.Client(t)
	w := startWorker(t, srv, gated(t, s, rdb, nil))
	batch := testkit.Batch("lostpart", 4)[:3] // xportcn, depal, xportcn: normal carts
	batch = slices.DeleteFunc(batch, func(p testkit.Planned) bool { return p.Want != providers.StateCompleted })
	testkit.WithSecondLine(batch, func(int) bool { return true })
	submitAll(t, w, batch, pipeline.Accepted)
	testkit.WaitFor(t, 20*time.Second, "a partial create of every order", func() bool { return len(simLog.Partial()) == len(batch) })
	s.SetFaults(sim.Faults{})
	recs := testkit.WaitEnded(t, w.Store(), batch, time.Minute)
	testkit.CheckStates(t, batch, recs)
	if bad, _ := testkit.CheckCreates(s, batch, recs, simLog.Partial()); len(bad) > 0 {
		t.Errorf("%d of %d partial creates whose answer was lost:\n%s", len(bad), len(batch), strings.Join(bad, "\n"))
	}
	if d := s.Counters().Duplicates; d != 0 {
		t.Errorf("simulator counted %d duplicates, want 0", d)
	}
}
