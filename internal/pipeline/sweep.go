package pipeline

import (
	"context"
	"time"
)

// sweepBatch bounds the orders one deadline sweep looks at.
const sweepBatch = 500

// SweepDeadlines enqueues the deadline step (order:expire) of every live
// order of a served provider that is past its deadline, up to a batch per
// call; the step ends the order. It is safe on every pod at once: the
// step's task id makes a second enqueue a no-op. It reports how many were
// enqueued.
func (h *Handlers) SweepDeadlines(ctx context.Context) (int, error) {
	keys, err := h.cfg.Store.ReceivedBefore(ctx, h.cfg.Store.Now().Add(-h.cfg.Deadline), sweepBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if h.cfg.Providers[k.Provider] == nil {
			continue // another worker's provider
		}
		if err := h.enqueue(ctx, NewExpireTask(k)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RunSweeps runs SweepDeadlines every interval until ctx ends, logging
// failures (a sweep is retried at the next tick).
func (h *Handlers) RunSweeps(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := h.SweepDeadlines(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("deadline sweep failed; retried at the next tick", "err", err)
			} else if n > 0 {
				h.log.Info("deadline sweep: orders past their deadline", "orders", n)
			}
		}
	}
}
