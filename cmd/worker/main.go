// Command worker is orderflow's daemon: it serves the pipeline's tasks for
// every provider it has credentials for, and the admin HTTP listener. With
// no REDIS_URL it runs the embedded default (in-process Redis and a
// provider simulator), which is not for production. Settings come from the
// environment (see README.md); flags override a few.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"orderflow/internal/app"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	adminAddr := flag.String("admin-addr", "", "admin HTTP listener (overrides ADMIN_ADDR)")
	logFormat := flag.String("log-format", "", "json or text (overrides LOG_FORMAT)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	// The flags stand for their variables, so they are validated with the rest.
	overrides := map[string]string{"ADMIN_ADDR": *adminAddr, "LOG_FORMAT": *logFormat}
	s, err := app.FromEnv(func(name string) string {
		if v := overrides[name]; v != "" {
			return v
		}
		return os.Getenv(name)
	})
	if err != nil {
		// one problem per line, each naming its variable
		fmt.Fprintln(os.Stderr, "worker: invalid settings:\n  "+strings.ReplaceAll(err.Error(), "\n", "\n  "))
		os.Exit(2)
	}
	s.Version = version
	format := s.LogFormat
	if format == "" {
		format = "json"
		if s.Embedded() {
			format = "text"
		}
	}
	var h slog.Handler = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	if format == "text" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	log := slog.New(h).With("version", version)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = app.Run(ctx, s, log, func(info app.Info) {
		if info.Embedded {
			fmt.Fprintf(os.Stderr, "\norderflow worker: EMBEDDED DEFAULT, not for production\n  console: %s\n  web UI:  %s\n  admin:   %s\n  redis:   %s\n  submit:  go run ./cmd/enqueue submit -f examples/demo-orders.json\n\n",
				info.ConsoleURL, info.UIURL, info.AdminURL, info.RedisURL)
		}
	})
	if err != nil {
		log.Error("worker failed", "err", err)
		os.Exit(1)
	}
}
