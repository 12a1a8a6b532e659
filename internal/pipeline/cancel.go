package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
	"orderflow/providers"
)

// awaitCreate is how long a cancel waits for a create in flight to end.
const awaitCreate = 2 * time.Second

// tooFast is 1688's refusal of a cancel within 10 s of creation (the
// code, or the first word of the message behind the provider's own code).
const tooFast = "CLOSE_ORDER_TOO_FAST"

// CancelOutcome says what a cancel request will do.
type CancelOutcome string

// Cancel outcomes.
const (
	// CancelQueued: the cancel step runs (at the provider once placed).
	CancelQueued CancelOutcome = "requested"
	// CancelNotCancellable: the order has ended, or is paid.
	CancelNotCancellable CancelOutcome = "not cancellable"
	// CancelAwaitsReview: the order is parked without a known provider
	// order although a create may have reached the provider: the cancel is
	// recorded and done once a review finds the provider order (recheck,
	// attach), or the order is closed.
	CancelAwaitsReview CancelOutcome = "awaits review"
)

// RequestCancel marks an order as to be cancelled and enqueues the cancel
// task. An ended or paid order cannot be cancelled, and a parked order
// whose create outcome is unknown waits for a review: the outcome says
// which, with the record as it is.
func RequestCancel(ctx context.Context, st *orders.Store, enq Enqueuer, insp TaskInspector, k orders.Key) (*orders.Record, CancelOutcome, error) {
	rec, err := st.Update(ctx, k, func(r *orders.Record) error {
		if r.Terminal() || r.CancelRequested || paid(r.ProviderState) {
			return orders.ErrNoChange
		}
		r.CancelRequested = true
		return nil
	})
	switch {
	case err != nil:
		return rec, "", err
	case rec.Terminal() || paid(rec.ProviderState):
		return rec, CancelNotCancellable, nil
	case awaitsReview(rec):
		return rec, CancelAwaitsReview, nil
	}
	step := NewCancelTask(k)
	if err := Enqueue(ctx, enq, insp, step); err != nil {
		return rec, "", err
	}
	_ = st.Announce(ctx, step.Queue) // best effort: unannounced, it waits up to a second
	return rec, CancelQueued, nil
}

// awaitsReview reports whether an order is parked with no provider order
// known although a create may have reached the provider: only a review
// can tell whether there is anything to cancel.
func awaitsReview(r *orders.Record) bool {
	return r.State == providers.StateNeedsReview && len(r.ProviderOrderIDs) == 0 && r.CreateAttempts > 0
}

// cancel asks the provider to cancel an unpaid order: for the upstream,
// or for orderflow itself (CancelFor: the price guard, the deadline).
// Before the create is sent, the order is cancelled here and never sent;
// while a create is in flight, it waits for the outcome. Once the provider
// accepted, an orderflow cancel ends the order (rejected for the price
// guard, expired for the deadline); a refusal parks it (PRICE_CHANGED,
// DEADLINE_LIVE). An upstream's cancel ends when a poll sees the
// provider's "cancel".
func (h *Handlers) cancel(ctx context.Context, j *job) error {
	r, err := h.cfg.Store.Get(ctx, j.key)
	if errors.Is(err, orders.ErrNotFound) {
		return skip("cancel: no order record for %s", j.key)
	}
	if err != nil {
		return err
	}
	if !lateLanding(r) {
		if r, err = h.load(ctx, j); err != nil || r == nil {
			return err
		}
	}
	if len(r.ProviderOrderIDs) == 0 {
		return h.cancelUnplaced(ctx, j)
	}
	why := map[string]string{cancelForPrice: "the price is above maxTotal", cancelForDeadline: "the order deadline passed",
		cancelForEnded: "the order was closed"}[r.CancelFor]
	if why == "" {
		why = "cancelled by upstream"
	}
	for _, id := range r.ProviderOrderIDs {
		err := j.p.Cancel(ctx, id, why)
		if err == nil {
			continue
		}
		var pe *providers.PermanentError
		switch {
		case errors.As(err, &pe) && strings.Contains(pe.Code+" "+pe.Message, tooFast):
			return &providers.DeferError{Reason: "cancel_too_fast", Wait: 10 * time.Second, Err: err}
		case errors.As(err, &pe):
			j.log.Warn("cancel refused by the provider", "for", r.CancelFor, "code", pe.Code, "message", pe.Message)
			return h.cancelRefused(ctx, j, id, pe)
		default:
			return err
		}
	}
	return h.cancelAccepted(ctx, j, r)
}

