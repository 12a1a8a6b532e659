package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// preview validates the order, creates its record (once), prices it,
// applies the price guard and hands over to create.
func (h *Handlers) preview(ctx context.Context, t *asynq.Task) error {
	var req providers.OrderRequest
	if err := json.Unmarshal(t.Payload(), &req); err != nil {
		return skip("malformed %s payload: %v", t.Type(), err)
	}
	if err := req.Validate(); err != nil {
		return skip("invalid order in %s payload: %v", t.Type(), err)
	}
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	j, err := h.newJob(ctx, t, k)
	if err != nil {
		return err
	}
	r, created, err := h.cfg.Store.Create(ctx, req)
	if err != nil {
		return err
	}
	if created {
		j.log.Info("order received")
	}
	if done, err := h.expireIfLate(ctx, j, r); err != nil || done {
		return err
	}
	switch {
	case r.CancelRequested && r.State == providers.StateReceived:
		_, err := h.update(ctx, j, func(r *orders.Record) error {
			if r.State != providers.StateReceived {
				return orders.ErrNoChange
			}
			r.Apply(providers.EventCancelled, h.cfg.Store.Now(), "cancelled before preview")
			return nil
		})
		return err
	case r.State == providers.StatePreviewed:
		return h.enqueue(ctx, newCreateTask(k)) // a re-run after a crash
	case r.State != providers.StateReceived:
		return nil // a re-delivered step: already past preview
	}

	q, err := j.p.Preview(ctx, &r.Request)
	if err != nil {
		return h.callFailed(ctx, j, "preview", err)
	}
	r, err = h.update(ctx, j, func(r *orders.Record) error {
		if r.State != providers.StateReceived {
			return orders.ErrNoChange
		}
		now := h.cfg.Store.Now()
		r.Quote = q
		r.Deadline = h.deadline(r)
		if limit, ok := r.Request.MaxTotalFen(); ok && q.Total > limit {
			r.Error = &orders.ErrorInfo{Code: "PRICE_GUARD", Message: fmt.Sprintf(
				"preview total %s exceeds maxTotal %s", providers.FormatYuan(q.Total), providers.FormatYuan(limit))}
			r.Apply(providers.EventPriceGuard, now, "PRICE_GUARD")
			return nil
		}
		r.Apply(providers.EventPreviewed, now, "")
		return nil
	})
	if err != nil {
		return err
	}
	if r.State != providers.StatePreviewed {
		return nil
	}
	return h.enqueue(ctx, newCreateTask(k))
}

// callFailed steers a failed provider call of a step that must succeed
// (preview, create): deferrals wait, permanent errors fail the order,
// anything else is retried until the last attempt, which fails the order.
func (h *Handlers) callFailed(ctx context.Context, j *job, op string, err error) error {
	if _, ok := deferralOf(err); ok {
		return err
	}
	var pe *providers.PermanentError
	if errors.As(err, &pe) {
		_, uerr := h.update(ctx, j, func(r *orders.Record) error {
			if !r.Fail(pe.Code, pe.Message, h.cfg.Store.Now()) {
				return orders.ErrNoChange
			}
			return nil
		})
		return uerr
	}
	if errors.Is(err, context.Canceled) || !lastAttempt(ctx) {
		return err
	}
	_, uerr := h.update(ctx, j, func(r *orders.Record) error {
		if !r.Fail("RETRIES_EXHAUSTED", fmt.Sprintf("%s: %v", op, err), h.cfg.Store.Now()) {
			return orders.ErrNoChange
		}
		return nil
	})
	return uerr
}
