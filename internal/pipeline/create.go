package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
	"orderflow/providers"
)

// DefaultSettleWindow is CREATE_SETTLE_WINDOW's default: long enough for a
// provider that finishes a create a minute after the client gave up and
// whose search lags its writes by seconds.
const DefaultSettleWindow = 2 * time.Minute

// The create step's own budget (asynq's retry counter never decides: a
// deferral or a crash on asynq's last attempt must not archive a create
// silently).
const (
	// createBudget is how many create runs may fail (a lookup or a create
	// without an answer) before the order is parked for a person (or
	// failed, when nothing was ever sent).
	createBudget = 20
	// outcomeBudget is how long after the first send the outcome may stay
	// unknown (the provider down, its breaker open) before the order is
	// parked.
	outcomeBudget = 30 * time.Minute
	// clockMargin allows for clocks of pods that differ a little.
	clockMargin = 5 * time.Second
)

// Needs-review reasons (the error code of a parked order).
const (
	ReasonOutcomeUnknown = "CREATE_OUTCOME_UNKNOWN"
	ReasonPartialCreate  = "PARTIAL_CREATE"
)

// noteReconciled is the history note of an order adopted by a lookup.
const noteReconciled = "reconciled"

// errCancelledBeforeSend stops a create whose order was cancelled first.
var errCancelledBeforeSend = errors.New("pipeline: cancelled before the create was sent")

// create places the order at the provider, exactly once. It looks the
// order up by outOrderId first (unless a trusted "not found" of its own
// still holds): the provider, not the record, knows whether an order
// exists (the record may have expired, or Redis may have lost the record
// of a send). Only an exact outOrderId match is adopted;
// "not found" is trusted only once the settle window has passed since the
// last send and since any change of Redis server; anything ambiguous is
// "don't know" and retried within the step's own budget. The attempt is
// recorded right before the request leaves (after the quota and the
// breaker let it out).
func (h *Handlers) create(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil {
		return err
	}
	return h.createFrom(ctx, j, r)
}

// createInline runs the create step in the preview task that has just
// priced the order (r, as that task wrote it), which saves the create
// task's enqueue, dequeue, record read and completion. What does not end
// there (a deferral, a failed or unanswered create) goes on in a create
// task, whose retries and budget are the create step's own: this run
// never counts as anyone's last attempt.
//
// r is the record as the preview left it, which may not be written yet
// (j.pending): the create's first write carries it, and what ends
// without a write writes it here.
func (h *Handlers) createInline(ctx context.Context, j *job, r *orders.Record) error {
	err := h.createFrom(context.WithValue(ctx, inlineCreate{}, true), j, r)
	if ferr := h.flush(ctx, j); ferr != nil {
		if err != nil {
			j.log.Warn("create run ended, its preview not written: the preview runs again", "err", err)
		}
		return fmt.Errorf("write the preview: %w", ferr)
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, asynq.SkipRetry) {
		return err // a cancelled run re-runs the preview, which hands over to a create task
	}
	wait := RetryDelay(0, err, nil)
	j.log.Info("create goes on in a create task", "in", wait.Round(time.Millisecond), "err", err)
	return h.enqueue(ctx, newCreateTask(j.key, asynq.ProcessIn(wait)))
}

// inlineCreate marks the context of a create run inside a preview task.
type inlineCreate struct{}

// createFrom is the create step on the order's record r.
func (h *Handlers) createFrom(ctx context.Context, j *job, r *orders.Record) error {
	if len(r.ProviderOrderIDs) > 0 {
		return h.enqueue(ctx, newPollTask(j.key, r.PollSeq, 0)) // a re-run: already created
	}
	if r.State != providers.StatePreviewed && r.State != providers.StateNeedsReview {
		return nil
	}
	cleared, err := h.stillCleared(ctx, j, r)
	if err != nil {
		return h.createFailed(ctx, j, r, err)
	}
	var clearedAt time.Time
	if !cleared {
		if err := h.reconcile(ctx, j, r); !errors.Is(err, errNotThere) {
			return err // adopted, waiting, or don't know
		}
		clearedAt = h.cfg.Store.Now().UTC()
	}
	fresh, err := h.repreview(ctx, j, r)
	switch {
	case err != nil:
		return h.createError(ctx, j, r, fmt.Errorf("preview again: %w", err))
	case fresh == nil:
		return nil // rejected by the new quote
	}
	return h.send(ctx, j, fresh, clearedAt)
}

