package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
	"orderflow/providers"
)

// LookupError is an OUTORDERID argument that names no single order.
type LookupError struct {
	// Arg is the argument as given.
	Arg string
	// Reason says why: not found, known at several providers, malformed.
	Reason string
}

func (e *LookupError) Error() string { return redact.Terminal(e.Arg) + ": " + e.Reason }

// find returns the record an OUTORDERID argument names: PROVIDER/ID, or ID
// at the provider given (flag), or ID at whichever provider knows it. The
// error is a *LookupError for an argument that names no single order, else
// Redis trouble.
func find(ctx context.Context, st *orders.Store, provider, arg string) (*orders.Record, error) {
	id := arg
	if p, rest, ok := strings.Cut(arg, "/"); ok {
		if provider != "" && provider != p {
			return nil, &LookupError{Arg: arg, Reason: fmt.Sprintf("names provider %s but --provider is %s", p, provider)}
		}
		provider, id = p, rest
	}
	if provider != "" && !providers.Known(provider) {
		return nil, &LookupError{Arg: arg, Reason: fmt.Sprintf("unknown provider %q (one of %s)", provider, strings.Join(providers.Names, ", "))}
	}
	if !providers.ValidOutOrderID(id) {
		return nil, &LookupError{Arg: arg, Reason: "not a valid outOrderId (1..64 characters of [A-Za-z0-9_.:-])"}
	}
	candidates := providers.Names
	if provider != "" {
		candidates = []string{provider}
	}
	var found []*orders.Record
	for _, p := range candidates {
		r, err := st.Get(ctx, orders.Key{Provider: p, OutOrderID: id})
		if errors.Is(err, orders.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = append(found, r)
	}
	switch len(found) {
	case 0:
		if provider != "" {
			return nil, &LookupError{Arg: arg, Reason: "not found at " + provider}
		}
		return nil, &LookupError{Arg: arg, Reason: "not found"}
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, r := range found {
		names[i] = r.Provider
	}
	return nil, &LookupError{Arg: arg, Reason: fmt.Sprintf("exists at %s: name one with --provider or as PROVIDER/%s", strings.Join(names, " and "), id)}
}

// lookupFailed reports err and returns the exit status for it: ExitFailed
// for an argument naming no order, ExitUnavailable for Redis trouble.
func lookupFailed(s stdio, c *conn, err error) int {
	var le *LookupError
	if errors.As(err, &le) {
		s.errorf("%v", le)
		return ExitFailed
	}
	if errors.Is(err, context.Canceled) {
		s.errorf("interrupted")
		return ExitFailed
	}
	s.errorf("Redis error at %s: %v", c.url, err)
	return ExitUnavailable
}
