package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// poll fetches the order's status at the provider, records a change,
// starts parcel tracking once shipped, and schedules the next poll until
// the order is terminal. Each run is one link of a chain: run seq moves the
// record's PollSeq to seq+1 and enqueues poll seq+1 in the same atomic
// write (orders.Task), so a crash leaves either this run to be re-run or
// its successor queued. A run that changed nothing, with nothing left to
// do after its write, also completes its own task in that write
// (orders.Finisher): it cannot be left active once its successor is
// queued.
func (h *Handlers) poll(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil {
		return err
	}
	if len(r.ProviderOrderIDs) == 0 {
		return skip("poll: order %s has no provider order id (state %s)", j.key, r.State)
	}
	switch {
	case r.PollSeq == j.seq+1:
		return h.nextPoll(ctx, r) // a re-run after a crash: make sure the successor is queued
	case r.PollSeq != j.seq:
		return nil // an old link of the chain
	}
	statuses := make([]*providers.OrderStatus, 0, len(r.ProviderOrderIDs))
	failed := false
	for _, id := range r.ProviderOrderIDs {
		st, err := j.p.Details(ctx, id)
		if err != nil {
			if _, ok := deferralOf(err); ok || errors.Is(err, context.Canceled) {
				return err
			}
			j.log.Warn("poll failed; polling goes on", "providerOrderId", id, "class", providers.ClassOf(err).String(), "err", err)
			failed = true
			break
		}
		statuses = append(statuses, st)
	}
	var next providers.State
	var raw string
	if !failed {
		next, raw = combine(statuses)
		if next == providers.StateUnknown {
			j.log.Warn("unknown provider status word; state kept", "raw", raw)
		}
	}
	var cancel bool
	r, err = h.updateThen(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || r.PollSeq != j.seq {
			return orders.ErrNoChange
		}
		r.PollSeq++
		if failed {
			r.PollStep = h.nextStep(r, r.PollStep+1)
			return nil
		}
		changed := false
		if r.Adopted && !r.LinesChecked {
			changed = h.checkAdoptedLines(r, statuses)
		}
		if next != providers.StateUnknown {
			r.ProviderState = next
		}
		if total := statusTotal(statuses); h.seeTotal(r, "poll", total) {
			changed = true
			cancel = h.guardPlaced(r, "poll", total, paid(next))
		}
		changed = r.Apply(h.reportedEvent(r, next), h.cfg.Store.Now(), raw) || changed
		changed = addParcels(r, statuses) || changed
		if changed || raw != r.RawStatus {
			r.PollStep = h.nextStep(r, 0)
		} else {
			r.PollStep = h.nextStep(r, r.PollStep+1)
		}
		r.RawStatus = raw
		return nil
	}, h.nextPollStep, func(r *orders.Record) bool { return !cancel && !tracking(r) })
	if err != nil || r.Terminal() {
		return err
	}
	if cancel {
		j.log.Warn("total above maxTotal before payment: cancelling at the provider", "total", providers.FormatYuan(lastTotal(r)))
		if err := h.enqueue(ctx, NewCancelTask(j.key)); err != nil {
			return err
		}
	}
	if tracking(r) {
		if err := h.enqueue(ctx, newTrackTask(j.key, r.TrackSeq, 0)); err != nil {
			return err
		}
	}
	return nil
}

// reportedEvent is the event of the provider reporting the order in state
// next. The provider's "cancel" of an order orderflow itself is cancelling
// ends it as orderflow's cancel would (rejected for the price guard,
// expired for the deadline): a poll may see the cancel before the cancel
// step records the provider's answer.
func (h *Handlers) reportedEvent(r *orders.Record, next providers.State) providers.Event {
	ev := map[string]providers.Event{cancelForPrice: providers.EventPriceGuard, cancelForDeadline: providers.EventDeadline}[r.CancelFor]
	if next != providers.StateCancelled || ev == "" {
		return providers.Reported(next)
	}
	if _, ok := providers.Next(r.State, ev); !ok {
		return providers.Reported(next) // the table knows better: e.g. a paid order is cancelled by the seller
	}
	r.CancelDone = true
	if ev == providers.EventDeadline {
		r.Error = &orders.ErrorInfo{Code: CodeDeadline, Message: "no terminal state before the order deadline " +
			h.deadline(r).Format(time.RFC3339) + "; cancelled at the provider"}
	}
	return ev
}