// errNotThere says reconcile found, trusted, that the provider has no order.
var errNotThere = errors.New("pipeline: the provider has no order")

// reconcile looks the order up: it adopts what the provider has, waits out
// the settle window, counts a "don't know", or answers errNotThere.
func (h *Handlers) reconcile(ctx context.Context, j *job, r *orders.Record) error {
	pl, err := j.p.Lookup(ctx, j.key.OutOrderID)
	switch {
	case err == nil:
		j.log.Info("create reconciled: the provider has the order", "providerOrderIds", pl.OrderIDs)
		return h.created(ctx, j, pl, noteReconciled)
	case errors.Is(err, providers.ErrNotFound):
		wait, err := h.unsettled(ctx, j, r)
		if err != nil {
			return h.createFailed(ctx, j, r, fmt.Errorf("reconcile: %w", err))
		}
		if wait > 0 {
			j.log.Info("the provider has no order yet; not trusted before the settle window", "wait", wait)
			return h.createDeferred(ctx, j, r, &providers.DeferError{Reason: "settle", Wait: wait})
		}
		return errNotThere
	default:
		if _, ok := deferralOf(err); ok {
			return h.createDeferred(ctx, j, r, err)
		}
		return h.createFailed(ctx, j, r, fmt.Errorf("reconcile by outOrderId: %w", err))
	}
}

// stillCleared reports whether the last trusted "not found" still holds:
// no create was sent since, it is recent, and Redis has not changed
// server since (which could have lost the record of a send).
func (h *Handlers) stillCleared(ctx context.Context, j *job, r *orders.Record) (bool, error) {
	if r.ClearedAt.IsZero() || r.ClearedAttempts != r.CreateAttempts ||
		h.cfg.Store.Now().Sub(r.ClearedAt) > h.cfg.SettleWindow {
		return false, nil
	}
	epoch, err := h.epoch(ctx, j)
	if err != nil {
		return false, err
	}
	return epoch.IsZero() || epoch.Add(clockMargin).Before(r.ClearedAt), nil
}

// send records the attempt right before the request leaves and creates.
// clearedAt, when set, is when the provider just said (trusted) that it has
// no order: a create deferred before it left keeps that answer in the
// record, so the next run goes without asking again.
func (h *Handlers) send(ctx context.Context, j *job, r *orders.Record, clearedAt time.Time) error {
	record := func(ctx context.Context) error {
		var cancelled bool
		rec, err := h.update(ctx, j, func(r *orders.Record) error {
			if len(r.ProviderOrderIDs) > 0 || r.Terminal() {
				return orders.ErrNoChange
			}
			if r.CancelRequested {
				cancelled = r.Apply(providers.EventCancelled, h.cfg.Store.Now(), "cancelled before create")
				return nil
			}
			r.CreateAttempts++
			r.CreateSentAt = h.cfg.Store.Now().UTC()
			return nil
		})
		switch {
		case err != nil:
			return err
		case cancelled || rec.Terminal() || len(rec.ProviderOrderIDs) > 0:
			return errCancelledBeforeSend
		}
		r = rec
		return nil
	}
	var sent bool
	send := func(ctx context.Context) error { sent = true; return record(ctx) }
	if _, gated := j.p.(interface{ CallsBeforeSend() }); !gated {
		if err := send(ctx); err != nil {
			return stopped(err)
		}
	}
	pl, err := j.p.Create(providers.WithBeforeSend(ctx, send), &r.Request, r.Quote)
	switch {
	case errors.Is(err, errCancelledBeforeSend):
		return nil
	case err == nil && len(pl.OrderIDs) == 0:
		err = &providers.UnknownOutcomeError{Op: "create", Err: errors.New("answered without an order id")}
	}
	if err != nil {
		if !sent {
			if _, ok := deferralOf(err); ok && !clearedAt.IsZero() {
				h.keepCleared(ctx, j, r.CreateAttempts, clearedAt)
			}
		} else if providers.ClassOf(err) == providers.ClassUnknownOutcome {
			j.log.Warn("create outcome unknown; the next run looks the order up", "err", err)
		}
		return h.createError(ctx, j, r, err)
	}
	return h.created(ctx, j, pl, "")
}

