// Command providersim runs the provider simulator (providers/sim) on its own:
// both purchasing-agent APIs on one loopback port, with an accelerated
// clock, quotas and fault injection from flags. Not for production.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"orderflow/providers/sim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "providersim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("providersim", flag.ContinueOnError)
	var (
		listen  = fs.String("listen", "127.0.0.1:7070", "listen address")
		speed   = fs.Float64("speed", 1, "sim time runs this many times faster than wall time")
		quota   = fs.String("quota", "", `per-provider quotas, e.g. "xportcn=50:100,depal=20:40" (rate/s:burst)`)
		seed    = fs.Int64("seed", 1, "fault injection seed")
		p5xx    = fs.Float64("fault-5xx", 0, "probability of an HTTP 5xx answer")
		pSlow   = fs.Float64("fault-slow", 0, "probability of a slow answer")
		slow    = fs.Duration("slow-delay", 0, "delay of a slow answer (0: 15s)")
		pThr    = fs.Float64("fault-throttle", 0, "probability of a throttled answer")
		pDrop   = fs.Float64("fault-drop", 0, "probability, on create, of commit-then-drop")
		pDup    = fs.Float64("fault-push-dup", 0, "probability a push is sent twice")
		pReord  = fs.Float64("fault-push-reorder", 0, "probability a push is held back")
		pLate   = fs.Float64("fault-late-commit", 0, "probability, on create, that the order is committed after the client gave up")
		late    = fs.Duration("late-commit-delay", 0, "wall time from a late create's arrival to its commit (0: 2s)")
		lag     = fs.Duration("search-lag", 0, "lookups by outOrderId see an order only this long after its commit")
		pGw     = fs.Float64("fault-gateway", 0, "probability, on create, of a gateway's HTML 502/504/408/499 after the commit")
		pEmpty  = fs.Float64("fault-empty-success", 0, "probability of a success with empty data (create: after the commit; lookup)")
		pUnf    = fs.Float64("fault-unfiltered-list", 0, "probability a lookup ignores its outOrderId filter")
		pPart   = fs.Float64("fault-partial-create", 0, "probability, on create of 2+ lines, that the last line is refused")
		pushURL = fs.String("push-url", "", "where Xportcn push messages are POSTed (empty: none)")
		verbose = fs.Bool("v", false, "log injected faults")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	q, err := parseQuota(*quota)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	s, err := sim.New(sim.Config{
		Clock: sim.NewAccelClock(*speed),
		Quota: q,
		Faults: sim.Faults{
			Seed: *seed, HTTP5xx: *p5xx, Slow: *pSlow, SlowDelay: *slow, Throttle: *pThr,
			CommitThenDrop: *pDrop, DuplicatePush: *pDup, ReorderPush: *pReord,
			LateCommit: *pLate, LateCommitDelay: *late, SearchLag: *lag, GatewayAfterCommit: *pGw,
			EmptySuccess: *pEmpty, UnfilteredList: *pUnf, PartialCreate: *pPart,
		},
		PushURL: *pushURL,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	if err := s.Start(*listen); err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf("xportcn: %s\ndepal:   %s\ncounters: http://%s%s\n", s.XportcnURL(), s.DepalURL(), s.Addr(), sim.CountersPath)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// parseQuota reads "name=rate:burst,...".
func parseQuota(s string) (map[string]sim.Quota, error) {
	q := map[string]sim.Quota{}
	if s == "" {
		return q, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, spec, ok := strings.Cut(strings.TrimSpace(part), "=")
		r, b, ok2 := strings.Cut(spec, ":")
		rate, err1 := strconv.ParseFloat(r, 64)
		burst, err2 := strconv.Atoi(b)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("-quota: want name=rate:burst, got %q", part)
		}
		q[name] = sim.Quota{Rate: rate, Burst: burst}
	}
	return q, nil
}
