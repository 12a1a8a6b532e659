package pipeline

import (
	"context"
	"errors"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/tasks"
)

// TaskRunner moves a waiting task to pending at once; *asynq.Inspector is one.
type TaskRunner interface {
	RunTask(queue, id string) error
}

// PollNow makes an order's poll run at once (a provider push, a cancel):
// the waiting poll task is moved to pending. It is best effort: a poll that
// is running or not yet scheduled is left as it is.
func PollNow(r TaskRunner, k orders.Key) error {
	return r.RunTask(tasks.Queue(k.Provider, tasks.KindPoll), TaskID(tasks.TypePoll, k))
}

// poll fetches the order's status at the provider, records a change, starts
// parcel tracking once shipped, and waits for the next poll (a deferral)
// until the order is terminal.
func (h *Handlers) poll(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil {
		return err
	}
	if len(r.ProviderOrderIDs) == 0 {
		return skip("poll: order %s has no provider order id (state %s)", j.key, r.State)
	}
	statuses := make([]*providers.OrderStatus, 0, len(r.ProviderOrderIDs))
	for _, id := range r.ProviderOrderIDs {
		st, err := j.p.Details(ctx, id)
		if err != nil {
			if _, ok := deferralOf(err); ok {
				return err
			}
			if errors.Is(err, context.Canceled) {
				return err
			}
			j.log.Warn("poll failed; polling goes on", "providerOrderId", id, "class", providers.ClassOf(err).String(), "err", err)
			return h.nextPoll(r)
		}
		statuses = append(statuses, st)
	}
	next, raw, parcel := combine(statuses)
	if next == providers.StateUnknown {
		j.log.Warn("unknown provider status word; state kept", "raw", raw)
	}
	r, err = h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() {
			return errStop
		}
		changed := false
		if next != providers.StateUnknown && r.State.After(next) {
			r.SetState(next, h.cfg.Store.Now(), raw)
			changed = true
		}
		if parcel != nil && r.Parcel == nil {
			r.Parcel = parcel
		}
		switch {
		case changed || raw != r.RawStatus:
			r.PollStep = 0
		case r.PollStep < len(h.cfg.PollSchedule)-1:
			r.PollStep++
		default:
			return errStop
		}
		r.RawStatus = raw
		return nil
	})
	if err != nil {
		return err
	}
	if r.Terminal() {
		return nil
	}
	if r.Parcel != nil && !r.TrackDone && shippedOrLater(r.State) {
		if err := h.enqueue(ctx, newTrackTask(j.key)); err != nil {
			return err
		}
	}
	return h.nextPoll(r)
}

func (h *Handlers) nextPoll(r *orders.Record) error {
	return &providers.DeferError{Reason: "poll", Wait: h.wait(r.PollStep)}
}

func (h *Handlers) wait(step int) time.Duration {
	s := h.cfg.PollSchedule
	return s[min(step, len(s)-1)]
}

func shippedOrLater(s providers.State) bool {
	return s == providers.StateShipped || s == providers.StateDelivered
}

// combine folds the statuses of a (possibly split) order into one state:
// the least advanced part while any is live; when all have ended,
// completed if any part completed, else the first part's state. A part in
// an unknown word makes the whole unknown (the state is kept). raw lists
// the provider words.
func combine(sts []*providers.OrderStatus) (providers.State, string, *providers.ParcelRef) {
	var parcel *providers.ParcelRef
	words := make([]string, len(sts))
	for i, st := range sts {
		words[i] = st.Raw
		if len(sts) > 1 {
			words[i] = st.OrderID + "=" + st.Raw
		}
		if parcel == nil && st.Parcel != nil {
			parcel = st.Parcel
		}
	}
	raw := strings.Join(words, ",")
	var least providers.State
	allEnded, anyCompleted := true, false
	for _, st := range sts {
		switch {
		case st.State == providers.StateUnknown:
			return providers.StateUnknown, raw, parcel
		case st.State == providers.StateCompleted:
			anyCompleted = true
		case !st.State.Terminal():
			allEnded = false
			if least == providers.StateUnknown || st.State.After(least) {
				least = st.State // st is less advanced
			}
		}
	}
	switch {
	case !allEnded:
		return least, raw, parcel
	case anyCompleted:
		return providers.StateCompleted, raw, parcel
	}
	return sts[0].State, raw, parcel
}
