// Command enqueue is orderflow's producer: it submits orders, shows their
// status, watches them to the end and asks for cancels. See package cli for
// the subcommands, their output and exit statuses.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/cli"
)

// quiet discards go-redis's own log lines (each failed dial, printed to the
// process's standard error): cli reports Redis trouble itself, once.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(quiet{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
