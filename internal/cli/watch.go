package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// stateGone is how watch counts an order whose record has disappeared
// (expired after its retention): ended, state no longer known.
const stateGone providers.State = "gone"

// barWidth is the width of the progress bar in characters.
const barWidth = 30

func ended(s providers.State) bool { return s == stateGone || s.Terminal() }

// settled reports whether watch waits no longer for an order in s: it has
// ended, or it waits for a person (needs_review), which watching cannot
// change.
func settled(s providers.State) bool { return ended(s) || s == providers.StateNeedsReview }

func runWatch(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "watch", "[--interval D] [--provider P] [--redis URL] [OUTORDERID...]")
	interval := fs.Duration("interval", time.Second, "how often to look at the orders")
	provider := fs.String("provider", "", "the provider of the named orders (needed when an id exists at both)")
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	if *interval <= 0 {
		s.errorf("watch: --interval must be positive, got %s", *interval)
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, *redisURL)
	if !ok {
		return exit
	}
	defer c.Close()

	// Follow the event stream from before the orders are read, so no
	// change made meanwhile is missed.
	from, err := c.store.LastEventID(ctx)
	if err != nil {
		return lookupFailed(s, c, err)
	}
	states := map[orders.Key]providers.State{}
	if len(ids) > 0 {
		for _, id := range ids {
			r, err := find(ctx, c.store, *provider, id)
			if err != nil {
				return lookupFailed(s, c, err)
			}
			states[r.Key()] = r.State
		}
	} else {
		live, err := c.store.Live(ctx)
		if err != nil {
			return lookupFailed(s, c, err)
		}
		states = live
	}

	p := &progress{w: s.err, tty: isTerminal(s.err)}
	f := &follower{from: from}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		done := p.show(states)
		if done == len(states) {
			p.finish(s.out, states)
			if n := parked(states); n > 0 {
				s.errorf("watch: all %d orders ended or wait for a person: %d in needs_review (enqueue list --state needs_review; the console's review inbox)", len(states), n)
			} else {
				s.errorf("watch: all %d orders ended", len(states))
			}
			return ExitOK
		}
		select {
		case <-ctx.Done():
			p.finish(s.out, states)
			s.errorf("watch: interrupted with %d of %d orders not ended", len(states)-done, len(states))
			return ExitFailed
		case <-tick.C:
		}
		if err := f.refresh(ctx, c.store, states); err != nil {
			if ctx.Err() != nil {
				p.finish(s.out, states)
				s.errorf("watch: interrupted with %d of %d orders not ended", len(states)-done, len(states))
				return ExitFailed
			}
			p.finish(s.out, states)
			s.errorf("watch: Redis error at %s: %v", c.url, err)
			return ExitUnavailable
		}
	}
}

// follower follows the event stream from an entry on.
type follower struct {
	from   string
	rounds int
}

// Bounds of one refresh: stream entries read, and how often (in rounds)
// the orders still live are read again (a stream trimmed under a slow
// watch would lose their last change).
const (
	followBatch   = 10000
	recheckRounds = 30
	recheckMax    = 500
)

// refresh moves the watched orders by the stream's entries since the last
// refresh: reading the stream, never the live index. Every recheckRounds
// rounds it also reads (up to recheckMax of) the orders not yet ended.
func (f *follower) refresh(ctx context.Context, st *orders.Store, states map[orders.Key]providers.State) error {
	for {
		evs, next, err := st.EventsAfter(ctx, f.from, followBatch)
		if err != nil {
			return err
		}
		f.from = next
		for _, e := range evs {
			if cur, ok := states[e.Key]; ok && !ended(cur) && e.State != "" {
				states[e.Key] = e.State
			}
		}
		if len(evs) < followBatch {
			break
		}
	}
	if f.rounds++; f.rounds%recheckRounds != 0 {
		return nil
	}
	n := 0
	for k, cur := range states {
		if ended(cur) {
			continue
		}
		if n++; n > recheckMax {
			break
		}
		r, err := st.Get(ctx, k)
		switch {
		case errors.Is(err, orders.ErrNotFound):
			states[k] = stateGone
		case err != nil:
			return err
		default:
			states[k] = r.State
		}
	}
	return nil
}

// parked counts the orders waiting for a person.
func parked(states map[orders.Key]providers.State) int {
	n := 0
	for _, s := range states {
		if s == providers.StateNeedsReview {
			n++
		}
	}
	return n
}

// stateCount is how many orders are in a state.
type stateCount struct {
	state providers.State
	n     int
}

// countStates counts orders per state (the states with any, in flow order)
// and the orders that have ended.
func countStates(states map[orders.Key]providers.State) (c []stateCount, done int) {
	n := map[providers.State]int{}
	for _, s := range states {
		n[s]++
		if settled(s) {
			done++
		}
	}
	order := append(append([]providers.State{}, providers.States...), stateGone)
	seen := map[providers.State]bool{}
	add := func(s providers.State) {
		if n[s] > 0 && !seen[s] {
			seen[s] = true
			c = append(c, stateCount{s, n[s]})
		}
	}
	for _, s := range order {
		add(s)
	}
	for s := range n { // a state this build does not know
		add(s)
	}
	return c, done
}

// progress draws watch's progress on standard error.
type progress struct {
	w    io.Writer
	tty  bool
	last string
}

// show draws the progress if it changed (always, on a terminal) and
// returns how many orders have ended.
func (p *progress) show(states map[orders.Key]providers.State) int {
	c, done := countStates(states)
	total := len(states)
	filled := barWidth
	if total > 0 {
		filled = done * barWidth / total
	}
	parts := make([]string, len(c))
	for i, e := range c {
		parts[i] = fmt.Sprintf("%s %d", e.state, e.n)
	}
	line := fmt.Sprintf("[%s%s] %d/%d done", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), done, total)
	if len(parts) > 0 {
		line += "  " + strings.Join(parts, ", ")
	}
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	case line != p.last:
		fmt.Fprintln(p.w, line)
	}
	p.last = line
	return done
}

// finish ends the progress line and prints the final counts on out.
func (p *progress) finish(out io.Writer, states map[orders.Key]providers.State) {
	if p.tty {
		fmt.Fprintln(p.w)
	}
	c, _ := countStates(states)
	for _, e := range c {
		fmt.Fprintf(out, "%s\t%d\n", e.state, e.n)
	}
	fmt.Fprintf(out, "total\t%d\n", len(states))
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
