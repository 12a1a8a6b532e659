package pipeline

import (
	"context"
	"errors"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// awaitCreate is how long a cancel waits for a create in flight to end.
const awaitCreate = 2 * time.Second

// tooFast is 1688's refusal of a cancel within 10 s of creation.
const tooFast = "CLOSE_ORDER_TOO_FAST"

// RequestCancel marks an order as to be cancelled and enqueues the cancel
// task. An ended order cannot be cancelled: ok is false and the record is
// returned as it is.
func RequestCancel(ctx context.Context, st *orders.Store, enq Enqueuer, insp TaskInspector, k orders.Key) (rec *orders.Record, ok bool, err error) {
	rec, err = st.Update(ctx, k, func(r *orders.Record) error {
		if r.Terminal() || r.CancelRequested {
			return orders.ErrNoChange
		}
		r.CancelRequested = true
		return nil
	})
	if err != nil || rec.Terminal() {
		return rec, false, err
	}
	if err := Enqueue(ctx, enq, insp, NewCancelTask(k)); err != nil {
		return rec, false, err
	}
	return rec, true, nil
}

// cancel asks the provider to cancel an unpaid order. Before the create is
// sent, the order is cancelled here and never sent; while a create is in
// flight, it waits for the outcome.
func (h *Handlers) cancel(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil {
		return err
	}
	if len(r.ProviderOrderIDs) == 0 {
		r, err = h.update(ctx, j, func(r *orders.Record) error {
			if r.Terminal() || len(r.ProviderOrderIDs) > 0 || r.CreateAttempts > 0 {
				return orders.ErrNoChange
			}
			r.Apply(providers.EventCancelled, h.cfg.Store.Now(), "cancelled before create")
			return nil
		})
		if err != nil || r.Terminal() {
			return err
		}
		return &providers.DeferError{Reason: "await_create", Wait: awaitCreate}
	}
	for _, id := range r.ProviderOrderIDs {
		err := j.p.Cancel(ctx, id, "cancelled by upstream")
		if err == nil {
			continue
		}
		var pe *providers.PermanentError
		switch {
		case errors.As(err, &pe) && pe.Code == tooFast:
			return &providers.DeferError{Reason: "cancel_too_fast", Wait: 10 * time.Second, Err: err}
		case errors.As(err, &pe):
			j.log.Warn("cancel refused by the provider", "code", pe.Code, "message", pe.Message)
			_, err := h.update(ctx, j, func(r *orders.Record) error {
				r.CancelRefused = pe.Code + ": " + pe.Message
				return nil
			})
			return err
		default:
			return err
		}
	}
	if err := PollNow(ctx, h.cfg.Store, h.cfg.Inspector, j.key); err != nil {
		j.log.Debug("prompt poll after cancel not possible", "err", err)
	}
	return nil
}
