package pipeline

import (
	"context"
	"errors"
	"fmt"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// create places the order at the provider, exactly once. The attempt is
// recorded before anything is sent; every later attempt (a retry, a re-run
// after a crash) first looks the order up by outOrderId and creates only
// when the provider has none.
func (h *Handlers) create(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil {
		return err
	}
	if len(r.ProviderOrderIDs) > 0 {
		return h.enqueue(ctx, newPollTask(j.key, r.PollSeq, 0)) // a re-run: already created
	}
	if r.State != providers.StatePreviewed && r.State != providers.StateNeedsReview {
		return nil
	}
	if r.CreateAttempts > 0 {
		pl, err := j.p.Lookup(ctx, j.key.OutOrderID)
		switch {
		case err == nil:
			j.log.Info("create reconciled: the provider has the order", "providerOrderIds", pl.OrderIDs)
			return h.created(ctx, j, pl, "reconciled")
		case errors.Is(err, providers.ErrNotFound):
			j.log.Info("create reconciled: the provider has no order, creating")
		default:
			if _, ok := deferralOf(err); ok {
				return err
			}
			if lastAttempt(ctx) {
				return h.park(ctx, j, err)
			}
			return fmt.Errorf("reconcile by outOrderId: %w", err)
		}
	}
	r, err = h.update(ctx, j, func(r *orders.Record) error {
		if len(r.ProviderOrderIDs) > 0 || r.Terminal() {
			return orders.ErrNoChange
		}
		if r.CancelRequested {
			r.Apply(providers.EventCancelled, h.cfg.Store.Now(), "cancelled before create")
			return nil
		}
		r.CreateAttempts++
		r.CreateSentAt = h.cfg.Store.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	if r.Terminal() || len(r.ProviderOrderIDs) > 0 {
		return nil
	}
	pl, err := j.p.Create(ctx, &r.Request, r.Quote)
	if err != nil {
		if providers.ClassOf(err) == providers.ClassUnknownOutcome {
			j.log.Warn("create outcome unknown; the next attempt reconciles", "err", err)
			if lastAttempt(ctx) {
				return h.park(ctx, j, err)
			}
			return err
		}
		if lastAttempt(ctx) && providers.ClassOf(err) != providers.ClassPermanent {
			if _, ok := deferralOf(err); !ok {
				// The request may have left: do not guess.
				return h.park(ctx, j, err)
			}
		}
		return h.callFailed(ctx, j, "create", err)
	}
	return h.created(ctx, j, pl, "")
}

// created records the provider order ids and starts polling.
func (h *Handlers) created(ctx context.Context, j *job, pl *providers.Placement, note string) error {
	if len(pl.OrderIDs) == 0 {
		return errors.New("create: the provider returned no order id")
	}
	_, err := h.update(ctx, j, func(r *orders.Record) error {
		if len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		r.ProviderOrderIDs = pl.OrderIDs
		if r.Apply(providers.EventCreated, h.cfg.Store.Now(), note) {
			r.Error = nil
		} // else expired meanwhile: keep the ids for a person
		return nil
	})
	if err != nil {
		return err
	}
	if err := h.cfg.Store.Link(ctx, j.key, pl.OrderIDs, h.cfg.Deadline+h.cfg.Store.Retention()); err != nil {
		return err
	}
	return h.enqueue(ctx, newPollTask(j.key, 0, 0))
}

// park leaves an order whose create outcome cannot be learned for a
// person: state needs_review, with the last error. The deadline still ends
// it; an operator can re-run the archived create task from the web UI once
// the provider answers again.
func (h *Handlers) park(ctx context.Context, j *job, cause error) error {
	j.log.Error("create outcome cannot be learned; order parked for review", "err", cause)
	_, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		if !r.Apply(providers.EventParked, h.cfg.Store.Now(), "CREATE_OUTCOME_UNKNOWN") {
			return orders.ErrNoChange
		}
		r.Error = &orders.ErrorInfo{Code: "CREATE_OUTCOME_UNKNOWN", Message: cause.Error()}
		return nil
	})
	if err != nil {
		return err
	}
	return skip("create outcome unknown after the last attempt; order parked in needs_review: %v", cause)
}
