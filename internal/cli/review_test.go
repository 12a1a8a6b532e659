package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/cli"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// The review and retry commands carry a person's decision to a running
// worker and print its answer; every decision lands in the history with
// who and why.
func TestReviewCommands(t *testing.T) {
	b := setup(t)
	w, err := app.New(app.Config{
		Redis:             asynq.RedisClientOpt{Addr: b.srv.Addr},
		Providers:         map[string]providers.Provider{providers.Depal: fakeprovider.New(providers.Depal)},
		TaskCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout:   2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	park := func(id string) {
		r := b.create(t, providers.Depal, id, providers.StatePreviewed)
		b.move(t, r.Key(), providers.StateNeedsReview, func(r *orders.Record) {
			r.CreateAttempts, r.CreateSentAt = 1, time.Now().UTC()
			r.Error = &orders.ErrorInfo{Code: pipeline.ReasonOutcomeUnknown, Message: "test"}
		})
	}
	park("RV-1")

	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"review", "RV-1"}, cli.ExitUnavailable, ""},                                           // no action
		{[]string{"review", "--recheck", "--recreate", "--by", "ana", "RV-1"}, cli.ExitUnavailable, ""}, // two
		{[]string{"review", "--recheck", "RV-1"}, cli.ExitUnavailable, ""},                              // no --by, no $USER
		{[]string{"review", "--recheck", "--by", "ana", "--reason", "ticket 7", "RV-1"}, cli.ExitOK, "depal/RV-1: the provider has no order for RV-1 as of "},
		{[]string{"review", "--recreate", "--dry-run", "--by", "ana", "RV-1"}, cli.ExitOK, "create again?"},
		{[]string{"retry", "--by", "ana", "RV-1"}, cli.ExitFailed, "depal/RV-1: retry: the order has no archived task\n"},
		{[]string{"review", "--close", "customer withdrew", "--by", "ana", "RV-1"}, cli.ExitOK, "depal/RV-1: closed: the order ends failed (MANUAL)\n"},
		{[]string{"review", "--recheck", "--by", "ana", "RV-1"}, cli.ExitFailed, "the order has ended (failed)"},
	} {
		r := b.run(t, "", append(c.args, "--wait", "10s")...)
		if r.code != c.code || !strings.Contains(r.stdout, c.out) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want exit %d, %q", c.args, r.code, r.stdout, r.stderr, c.code, c.out)
		}
	}
	rec, err := b.store.Get(t.Context(), orders.Key{Provider: providers.Depal, OutOrderID: "RV-1"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != providers.StateFailed || rec.Error.Code != pipeline.CodeManual || rec.Error.Message != "customer withdrew" {
		t.Fatalf("record %s %+v", rec.State, rec.Error)
	}
	var actions []string
	for _, h := range rec.History {
		if h.Actor != "" {
			actions = append(actions, h.Action+" by "+h.Actor+": "+h.Reason)
		}
	}
	if got := strings.Join(actions, "; "); got != "recheck by ana: ticket 7; close by ana: customer withdrew" {
		t.Fatalf("decisions in the history: %q", got)
	}
	r := b.run(t, "", "status", "RV-1")
	if !strings.Contains(r.stdout, "(close by ana: customer withdrew)") {
		t.Fatalf("status does not show the decision:\n%s", r.stdout)
	}
	// $USER stands in for --by; the parked order's cancel answers, no loop.
	park("RV-2")
	b.env["USER"] = "bo"
	r = b.run(t, "", "cancel", "RV-2")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "cancel recorded") {
		t.Fatalf("cancel of a parked order: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	rec, _ = b.store.Get(t.Context(), orders.Key{Provider: providers.Depal, OutOrderID: "RV-2"})
	if last := rec.History[len(rec.History)-1]; last.Actor != "bo" || last.Action != "cancel" {
		t.Fatalf("last entry %+v", last)
	}
}
