// Command chaos runs orderflow's chaos run (`make chaos`): a real
// redis-server with AOF on, worker processes SIGKILLed and replaced every
// few seconds, one Redis restart, and the provider simulator with faults
// on, over a planned batch of orders; then it checks every order, the
// simulator's duplicate and quota counters, the event stream and the task
// queues. Progress goes to stderr; one summary line goes to stdout. It
// exits 1 when a check fails, 2 when the run could not be set up.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"orderflow/internal/chaos"
)

func main() {
	var cfg chaos.Config
	flag.IntVar(&cfg.Orders, "orders", 1000, "orders to place, across both providers")
	flag.IntVar(&cfg.Workers, "workers", 3, "worker processes running at once")
	flag.DurationVar(&cfg.KillEvery, "kill-every", 8*time.Second, "wall time between chaos events (a worker SIGKILLed and replaced, or the Redis restart)")
	flag.IntVar(&cfg.MaxKills, "max-kills", 0, "at most this many worker kills (0: no bound)")
	flag.Int64Var(&cfg.Seed, "seed", 1, "seed of the faults and of the choice of the worker to kill")
	flag.DurationVar(&cfg.Timeout, "timeout", 9*time.Minute, "bound on the whole run")
	flag.Parse()
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		if res != nil && res.Dir != "" {
			fmt.Fprintln(os.Stderr, "chaos: logs kept in", res.Dir)
		}
		os.Exit(2)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(os.Stderr, "chaos: FAIL:", p)
	}
	if res.Dir != "" {
		fmt.Fprintln(os.Stderr, "chaos: logs kept in", res.Dir)
	}
	fmt.Println(res.Summary())
	if !res.Pass() {
		os.Exit(1)
	}
}
