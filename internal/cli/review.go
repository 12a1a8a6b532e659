package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/pipeline"
)

// defaultDecideWait is how long review and retry wait for a worker's
// answer.
const defaultDecideWait = 30 * time.Second

// decideFlags are the flags review and retry share.
type decideFlags struct {
	provider, by, reason *string
	dryRun               *bool
	wait                 *time.Duration
}

func addDecideFlags(fs *flag.FlagSet) decideFlags {
	return decideFlags{
		provider: fs.String("provider", "", "the provider of the order (needed when the id exists at both)"),
		by:       fs.String("by", "", "who decides (recorded; default $USER)"),
		reason:   fs.String("reason", "", "why, in your words (recorded)"),
		dryRun:   fs.Bool("dry-run", false, "say what the decision would do (asking the provider), and do nothing"),
		wait:     fs.Duration("wait", defaultDecideWait, "how long to wait for a worker to answer; unanswered, the decision is dropped"),
	}
}

func runReview(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "review",
		"(--recheck | --attach ID[,ID...] | --recreate | --close REASON) [--by NAME] [--reason TEXT] [--dry-run] [--provider P] [--wait D] [--redis URL] OUTORDERID")
	recheck := fs.Bool("recheck", false, "look the order up at the provider now and adopt what it has")
	attach := fs.String("attach", "", "adopt these provider order ids (comma-separated) and follow them")
	recreate := fs.Bool("recreate", false, "create the order again; refused unless a fresh lookup finds nothing at the provider")
	closeReason := fs.String("close", "", "end the order failed (code MANUAL) with this reason")
	df := addDecideFlags(fs)
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	var d pipeline.Decision
	n := 0
	if *recheck {
		d.Action, n = pipeline.ActionRecheck, n+1
	}
	if *attach != "" {
		d.Action, n = pipeline.ActionAttach, n+1
		for _, id := range strings.Split(*attach, ",") {
			d.IDs = append(d.IDs, strings.TrimSpace(id))
		}
	}
	if *recreate {
		d.Action, n = pipeline.ActionRecreate, n+1
	}
	if *closeReason != "" {
		d.Action, n = pipeline.ActionClose, n+1
	}
	if n != 1 {
		s.errorf("review: give exactly one of --recheck, --attach, --recreate, --close")
		fs.Usage()
		return ExitUnavailable
	}
	d.Reason = *df.reason
	if d.Action == pipeline.ActionClose {
		d.Reason = strings.TrimSpace(*closeReason + " " + d.Reason)
	}
	return decide(ctx, s, fs, getenv, *redisURL, ids, df, d)
}

func runRetry(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "retry", "[--by NAME] [--reason TEXT] [--dry-run] [--provider P] [--wait D] [--redis URL] OUTORDERID")
	df := addDecideFlags(fs)
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	return decide(ctx, s, fs, getenv, *redisURL, ids, df, pipeline.Decision{Action: pipeline.ActionRetry, Reason: *df.reason})
}

// decide sends decision d on the order named by ids[0] to a worker (which
// may have to ask the provider) and prints its answer.
func decide(ctx context.Context, s stdio, fs *flag.FlagSet, getenv Getenv, redisURL string, ids []string, df decideFlags, d pipeline.Decision) int {
	if len(ids) != 1 {
		s.errorf("%s: name exactly one OUTORDERID", fs.Name())
		fs.Usage()
		return ExitUnavailable
	}
	d.By, d.DryRun = actor(*df.by, getenv), *df.dryRun
	if err := d.Check(); err != nil {
		s.errorf("%s: %v (give --by NAME, or set USER)", fs.Name(), strings.TrimPrefix(err.Error(), pipeline.ErrDecision.Error()+": "))
		return ExitUnavailable
	}
	if *df.wait <= 0 {
		s.errorf("%s: --wait must be positive, got %s", fs.Name(), *df.wait)
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, redisURL)
	if !ok {
		return exit
	}
	defer c.Close()
	r, err := find(ctx, c.store, *df.provider, ids[0])
	if err != nil {
		return lookupFailed(s, c, err)
	}
	step := pipeline.NewDecideStep(r.Key(), d, time.Now(), *df.wait)
	if _, err := c.client.EnqueueContext(ctx, step.Task); err != nil {
		return lookupFailed(s, c, err)
	}
	_ = c.store.Announce(ctx, step.Queue) // best effort: unannounced, it waits up to a second
	ans, err := awaitAnswer(ctx, c.insp, step, *df.wait)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			s.errorf("interrupted; the decision may still be carried out (see enqueue status %s)", r.Key())
			return ExitFailed
		}
		s.errorf("%s: %v", r.Key(), err)
		return ExitUnavailable
	}
	switch {
	case ans.Invalid:
		s.errorf("%s: %s", r.Key(), ans.Error)
		return ExitUnavailable
	case ans.Error != "":
		s.errorf("%s: %s: %s", r.Key(), d.Action, oneLine(ans.Error))
		return ExitFailed
	}
	fmt.Fprintf(s.out, "%s: %s\n", r.Key(), oneLine(ans.Message))
	if !ans.Done {
		return ExitFailed
	}
	return ExitOK
}

// awaitAnswer waits for the decide task's result.
func awaitAnswer(ctx context.Context, insp *asynq.Inspector, step pipeline.Step, wait time.Duration) (*pipeline.DecideAnswer, error) {
	deadline := time.Now().Add(wait + 2*time.Second)
	for {
		info, err := insp.GetTaskInfo(step.Queue, step.ID)
		switch {
		case err != nil && !errors.Is(err, asynq.ErrTaskNotFound):
			return nil, err
		case err == nil && info.State == asynq.TaskStateCompleted:
			var ans pipeline.DecideAnswer
			if err := json.Unmarshal(info.Result, &ans); err != nil {
				return nil, fmt.Errorf("unreadable answer: %w", err)
			}
			return &ans, nil
		case err == nil && info.State == asynq.TaskStateArchived:
			return nil, fmt.Errorf("the worker could not carry it out: %s", info.LastErr)
		}
		if time.Now().After(deadline) {
			_ = insp.DeleteTask(step.Queue, step.ID)
			return nil, fmt.Errorf("no worker answered within %s: nothing was done (is a worker serving this provider running?)", wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
