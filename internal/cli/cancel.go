package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	fs, redisURL := newFlags(s, "cancel", "[--provider P] [--by NAME] [--reason TEXT] [--redis URL] OUTORDERID")
	provider := fs.String("provider", "", "the provider of the order (needed when the id exists at both)")
	by := fs.String("by", "", "who cancels (recorded; default $USER)")
	reason := fs.String("reason", "", "why (recorded)")
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	if len(ids) != 1 {
		s.errorf("cancel: name exactly one OUTORDERID")
		fs.Usage()
		return ExitUnavailable
	}
	d := pipeline.Decision{Action: pipeline.ActionCancel, By: actor(*by, getenv), Reason: *reason}
	if d.By == "" {
		d.By = "upstream" // a producer's cancel, as before decisions were recorded
	}
	if err := d.Check(); err != nil {
		s.errorf("cancel: %v", err)
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
	res, err := pipeline.DecideCancel(ctx, c.store, c.client, c.insp, r.Key(), d)
	if errors.Is(err, orders.ErrNotFound) { // gone since find
		err = &LookupError{Arg: ids[0], Reason: "not found"}
	}
	if err != nil {
		return lookupFailed(s, c, err)
	}
	switch {
	case !res.Done:
		fmt.Fprintf(s.out, "%s: not cancellable: %s\n", r.Key(), notCancellable(res.Record))
		return ExitFailed
	case res.Record.CancelRequested && strings.HasPrefix(res.Message, "cancel recorded"):
		fmt.Fprintf(s.out, "%s: %s\n", r.Key(), res.Message)
	default:
		fmt.Fprintf(s.out, "%s: cancel requested\n", r.Key())
	}
	return ExitOK
}

// notCancellable names why an order cannot be cancelled: its state, or
// the provider's paid state when the order is parked.
func notCancellable(r *orders.Record) string {
	if !r.Terminal() && r.ProviderState != "" && !cancellable(r.ProviderState) {
		return string(r.ProviderState)
	}
	return string(r.State)
}

// actor is who decides: --by, else $USER.
func actor(by string, getenv Getenv) string {
	if by != "" {
		return by
	}
	return getenv("USER")
}
