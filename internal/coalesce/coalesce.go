// Package coalesce sends the commands a process's goroutines issue at the
// same time as one pipeline: while a command is in flight on the client,
// the ones issued meanwhile wait for it and then go together, in one
// round trip. A worker's handlers all read records, take quota and write
// at about the same moments (polls come due together), so most of their
// round trips can share one; a lone command goes at once, as without the
// hook. Redis answers a pipeline's commands in order, each on its own
// (a script stays atomic, an error stays the command's own), so callers
// see what they would have seen without it.
package coalesce

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Coalescer is a go-redis hook (redis.Client.AddHook) that coalesces the
// client's single commands. Only commands that never block the connection
// are coalesced (Coalescable); others go on their own. Safe for concurrent
// use.
type Coalescer struct {
	send    redis.UniversalClient // sends the batches, trying each once
	flights int

	mu      sync.Mutex
	busy    int // commands or batches in flight
	waiting []*call
	batches BatchStats
}

// BatchStats counts what a Coalescer did.
type BatchStats struct {
	// Alone: commands sent on their own. Batches: pipelines sent, holding
	// Batched commands in all.
	Alone, Batches, Batched int64
}

type call struct {
	ctx  context.Context
	cmd  redis.Cmder
	sent bool // in a batch on its way (under Coalescer.mu)
	done chan struct{}
}

// New returns a Coalescer letting flights commands or batches be in flight
// at once (at least 1): a command issued while fewer are flying goes at
// once; else it waits for the next batch. send sends the batches: a client
// like the one the hook is on (the same server and hooks after this one)
// that tries each command once (MaxRetries -1). A command of a batch that
// failed on the connection or with an error Redis answers "try again"
// (READONLY during a failover, LOADING...) is then sent again alone, with
// its caller's context, through the hook's own client and its retries;
// one that had its answer is never sent twice, as it would be if go-redis
// retried the whole pipeline.
func New(send redis.UniversalClient, flights int) *Coalescer {
	return &Coalescer{send: send, flights: max(flights, 1)}
}

// Stats returns the counts so far.
func (c *Coalescer) Stats() BatchStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batches
}

// Coalescable reports whether a command may share a pipeline with others:
// commands that answer at once. Blocking reads, Pub/Sub, transactions and
// connection state go on their own.
func Coalescable(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "get", "hget", "exists", "evalsha", "eval", "evalsha_ro", "eval_ro",
		"set", "del", "incr", "hset", "hdel", "zadd", "zrem", "zscore", "zcard", "llen", "publish", "time":
		return true
	}
	return false
}

// DialHook implements redis.Hook.
func (c *Coalescer) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (c *Coalescer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook.
func (c *Coalescer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !Coalescable(cmd) {
			return next(ctx, cmd)
		}
		c.mu.Lock()
		if c.busy < c.flights {
			c.busy++
			c.batches.Alone++
			c.mu.Unlock()
			defer c.landed()
			return next(ctx, cmd)
		}
		w := &call{ctx: ctx, cmd: cmd, done: make(chan struct{})}
		c.waiting = append(c.waiting, w)
		c.mu.Unlock()
		select {
		case <-w.done:
		case <-ctx.Done():
			c.mu.Lock()
			if !w.sent { // still waiting: it goes nowhere
				c.waiting = slices.DeleteFunc(c.waiting, func(o *call) bool { return o == w })
				c.mu.Unlock()
				cmd.SetErr(ctx.Err())
				return ctx.Err()
			}
			c.mu.Unlock()
			// On its way, tried once: its answer comes within the
			// connection's timeouts, and cmd is ours alone only then.
			<-w.done
		}
		if err := cmd.Err(); again(err) && ctx.Err() == nil {
			cmd.SetErr(nil)
			return next(ctx, cmd)
		}
		return cmd.Err()
	}
}

// again reports whether a batched command's error calls for sending it
// again alone: it failed on the connection (its answer never came), or
// Redis answered it could not run it now. An answer of the command's own
// (a value, nil, a script's error) is final.
func again(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	for _, p := range []string{"READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "ERR max number of clients"} {
		if strings.HasPrefix(re.Error(), p) {
			return true
		}
	}
	return false
}

// landed ends a flight: what waited meanwhile goes as one batch.
func (c *Coalescer) landed() {
	c.mu.Lock()
	batch := c.waiting
	c.waiting = nil
	if len(batch) == 0 {
		c.busy--
		c.mu.Unlock()
		return
	}
	for _, w := range batch {
		w.sent = true
	}
	c.batches.Batches++
	c.batches.Batched += int64(len(batch))
	c.mu.Unlock()
	// The flight goes on as the batch, in its own goroutine: the caller
	// whose command landed has its answer now.
	go func() {
		pipe := c.send.Pipeline()
		var ctx context.Context
		for _, w := range batch {
			if err := w.ctx.Err(); err != nil {
				w.cmd.SetErr(err) // as go-redis answers a command whose context ended before it was sent
				continue
			}
			if ctx == nil {
				ctx = context.WithoutCancel(w.ctx)
			}
			_ = pipe.Process(ctx, w.cmd)
		}
		if ctx != nil {
			_, _ = pipe.Exec(ctx) // each command holds its own error
		}
		for _, w := range batch {
			close(w.done)
		}
		c.landed()
	}()
}
