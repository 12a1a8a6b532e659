package pipeline

import (
	"context"
	"errors"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// track follows the parcel of a shipped order until it is signed for (the
// order becomes delivered), ends on a failure branch, or the order ends.
func (h *Handlers) track(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil || r.TrackDone {
		return err
	}
	if r.Parcel == nil || len(r.ProviderOrderIDs) == 0 {
		return skip("track: order %s has no parcel yet", j.key)
	}
	p, err := j.p.Trace(ctx, r.ProviderOrderIDs[0], r.Parcel)
	if err != nil {
		if _, ok := deferralOf(err); ok || errors.Is(err, context.Canceled) {
			return err
		}
		if !errors.Is(err, providers.ErrNotFound) {
			j.log.Warn("trace failed; tracking goes on", "class", providers.ClassOf(err).String(), "err", err)
		}
		return &providers.DeferError{Reason: "track", Wait: h.wait(r.TrackStep)}
	}
	r, err = h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || r.TrackDone {
			return errStop
		}
		changed := p.Status != r.ParcelStatus
		r.ParcelStatus = p.Status
		switch {
		case p.Delivered():
			r.Delivered, r.TrackDone = true, true
			if r.State.After(providers.StateDelivered) {
				r.SetState(providers.StateDelivered, h.cfg.Store.Now(), p.Status)
			}
		case p.Failed():
			r.TrackDone = true
			j.log.Warn("parcel ended on a failure branch", "parcel", p.Status)
		case changed:
			r.TrackStep = 0
		case r.TrackStep < len(h.cfg.PollSchedule)-1:
			r.TrackStep++
		default:
			return errStop
		}
		return nil
	})
	if err != nil || r.TrackDone || r.Terminal() {
		return err
	}
	return &providers.DeferError{Reason: "track", Wait: h.wait(r.TrackStep)}
}