// lateLanding reports whether r is an order that ended while its create
// was landing (it expired, or a person closed it): ended, with provider
// orders still to be cancelled.
func lateLanding(r *orders.Record) bool {
	return r.Terminal() && (r.CancelFor == cancelForDeadline || r.CancelFor == cancelForEnded) &&
		!r.CancelDone && len(r.ProviderOrderIDs) > 0
}

// cancelUnplaced cancels an order with no provider order: at once when no
// create was ever sent; a parked one whose create may have reached the
// provider waits for a review (nothing loops); else it waits for the
// create in flight.
func (h *Handlers) cancelUnplaced(ctx context.Context, j *job) error {
	r, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || len(r.ProviderOrderIDs) > 0 || r.CreateAttempts > 0 {
			return orders.ErrNoChange
		}
		r.Apply(providers.EventCancelled, h.cfg.Store.Now(), "cancelled before create")
		return nil
	})
	if err != nil || r.Terminal() || len(r.ProviderOrderIDs) > 0 || awaitsReview(r) {
		return err
	}
	return &providers.DeferError{Reason: "await_create", Wait: awaitCreate}
}

// cancelAccepted records that the provider accepted the cancel of every
// provider order.
func (h *Handlers) cancelAccepted(ctx context.Context, j *job, r *orders.Record) error {
	ids := strings.Join(r.ProviderOrderIDs, ",")
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.CancelDone {
			return orders.ErrNoChange
		}
		late := lateLanding(r)
		r.CancelDone = true
		now := h.cfg.Store.Now()
		note := "cancelled at the provider: " + ids + " (accepted)"
		switch {
		case late:
			r.History = append(r.History, orders.Transition{State: r.State, At: now.UTC(), Event: orders.EntryCancelled,
				Note: "the create landed after the order ended (" + string(r.State) + "); " + note})
		case r.Terminal():
		case r.CancelFor == cancelForPrice:
			r.Apply(providers.EventPriceGuard, now, note)
		case r.CancelFor == cancelForDeadline:
			if r.Apply(providers.EventDeadline, now, note) {
				r.Error = &orders.ErrorInfo{Code: CodeDeadline, Message: "no terminal state before the order deadline " +
					h.deadline(r).Format(time.RFC3339) + "; " + note}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rec.Terminal() {
		return nil
	}
	// An upstream's cancel: the poll sees the provider's "cancel".
	if err := PollNow(ctx, h.cfg.Store, h.cfg.Inspector, j.key); err != nil {
		j.log.Debug("prompt poll after cancel not possible", "err", err)
	}
	return nil
}

// cancelRefused records the provider's refusal: an orderflow cancel parks
// the order (it lives at the provider), an upstream's is answered by the
// refusal in the record.
func (h *Handlers) cancelRefused(ctx context.Context, j *job, id string, pe *providers.PermanentError) error {
	refusal := redact.ProviderText(fmt.Sprintf("%s: %s: %s", id, pe.Code, pe.Message))
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		r.CancelRefused = refusal
		if r.Terminal() {
			j.log.Error("an ended order lives at the provider: its create landed after the deadline and the cancel was refused; a person must settle it",
				"state", r.State, "refusal", refusal)
			return nil
		}
		switch r.CancelFor {
		case cancelForPrice:
			r.Park(ReasonPriceChanged, h.cfg.Store.Now())
			info := orders.ErrorInfo{Message: "the price is above maxTotal"}
			if r.Error != nil {
				info = *r.Error
			}
			info.Code = ReasonPriceChanged
			info.Message += "; the provider refused the cancel (" + refusal + ")"
			r.Error = &info
			r.CancelFor = ""
		case cancelForDeadline:
			r.CancelFor = ""
			h.markLive(r, "the deadline passed and the provider refused the cancel ("+refusal+"); followed until the provider ends it")
		}
		return nil
	})
	if err != nil || !rec.DeadlineLive {
		return err
	}
	return h.cfg.Store.PastDeadline(ctx, j.key)
}
