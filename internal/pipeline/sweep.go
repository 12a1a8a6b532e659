package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/tasks"
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

// repairQuiet is how long an order must have been left alone before the
// repair sweep looks at it: a step that just wrote the record is about to
// enqueue its successor.
const repairQuiet = 30 * time.Second

// SweepRepairs looks at the next batch of live orders of the served
// providers and re-queues the step of any that has no task queued (a task
// deleted in the web UI, a step lost with Redis's last writes). Every step
// is idempotent and the step's task id makes a second enqueue a no-op, so
// it is safe on every pod at once. It reports how many it re-queued.
func (h *Handlers) SweepRepairs(ctx context.Context) (int, error) {
	h.repairMu.Lock()
	defer h.repairMu.Unlock()
	keys, next, err := h.cfg.Store.ScanLive(ctx, h.repairCursor, sweepBatch)
	if err != nil {
		return 0, err
	}
	h.repairCursor = next
	n := 0
	for _, k := range keys {
		if h.cfg.Providers[k.Provider] == nil {
			continue
		}
		r, err := h.cfg.Store.Get(ctx, k)
		if errors.Is(err, orders.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if r.Terminal() || h.cfg.Store.Now().Sub(r.UpdatedAt) < repairQuiet {
			continue
		}
		if held, err := h.previewHolds(r); err != nil || held {
			if err != nil {
				return n, err
			}
			continue
		}
		for _, s := range h.expectedSteps(r) {
			_, err := h.cfg.Inspector.GetTaskInfo(s.Queue, s.ID)
			if err == nil {
				continue
			}
			if !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
				return n, err
			}
			h.log.Warn("live order without a queued task: step re-queued", "provider", k.Provider,
				"outOrderId", k.OutOrderID, "state", r.State, "task", s.Task.Type(), "id", s.ID)
			if err := h.enqueue(ctx, s); err != nil {
				return n, err
			}
			if h.cfg.Observer != nil {
				h.cfg.Observer.StepRepaired(k.Provider, s.Task.Type())
			}
			n++
		}
	}
	return n, nil
}

// previewHolds reports whether an order not yet created still has its
// preview task (running, or to run again): that task takes the create step
// itself (createInline), so a create task queued beside it could send a
// second create while the first is in flight (a slow lookup over several
// pages outlasts repairQuiet). A killed worker's preview task comes back
// when its lease expires, and hands over to a create task then.
func (h *Handlers) previewHolds(r *orders.Record) (bool, error) {
	if len(r.ProviderOrderIDs) > 0 || r.State != providers.StatePreviewed {
		return false, nil
	}
	k := r.Key()
	_, err := h.cfg.Inspector.GetTaskInfo(IntakeQueue(k.Provider), TaskID(tasks.TypePreview, k))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return false, nil
	}
	return false, err
}

// expectedSteps are the tasks a live order must have queued in its state.
func (h *Handlers) expectedSteps(r *orders.Record) []Step {
	k := r.Key()
	if len(r.ProviderOrderIDs) > 0 {
		steps := []Step{newPollTask(k, r.PollSeq, h.wait(r.PollStep))}
		if tracking(r) {
			steps = append(steps, newTrackTask(k, r.TrackSeq, h.wait(r.TrackStep)))
		}
		return steps
	}
	switch r.State {
	case providers.StateReceived:
		if s, err := PreviewStep(r.Request); err == nil {
			return []Step{s}
		}
	case providers.StatePreviewed:
		return []Step{newCreateTask(k)}
	}
	return nil // parked for a person (needs_review without a provider order)
}

// RunSweeps runs SweepDeadlines and SweepRepairs every interval until ctx
// ends, logging failures (a sweep is retried at the next tick).
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
			if _, err := h.SweepRepairs(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("repair sweep failed; retried at the next tick", "err", err)
			}
		}
	}
}
