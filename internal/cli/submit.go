package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"orderflow/internal/intake"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// SubmitLine is one line of `enqueue submit --json`.
type SubmitLine = intake.Result

// lineText renders the line as in the text output.
func lineText(l SubmitLine) string {
	id := "#" + fmt.Sprint(l.N)
	if providers.ValidOutOrderID(l.OutOrderID) {
		id = l.OutOrderID
	}
	switch l.Outcome {
	case pipeline.Duplicate:
		return fmt.Sprintf("%s\tduplicate (%s)", id, l.State)
	case pipeline.Invalid:
		return fmt.Sprintf("%s\tinvalid: %s", id, oneLine(l.Error))
	case pipeline.Conflict:
		return fmt.Sprintf("%s\tconflict: %s", id, oneLine(l.Error))
	}
	return fmt.Sprintf("%s\t%s", id, l.Outcome)
}

func runSubmit(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "submit", "[-f FILE] [--json] [--redis URL]")
	file := fs.String("f", "-", `file of orders ("-": standard input)`)
	asJSON := fs.Bool("json", false, "one JSON object per order")
	pos, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	if len(pos) > 0 {
		s.errorf("submit: unexpected argument %q (orders are read from -f FILE or standard input)", pos[0])
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, *redisURL)
	if !ok {
		return exit
	}
	defer c.Close()

	in := s.in
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			s.errorf("submit: %v", err)
			return ExitFailed
		}
		defer f.Close()
		in = f
	}
	entries, err := decode(ctx, in)
	if ctx.Err() != nil {
		s.errorf("submit: interrupted while reading the orders; nothing submitted")
		return ExitFailed
	}
	if err != nil {
		s.errorf("submit: nothing submitted: %v", err)
		return ExitFailed
	}
	if len(entries) == 0 {
		s.errorf("submit: no orders in the input")
		return ExitOK
	}

	// CALLBACK_ALLOW_PRIVATE as the worker reads it: allowed by default only
	// against the embedded default's Redis.
	pol := intake.Policy{AllowPrivateCallbacks: *redisURL == "" && getenv("REDIS_URL") == ""}
	switch v := getenv("CALLBACK_ALLOW_PRIVATE"); v {
	case "":
	case "1", "true":
		pol.AllowPrivateCallbacks = true
	case "0", "false":
		pol.AllowPrivateCallbacks = false
	default:
		s.errorf("submit: CALLBACK_ALLOW_PRIVATE must be 1 or 0, got %q", v)
		return ExitUnavailable
	}
	counts := map[pipeline.Outcome]int{}
	for i, e := range entries {
		line, err := intake.Submit(ctx, c.store, c.client, c.insp, e, pol)
		if err != nil {
			summary(s, counts, len(entries))
			if ctx.Err() != nil {
				s.errorf("submit: interrupted after %d of %d orders", i, len(entries))
				return ExitFailed
			}
			s.errorf("submit: Redis error at %s on order #%d, stopped after %d of %d orders: %v", c.url, e.N, i, len(entries), err)
			return ExitUnavailable
		}
		counts[line.Outcome]++
		if err := writeLine(s.out, line, *asJSON); err != nil {
			s.errorf("submit: write: %v", err)
			return ExitFailed
		}
	}
	summary(s, counts, len(entries))
	if counts[pipeline.Invalid] > 0 || counts[pipeline.Conflict] > 0 {
		return ExitFailed
	}
	return ExitOK
}

func writeLine(w io.Writer, l SubmitLine, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(w, lineText(l))
	return err
}

// decode reads the orders, giving up when ctx ends (standard input may
// block forever).
func decode(ctx context.Context, in io.Reader) ([]intake.Entry, error) {
	type result struct {
		entries []intake.Entry
		err     error
	}
	done := make(chan result, 1)
	go func() {
		e, err := intake.Decode(in, intake.DefaultLimit)
		done <- result{e, err}
	}()
	select {
	case r := <-done:
		return r.entries, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// summary writes "submit: N orders: a accepted, d duplicate, i invalid"
// (with "c conflict" before invalid when there is one).
func summary(s stdio, counts map[pipeline.Outcome]int, total int) {
	var parts []string
	for _, o := range []pipeline.Outcome{pipeline.Accepted, pipeline.Duplicate, pipeline.Conflict, pipeline.Invalid} {
		if o == pipeline.Conflict && counts[o] == 0 {
			continue // named only when there is one
		}
		parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
	}
	fmt.Fprintf(s.err, "submit: %d orders: %s\n", total, strings.Join(parts, ", "))
}
