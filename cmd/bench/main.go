// Command bench runs orderflow's benchmarks (package bench) against its own
// redis-server and the provider simulator, and prints the figures quoted in
// BENCHMARKS.md. Run it from the repository (make bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"orderflow/internal/bench"
)

func main() {
	var opt bench.Options
	flag.Float64Var(&opt.Quota, "quota", 50, "provider quota of the quota-use scenario, requests/s")
	flag.IntVar(&opt.QuotaBurst, "burst", 10, "provider burst of the quota-use scenario (workers use one less)")
	flag.DurationVar(&opt.Window, "window", 0, "quota-use busy window (at least 20s; 0: 20s)")
	flag.IntVar(&opt.Processes, "processes", 3, "worker processes sharing the quota")
	flag.StringVar(&opt.Only, "only", "", "comma-separated scenarios to run ("+strings.Join(bench.Scenarios, ",")+"); empty: all")
	asJSON := flag.Bool("json", false, "print every figure as one JSON object (stable names, BENCHMARKS.md) instead of the text")
	debug := flag.Bool("debug", false, "debug logging")
	quiet := flag.Bool("q", false, "no progress on stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the bench process (in-process workers and simulator) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	if !*quiet {
		level := slog.LevelInfo
		if *debug {
			level = slog.LevelDebug
		}
		opt.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *asJSON {
		if err := rep.WriteJSON(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	rep.Fprint(os.Stdout, opt.Quota)
}
