package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// Error codes and needs-review reasons of the deadline.
const (
	// CodeDeadline: the order reached ORDER_DEADLINE with nothing bought
	// (never placed, or placed, unpaid and cancelled at the provider).
	CodeDeadline = "DEADLINE"
	// ReasonDeadlineLive: the deadline passed while the order lives at
	// the provider (paid, or a cancel was refused); it is followed on at
	// the slowest poll step until the provider ends it.
	ReasonDeadlineLive = "DEADLINE_LIVE"
)

// Why orderflow itself cancels an order at the provider (Record.CancelFor).
const (
	cancelForDeadline = CodeDeadline
	cancelForPrice    = CodePriceGuard
	// cancelForEnded: a create landed on an order that had ended otherwise.
	cancelForEnded = "ENDED"
)

// atDeadline takes the deadline's step when the order is past it. An
// order with no provider order ends expired, once a lookup (when a create
// was ever sent) trusted-ly finds nothing at the provider; one it finds is
// adopted and dealt with as placed. A placed order that is not paid is
// cancelled at the provider first (the cancel step then ends it expired);
// a paid one is parked (DEADLINE_LIVE) and followed on. It reports whether
// the running step has nothing more to do.
func (h *Handlers) atDeadline(ctx context.Context, j *job, r *orders.Record) (bool, error) {
	if r.Terminal() {
		return true, nil
	}
	dl := h.deadline(r)
	if r.DeadlineLive || r.CancelFor != "" || h.cfg.Store.Now().Before(dl) {
		// (an orderflow cancel under way ends the order either way)
		return false, nil
	}
	if len(r.ProviderOrderIDs) > 0 {
		return false, h.deadlinePlaced(ctx, j, r)
	}
	if r.CreateAttempts > 0 {
		// A create may have reached the provider: look before ending it.
		pl, err := j.p.Lookup(ctx, j.key.OutOrderID)
		switch {
		case err == nil:
			j.log.Info("at the deadline, the provider has the order: adopted, then cancelled if unpaid", "providerOrderIds", pl.OrderIDs)
			return true, h.created(ctx, j, pl, noteReconciled)
		case errors.Is(err, providers.ErrNotFound):
			wait, err := h.unsettled(ctx, j, r)
			if err != nil {
				return false, err
			}
			if wait > 0 {
				return false, &providers.DeferError{Reason: "settle", Wait: wait}
			}
		default:
			return false, fmt.Errorf("deadline: look up by outOrderId: %w", err)
		}
	}
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		if !r.Apply(providers.EventDeadline, h.cfg.Store.Now(), "deadline") {
			return orders.ErrNoChange
		}
		r.Error = &orders.ErrorInfo{Code: CodeDeadline, Message: "not placed before the order deadline " + dl.Format(time.RFC3339)}
		return nil
	})
	if err != nil {
		return false, err
	}
	return rec.Terminal(), nil
}

// deadlinePlaced deals with a placed order at its deadline: unpaid, the
// cancel step cancels it at the provider (and ends it expired); paid (as
// last reported), it is parked and followed on.
func (h *Handlers) deadlinePlaced(ctx context.Context, j *job, r *orders.Record) error {
	if paid(r.ProviderState) {
		return h.parkLive(ctx, j, fmt.Sprintf("the deadline passed while the provider order is %s (%s): paid, so not cancelled; followed until the provider ends it",
			r.ProviderState, r.RawStatus))
	}
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || r.CancelFor != "" {
			return orders.ErrNoChange
		}
		r.CancelFor, r.CancelRequested = cancelForDeadline, true
		return nil
	})
	if err != nil || rec.Terminal() {
		return err
	}
	j.log.Info("deadline passed before payment: cancelling at the provider")
	return h.enqueue(ctx, NewCancelTask(j.key))
}

// parkLive parks a placed order that lives at the provider past its
// deadline, to be followed at the slowest poll step.
func (h *Handlers) parkLive(ctx context.Context, j *job, why string) error {
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || r.DeadlineLive {
			return orders.ErrNoChange
		}
		h.markLive(r, why)
		return nil
	})
	if err != nil {
		return err
	}
	if rec.DeadlineLive {
		j.log.Warn("order parked for review", "reason", ReasonDeadlineLive, "why", why)
		return h.cfg.Store.PastDeadline(ctx, j.key)
	}
	return nil
}

// markLive parks r as living at the provider past its deadline
// (DEADLINE_LIVE; already parked, the deadline is now the question), to be
// followed at the slowest poll step.
func (h *Handlers) markLive(r *orders.Record, why string) {
	r.DeadlineLive = true
	r.PollStep = len(h.cfg.PollSchedule) - 1
	r.Park(ReasonDeadlineLive, h.cfg.Store.Now())
	r.Error = &orders.ErrorInfo{Code: ReasonDeadlineLive, Message: why}
}

// paid reports whether a provider state means the order is paid for.
func paid(s providers.State) bool {
	return s == providers.StatePaid || s == providers.StateShipped || s == providers.StateDelivered
}
