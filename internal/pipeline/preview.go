package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// preview validates the order, creates its record (once), prices it,
// applies the price guard and goes on to create it in the same task
// (createInline).
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
	// Submit recorded the order: read it, with the Redis epoch the create
	// that follows may need (one round trip); only a preview enqueued
	// without a record (a Go producer's) creates it.
	r, epoch, err := h.cfg.Store.GetWithEpoch(ctx, k)
	if err == nil {
		j.epoch, j.epochRead = epoch, time.Now()
	}
	if errors.Is(err, orders.ErrNotFound) {
		var created bool
		if r, created, err = h.cfg.Store.Create(ctx, req); err == nil && created {
			j.log.Info("order received")
		}
	}
	if err != nil {
		return err
	}
	j.cur = r
	if done, err := h.atDeadline(ctx, j, r); err != nil || done {
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
	priced := func(r *orders.Record) error {
		if r.State != providers.StateReceived {
			return orders.ErrNoChange
		}
		now := h.cfg.Store.Now()
		r.Quote, r.QuotedAt = q, now.UTC()
		r.Deadline = h.deadline(r)
		if refused := quoteRefused(r, q, "preview"); refused != nil {
			r.Error = refused
			r.Apply(providers.EventPriceGuard, now, CodePriceGuard)
			return nil
		}
		r.Apply(providers.EventPreviewed, now, "")
		return nil
	}
	if next := r.Clone(); !h.stageCreate && priced(next) == nil && next.State == providers.StatePreviewed {
		// The create follows at once: the quote is written with its
		// attempt (or whatever it comes to), one write instead of two.
		j.pending = func(r *orders.Record) bool { return priced(r) == nil }
		return h.createInline(ctx, j, next)
	}
	r, err = h.update(ctx, j, priced)
	if err != nil || r.State != providers.StatePreviewed {
		return err
	}
	return h.enqueue(ctx, newCreateTask(k)) // staged (tests)
}

// quoteRefused is the price guard on a quote: a zero or missing total
// (a provider that did not price the order) or one above maxTotal is
// refused before any create.
func quoteRefused(r *orders.Record, q *providers.Quote, source string) *orders.ErrorInfo {
	if q.Total <= 0 {
		return &orders.ErrorInfo{Code: CodePriceGuard, Total: providers.FormatYuan(q.Total),
			Message: source + " answered no total (" + providers.FormatYuan(q.Total) + "): refused before create"}
	}
	if limit, ok := r.Request.MaxTotalFen(); ok && q.Total > limit {
		return priceError(CodePriceGuard, source, q.Total, limit)
	}
	return nil
}

// repreview makes the quote again before a create when it is older than
// QUOTE_MAX_AGE, and applies the price guard to the new one. It returns
// the record to create from, or nil when the order was rejected (or has
// moved on meanwhile).
func (h *Handlers) repreview(ctx context.Context, j *job, r *orders.Record) (*orders.Record, error) {
	at := quotedAt(r)
	if r.Quote != nil && !at.IsZero() && h.cfg.Store.Now().Sub(at) <= h.cfg.QuoteMaxAge {
		return r, nil
	}
	age := "of unknown age"
	if !at.IsZero() {
		age = h.cfg.Store.Now().Sub(at).Round(time.Second).String() + " old"
	}
	j.log.Info("quote too old for a create: previewing again", "age", age, "max", h.cfg.QuoteMaxAge)
	q, err := j.p.Preview(ctx, &r.Request)
	if err != nil {
		return nil, err
	}
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		now := h.cfg.Store.Now()
		old := lastTotal(r)
		r.Quote, r.QuotedAt = q, now.UTC()
		if q.Total != old && q.Total > 0 {
			r.Totals = nil // the new quote is the reference now
			r.History = append(r.History, orders.Transition{State: r.State, At: now.UTC(), Event: orders.EntryPriceChanged,
				Note: fmt.Sprintf("preview again (quote %s): total %s -> %s", age, providers.FormatYuan(old), providers.FormatYuan(q.Total))})
		}
		if refused := quoteRefused(r, q, "new preview"); refused != nil {
			r.Error = refused
			r.Apply(providers.EventPriceGuard, now, CodePriceGuard)
		}
		return nil
	})
	if err != nil || rec.Terminal() || len(rec.ProviderOrderIDs) > 0 {
		return nil, err
	}
	return rec, nil
}

// quotedAt is when the order's quote was made (for records written before
// QuotedAt existed: when the order entered previewed).
func quotedAt(r *orders.Record) time.Time {
	if !r.QuotedAt.IsZero() {
		return r.QuotedAt
	}
	for _, t := range r.History {
		if t.State == providers.StatePreviewed && t.Event == "" {
			return t.At
		}
	}
	return time.Time{}
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
