package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/cli"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// TestEndToEnd submits orders with the command while a worker with fake
// providers runs them, watches them to the end and reads their status.
func TestEndToEnd(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) { testEndToEnd(t, setupOn(t, srv)) })
}

func testEndToEnd(t *testing.T, b *bundle) {
	w, err := app.New(app.Config{
		Redis: asynq.RedisClientOpt{Addr: b.srv.Addr},
		Providers: map[string]providers.Provider{
			providers.Xportcn: fakeprovider.New(providers.Xportcn),
			providers.Depal:   fakeprovider.New(providers.Depal),
		},
		PollSchedule:             []time.Duration{50 * time.Millisecond},
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Submit before the worker starts; watch names the orders (one may
	// end before watch first looks: it still counts).
	guarded := orderJSON(providers.Depal, "E-3", map[string]string{"maxTotal": `"1.00"`})
	in := orderJSON(providers.Depal, "E-1", nil) + "\n" + orderJSON(providers.Xportcn, "E-2", nil) + "\n" + guarded + "\n"
	r := b.run(t, in, "submit")
	if r.code != cli.ExitOK || r.stdout != "E-1\taccepted\nE-2\taccepted\nE-3\taccepted\n" {
		t.Fatalf("submit: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r = b.runCtx(t, ctx, strings.NewReader(""), "watch", "--interval", "20ms", "E-1", "E-2", "E-3")
	if r.code != cli.ExitOK || r.stdout != "completed\t2\nrejected\t1\ntotal\t3\n" {
		t.Fatalf("watch: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = b.run(t, "", "status", "E-3")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "state:       rejected") || !strings.Contains(r.stdout, "error:       PRICE_GUARD") {
		t.Fatalf("status: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = b.run(t, "", "cancel", "E-1")
	if r.code != cli.ExitFailed || r.stdout != "depal/E-1: not cancellable: completed\n" {
		t.Fatalf("cancel: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}
