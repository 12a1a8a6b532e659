package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
	"orderflow/providers"
)

// stateFlags is a repeatable --state flag.
type stateFlags []providers.State

func (f *stateFlags) String() string { return fmt.Sprint(*f) }

func (f *stateFlags) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		st := providers.State(strings.TrimSpace(s))
		if !st.Valid() {
			return fmt.Errorf("unknown state %q", s)
		}
		*f = append(*f, st)
	}
	return nil
}

func runList(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "list", "[--state S]... [--provider P] [--since D] [--limit N] [--json] [--redis URL]")
	var states stateFlags
	fs.Var(&states, "state", "list orders in this state (repeatable, or comma-separated; default: every state)")
	provider := fs.String("provider", "", "list only this provider's orders")
	since := fs.Duration("since", 0, "list only orders that entered their state within this long")
	limit := fs.Int("limit", 50, fmt.Sprintf("at most this many orders (1…%d)", orders.MaxListLimit))
	asJSON := fs.Bool("json", false, "print each record as one line of JSON")
	pos, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	switch {
	case len(pos) > 0:
		s.errorf("list: takes no arguments, got %q", pos[0])
		return ExitUnavailable
	case *provider != "" && !providers.Known(*provider):
		s.errorf("list: unknown provider %q (one of %s)", *provider, strings.Join(providers.Names, ", "))
		return ExitUnavailable
	case *since < 0:
		s.errorf("list: --since must not be negative, got %s", *since)
		return ExitUnavailable
	case *limit < 1 || *limit > orders.MaxListLimit:
		s.errorf("list: --limit must be 1…%d, got %d", orders.MaxListLimit, *limit)
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, *redisURL)
	if !ok {
		return exit
	}
	defer c.Close()
	q := orders.ListQuery{States: states, Provider: *provider, Limit: *limit}
	now := c.store.Now()
	if *since > 0 {
		q.Since = now.Add(-*since)
	}
	page, err := c.store.List(ctx, q)
	if err != nil {
		return lookupFailed(s, c, err)
	}
	if *asJSON {
		for _, r := range page.Orders {
			b, err := json.Marshal(r)
			if err != nil {
				s.errorf("list: %v", err)
				return ExitFailed
			}
			fmt.Fprintf(s.out, "%s\n", b)
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	for _, r := range page.Orders {
		code := "-"
		if r.Error != nil {
			code = r.Error.Code
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Provider, r.OutOrderID, r.State, formatAge(now.Sub(enteredAt(r))), redact.Terminal(code))
	}
	_ = tw.Flush()
	return ExitOK
}

// enteredAt is when the record entered its state: its last history entry.
func enteredAt(r *orders.Record) time.Time {
	if n := len(r.History); n > 0 {
		return r.History[n-1].At
	}
	return r.UpdatedAt
}

// formatAge shows a duration to the second (to the minute past a day).
func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d >= 24*time.Hour {
		return d.Truncate(time.Minute).String()
	}
	return d.Truncate(time.Second).String()
}

func runFind(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "find", "[--json] [--redis URL] ID")
	asJSON := fs.Bool("json", false, "print each record as one line of JSON")
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	if len(ids) != 1 || ids[0] == "" {
		s.errorf("find: name exactly one provider order id or parcel tracking number")
		fs.Usage()
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, *redisURL)
	if !ok {
		return exit
	}
	defer c.Close()
	recs, err := c.store.Find(ctx, ids[0])
	if err != nil {
		return lookupFailed(s, c, err)
	}
	if len(recs) == 0 {
		return lookupFailed(s, c, &LookupError{Arg: ids[0], Reason: "no order has this provider order id or parcel tracking number"})
	}
	for i, r := range recs {
		if !showRecord(s, "find", r, *asJSON, i) {
			return ExitFailed
		}
	}
	return ExitOK
}