// keepCleared records a trusted "not found" of a create that was then
// deferred before it left (best effort: without it the next run asks again).
func (h *Handlers) keepCleared(ctx context.Context, j *job, attempts int, at time.Time) {
	_, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.CreateAttempts != attempts || len(r.ProviderOrderIDs) > 0 || r.Terminal() {
			return orders.ErrNoChange
		}
		r.ClearedAt, r.ClearedAttempts = at, attempts
		return nil
	})
	if err != nil {
		j.log.Debug("not-found of a deferred create not kept", "err", err)
	}
}

// stopped turns the record hook's refusal into the step's answer.
func stopped(err error) error {
	if errors.Is(err, errCancelledBeforeSend) {
		return nil
	}
	return err
}

// epochFresh is how long the Redis epoch read with a job's record
// (orders.Store.GetWithEpoch) stands in for reading it again.
const epochFresh = 2 * time.Second

// epoch is the Redis epoch (orders.Store.Epoch): the one read with the
// job's record while that read is fresh, else read now.
func (h *Handlers) epoch(ctx context.Context, j *job) (time.Time, error) {
	if !j.epochRead.IsZero() && time.Since(j.epochRead) < epochFresh {
		return j.epoch, nil
	}
	return h.cfg.Store.Epoch(ctx)
}

// unsettled returns how long "not found" must still be distrusted: until
// the settle window has passed since the last send, and since the Redis
// server changed when the record predates the change (the change may have
// lost the record of a send).
func (h *Handlers) unsettled(ctx context.Context, j *job, r *orders.Record) (time.Duration, error) {
	var since time.Time
	if r.CreateAttempts > 0 {
		since = r.CreateSentAt
	}
	epoch, err := h.epoch(ctx, j)
	if err != nil {
		return 0, err
	}
	if !epoch.IsZero() && r.UpdatedAt.Before(epoch.Add(clockMargin)) && epoch.After(since) {
		since = epoch
	}
	if since.IsZero() {
		return 0, nil
	}
	return max(since.Add(h.cfg.SettleWindow).Sub(h.cfg.Store.Now()), 0), nil
}

// createError steers a create's error: a deferral waits, a permanent
// refusal fails the order, anything else (an unknown outcome included)
// counts against the step's budget.
func (h *Handlers) createError(ctx context.Context, j *job, r *orders.Record, err error) error {
	if _, ok := deferralOf(err); ok {
		return h.createDeferred(ctx, j, r, err)
	}
	var pe *providers.PermanentError
	if errors.As(err, &pe) {
		return h.callFailed(ctx, j, "create", err)
	}
	return h.createFailed(ctx, j, r, err)
}

// createDeferred passes a deferral on (not an attempt), unless the outcome
// of a send has been unknown for longer than the outcome budget.
func (h *Handlers) createDeferred(ctx context.Context, j *job, r *orders.Record, err error) error {
	if r.CreateAttempts > 0 && h.cfg.Store.Now().Sub(r.CreateSentAt) > outcomeBudget {
		return h.park(ctx, j, ReasonOutcomeUnknown, fmt.Errorf("outcome unknown for over %s: %w", outcomeBudget, err))
	}
	return err
}

// createFailed counts a failed create run against the step's budget; the
// last one parks the order when a create was ever sent, and fails it
// (nothing was bought) when none was.
func (h *Handlers) createFailed(ctx context.Context, j *job, r *orders.Record, cause error) error {
	if errors.Is(cause, context.Canceled) {
		return cause
	}
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		r.CreateFailures++
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case rec.Terminal() || len(rec.ProviderOrderIDs) > 0:
		return nil
	case rec.CreateFailures < createBudget:
		if rec.CreateAttempts > 0 && h.cfg.Store.Now().Sub(rec.CreateSentAt) > outcomeBudget {
			return h.park(ctx, j, ReasonOutcomeUnknown, cause)
		}
		return cause
	case rec.CreateAttempts > 0:
		return h.park(ctx, j, ReasonOutcomeUnknown, cause)
	}
	_, err = h.update(ctx, j, func(r *orders.Record) error {
		if !r.Fail("RETRIES_EXHAUSTED", "create: "+cause.Error(), h.cfg.Store.Now()) {
			return orders.ErrNoChange
		}
		return nil
	})
	return err
}

