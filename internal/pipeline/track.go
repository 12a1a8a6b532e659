package pipeline

import (
	"context"
	"errors"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// track follows the parcel of a shipped order until it is signed for (the
// order becomes delivered), ends on a failure branch, or the order ends.
// Like poll, each run is one link of a chain (the record's TrackSeq).
func (h *Handlers) track(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil || r.TrackDone {
		return err
	}
	if r.Parcel == nil || len(r.ProviderOrderIDs) == 0 {
		return skip("track: order %s has no parcel yet", j.key)
	}
	switch {
	case r.TrackSeq == j.seq+1:
		return h.nextTrack(ctx, j, r)
	case r.TrackSeq != j.seq:
		return nil
	}
	p, err := j.p.Trace(ctx, r.ProviderOrderIDs[0], r.Parcel)
	if err != nil {
		if _, ok := deferralOf(err); ok || errors.Is(err, context.Canceled) {
			return err
		}
		if !errors.Is(err, providers.ErrNotFound) {
			j.log.Warn("trace failed; tracking goes on", "class", providers.ClassOf(err).String(), "err", err)
		}
		p = nil
	}
	r, err = h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || r.TrackDone || r.TrackSeq != j.seq {
			return orders.ErrNoChange
		}
		r.TrackSeq++
		if p == nil {
			r.TrackStep = min(r.TrackStep+1, len(h.cfg.PollSchedule)-1)
			return nil
		}
		changed := p.Status != r.ParcelStatus
		r.ParcelStatus = p.Status
		switch {
		case p.Delivered():
			r.Delivered, r.TrackDone = true, true
			r.Apply(providers.EventParcelSigned, h.cfg.Store.Now(), p.Status)
		case p.Failed():
			r.TrackDone = true
			j.log.Warn("parcel ended on a failure branch", "parcel", p.Status)
		case changed:
			r.TrackStep = 0
		default:
			r.TrackStep = min(r.TrackStep+1, len(h.cfg.PollSchedule)-1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.nextTrack(ctx, j, r)
}

// nextTrack enqueues the parcel's next trace, scheduled by its track step.
func (h *Handlers) nextTrack(ctx context.Context, j *job, r *orders.Record) error {
	if r.Terminal() || r.TrackDone {
		return nil
	}
	return h.enqueue(ctx, newTrackTask(j.key, r.TrackSeq, h.wait(r.TrackStep)))
}