// nextStep is the poll step to go to: step, or the slowest for an order
// that lives at the provider past its deadline.
func (h *Handlers) nextStep(r *orders.Record, step int) int {
	last := len(h.cfg.PollSchedule) - 1
	if r.DeadlineLive {
		return last
	}
	return min(step, last)
}

// addParcels adds the parcels the provider orders now name. It reports
// whether there was a new one.
func addParcels(r *orders.Record, sts []*providers.OrderStatus) bool {
	added := false
	for _, st := range sts {
		if st.Parcel == nil || slices.ContainsFunc(r.Parcels, func(p orders.Parcel) bool { return p.OrderID == st.OrderID }) {
			continue
		}
		r.Parcels = append(r.Parcels, orders.Parcel{OrderID: st.OrderID, ParcelRef: *st.Parcel})
		r.TrackDone, added = false, true
	}
	return added
}

// tracking reports whether the order's parcels are to be traced: it has
// shipped (as the provider says, whatever the record's state), and a
// parcel is still under way.
func tracking(r *orders.Record) bool {
	return len(r.Parcels) > 0 && !r.TrackDone && shippedOrLater(r.ProviderState)
}

// checkAdoptedLines parks an adopted order whose provider orders lack some
// of the request's lines: the create whose answer was lost was a partial
// one. It reports whether the state changed.
func (h *Handlers) checkAdoptedLines(r *orders.Record, sts []*providers.OrderStatus) bool {
	missing, ok := missingLines(r.Request.Items, sts)
	if !ok {
		return false // the provider does not say; the next poll asks again
	}
	r.LinesChecked = true
	if len(missing) == 0 {
		return false
	}
	r.Rejected = missing
	if !r.Apply(providers.EventParked, h.cfg.Store.Now(), ReasonPartialCreate) {
		return false
	}
	r.Error = &orders.ErrorInfo{Code: ReasonPartialCreate, Message: "the order found at the provider lacks " + rejectedText(missing)}
	return true
}

// nextPoll enqueues the order's next poll, scheduled by its poll step.
func (h *Handlers) nextPoll(ctx context.Context, r *orders.Record) error {
	if s, ok := h.nextPollStep(r); ok {
		return h.enqueue(ctx, s)
	}
	return nil
}

// nextPollStep is the order's next poll, scheduled by its poll step (none
// for an order that has ended).
func (h *Handlers) nextPollStep(r *orders.Record) (Step, bool) {
	if r.Terminal() {
		return Step{}, false
	}
	return newPollTask(r.Key(), r.PollSeq, h.wait(r.PollStep)), true
}

func (h *Handlers) wait(step int) time.Duration {
	s := h.cfg.PollSchedule
	return s[min(step, len(s)-1)]
}

func shippedOrLater(s providers.State) bool {
	return s == providers.StateShipped || s == providers.StateDelivered || s == providers.StateCompleted
}

// combine folds the statuses of a (possibly split) order into one state:
// the least advanced part while any is live; when all have ended,
// completed if any part completed, else the first part's state. A part in
// an unknown word makes the whole unknown (the state is kept). raw lists
// the provider words.
func combine(sts []*providers.OrderStatus) (providers.State, string) {
	words := make([]string, len(sts))
	for i, st := range sts {
		words[i] = st.Raw
		if len(sts) > 1 {
			words[i] = st.OrderID + "=" + st.Raw
		}
	}
	raw := strings.Join(words, ",")
	var least providers.State
	allEnded, anyCompleted := true, false
	for _, st := range sts {
		switch {
		case st.State == providers.StateUnknown:
			return providers.StateUnknown, raw
		case st.State == providers.StateCompleted:
			anyCompleted = true
		case !st.State.Terminal():
			allEnded = false
			if least == providers.StateUnknown || st.State.Precedes(least) {
				least = st.State
			}
		}
	}
	switch {
	case !allEnded:
		return least, raw
	case anyCompleted:
		return providers.StateCompleted, raw
	}
	return sts[0].State, raw
}