// created records the provider order ids and starts polling. A partial
// create (the provider refused some lines and made an order for the rest)
// is followed like any order, but parked for a person to decide.
//
// The create's total is checked against maxTotal (the seller may have
// re-priced since the preview): above it, the order is cancelled at the
// provider and rejected. A create that lands on an order that expired
// meanwhile is cancelled at the provider.
func (h *Handlers) created(ctx context.Context, j *job, pl *providers.Placement, note string) error {
	partial := len(pl.Rejected) > 0
	source := "create"
	if note == noteReconciled {
		source = "lookup"
	}
	var cancel bool
	// The first poll comes at once, enqueued with the write: the create's
	// answer may state no total (Depal's does not) for the price guard,
	// and a provider's push sent while the create was answering found no
	// poll to run sooner.
	firstPoll := func(r *orders.Record) (Step, bool) {
		return newPollTask(j.key, r.PollSeq, 0), !r.Terminal()
	}
	rec, err := h.updateThen(ctx, j, func(r *orders.Record) error {
		if len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		r.ProviderOrderIDs = pl.OrderIDs
		r.Rejected = pl.Rejected
		r.Adopted = note == noteReconciled
		now := h.cfg.Store.Now()
		if r.Terminal() {
			// Ended meanwhile (expired, or closed by a person): nothing
			// must be bought now.
			r.CancelFor, r.CancelRequested = cancelForEnded, true
			if r.State == providers.StateExpired {
				r.CancelFor = cancelForDeadline
			}
			cancel = true
			return nil
		}
		switch {
		case partial:
			if r.Apply(providers.EventParked, now, ReasonPartialCreate) || r.State == providers.StateNeedsReview {
				r.Error = &orders.ErrorInfo{Code: ReasonPartialCreate, Message: "the provider made an order without " + rejectedText(pl.Rejected)}
			}
		case r.Apply(providers.EventCreated, now, note):
			r.Error = nil
		}
		if h.seeTotal(r, source, pl.Total) {
			cancel = h.guardPlaced(r, source, pl.Total, false)
		}
		// An upstream's cancel that waited for the provider order.
		cancel = cancel || r.CancelRequested
		return nil
	}, firstPoll, nil)
	if err != nil {
		return err
	}
	if cancel {
		j.log.Warn("cancelling at the provider", "for", rec.CancelFor, "providerOrderIds", pl.OrderIDs)
		return h.enqueue(ctx, NewCancelTask(j.key))
	}
	return nil
}

// missingLines compares the lines the provider's orders hold with the
// request's items. ok is false when a provider order did not say which
// lines it holds (nothing can be concluded).
func missingLines(items []providers.Item, sts []*providers.OrderStatus) (missing []providers.RejectedItem, ok bool) {
	type line struct {
		product int64
		sku     string
	}
	held := map[line]int{}
	for _, st := range sts {
		if st.Lines == nil {
			return nil, false
		}
		for _, l := range st.Lines {
			held[line{l.ProductID, l.SkuID}] += l.Quantity
		}
	}
	for _, it := range items {
		k := line{it.ProductID, it.SkuID}
		if got := held[k]; got < it.Quantity {
			missing = append(missing, providers.RejectedItem{ProductID: it.ProductID, SkuID: it.SkuID,
				Code: "NOT_IN_ORDER", Message: fmt.Sprintf("the provider's order holds %d of %d", got, it.Quantity)})
			held[k] = 0
		} else {
			held[k] -= it.Quantity
		}
	}
	return missing, true
}

func rejectedText(items []providers.RejectedItem) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf("product %d sku %s (%s: %s)", it.ProductID, it.SkuID, it.Code, it.Message)
	}
	return strings.Join(parts, "; ")
}

// park leaves an order whose create outcome cannot be learned for a
// person: state needs_review, with the reason and the last error. The
// deadline still ends it; an operator can re-run the archived create task
// from the web UI once the provider answers again.
func (h *Handlers) park(ctx context.Context, j *job, reason string, cause error) error {
	j.log.Error("order parked for review", "reason", reason, "err", cause)
	_, err := h.update(ctx, j, func(r *orders.Record) error {
		if r.Terminal() || len(r.ProviderOrderIDs) > 0 {
			return orders.ErrNoChange
		}
		r.Apply(providers.EventParked, h.cfg.Store.Now(), reason)
		if r.State != providers.StateNeedsReview {
			return orders.ErrNoChange
		}
		r.Error = &orders.ErrorInfo{Code: reason, Message: redact.ProviderText(cause.Error())}
		return nil
	})
	if err != nil {
		return err
	}
	return skip("order parked in needs_review (%s): %v", reason, cause)
}
