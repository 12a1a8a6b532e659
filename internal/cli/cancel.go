package cli

import (
	"context"
	"errors"
	"fmt"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// cancellable reports whether an order in state st may still be cancelled:
// docs/interface.md allows it only before payment.
func cancellable(st providers.State) bool {
	switch st {
	case providers.StatePaid, providers.StateShipped, providers.StateDelivered:
		return false
	}
	return !st.Terminal()
}

func runCancel(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "cancel", "[--provider P] [--redis URL] OUTORDERID")
	provider := fs.String("provider", "", "the provider of the order (needed when the id exists at both)")
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	if len(ids) != 1 {
		s.errorf("cancel: name exactly one OUTORDERID")
		fs.Usage()
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, *redisURL)
	if !ok {
		return exit
	}
	defer c.Close()

	r, err := find(ctx, c.store, *provider, ids[0])
	if err != nil {
		return lookupFailed(s, c, err)
	}
	if !cancellable(r.State) {
		fmt.Fprintf(s.out, "%s: not cancellable: %s\n", r.Key(), r.State)
		return ExitFailed
	}
	rec, ok, err := pipeline.RequestCancel(ctx, c.store, c.client, c.insp, r.Key())
	if errors.Is(err, orders.ErrNotFound) { // gone since find
		err = &LookupError{Arg: ids[0], Reason: "not found"}
	}
	if err != nil {
		return lookupFailed(s, c, err)
	}
	if !ok {
		fmt.Fprintf(s.out, "%s: not cancellable: %s\n", r.Key(), stateOf(rec, r))
		return ExitFailed
	}
	fmt.Fprintf(s.out, "%s: cancel requested\n", r.Key())
	return ExitOK
}

// stateOf is the newest known state.
func stateOf(rec, before *orders.Record) providers.State {
	if rec != nil {
		return rec.State
	}
	return before.State
}
