package pipeline

import (
	"context"
	"errors"
	"slices"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// track follows the parcels of a shipped order (one per provider order of
// a split one) until each is signed for or ends on a failure branch; the
// order becomes delivered when every provider order's parcel is signed
// for. Like poll, each run is one link of a chain (the record's TrackSeq).
func (h *Handlers) track(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil || r.TrackDone {
		return err
	}
	if len(r.Parcels) == 0 {
		return skip("track: order %s has no parcel yet", j.key)
	}
	switch {
	case r.TrackSeq == j.seq+1:
		return h.nextTrack(ctx, j, r)
	case r.TrackSeq != j.seq:
		return nil
	}
	traced := map[string]*providers.Parcel{} // by provider order id
	for _, pc := range r.Parcels {
		if pc.Done {
			continue
		}
		p, err := j.p.Trace(ctx, pc.OrderID, &pc.ParcelRef)
		if err != nil {
			if _, ok := deferralOf(err); ok || errors.Is(err, context.Canceled) {
				return err
			}
			if !errors.Is(err, providers.ErrNotFound) {
				j.log.Warn("trace failed; tracking goes on", "providerOrderId", pc.OrderID, "class", providers.ClassOf(err).String(), "err", err)
			}
			continue
		}
		traced[pc.OrderID] = p
	}
	r, err = h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || r.TrackDone || r.TrackSeq != j.seq {
			return orders.ErrNoChange
		}
		r.TrackSeq++
		changed := false
		for i := range r.Parcels {
			pc := &r.Parcels[i]
			p := traced[pc.OrderID]
			if p == nil || pc.Done {
				continue
			}
			changed = changed || p.Status != pc.Status
			pc.Status = p.Status
			switch {
			case p.Delivered():
				pc.Done, pc.Delivered = true, true
			case p.Failed():
				pc.Done = true
				j.log.Warn("parcel ended on a failure branch", "providerOrderId", pc.OrderID, "parcel", p.Status)
			}
		}
		if len(r.Parcels) == len(r.ProviderOrderIDs) && !slices.ContainsFunc(r.Parcels, func(p orders.Parcel) bool { return !p.Done }) {
			r.TrackDone = true
			if !slices.ContainsFunc(r.Parcels, func(p orders.Parcel) bool { return !p.Delivered }) {
				r.Delivered = true
				r.Apply(providers.EventParcelSigned, h.cfg.Store.Now(), providers.ParcelSigned)
			}
		}
		if changed {
			r.TrackStep = 0
		} else {
			r.TrackStep = min(r.TrackStep+1, len(h.cfg.PollSchedule)-1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.nextTrack(ctx, j, r)
}

// nextTrack enqueues the parcels' next trace, scheduled by the track step.
func (h *Handlers) nextTrack(ctx context.Context, j *job, r *orders.Record) error {
	if r.Terminal() || r.TrackDone {
		return nil
	}
	return h.enqueue(ctx, newTrackTask(j.key, r.TrackSeq, h.wait(r.TrackStep)))
}
