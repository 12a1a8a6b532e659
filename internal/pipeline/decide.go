package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/tasks"
)

// Action is a person's decision on an order.
type Action string

// The decisions (`enqueue review`, `enqueue retry`, `enqueue cancel`, the
// console's forms and POST /v1/orders/{provider}/{outOrderId}/review).
const (
	// ActionRecheck looks the order up at the provider now and adopts
	// what it has.
	ActionRecheck Action = "recheck"
	// ActionAttach adopts provider order ids a person found and starts
	// following them.
	ActionAttach Action = "attach"
	// ActionRecreate creates the order again, once a fresh lookup says the
	// provider has none.
	ActionRecreate Action = "recreate"
	// ActionClose ends the order failed, code MANUAL.
	ActionClose Action = "close"
	// ActionRetry re-drives the order's archived tasks.
	ActionRetry Action = "retry"
	// ActionCancel cancels the order (at the provider once placed).
	ActionCancel Action = "cancel"
)

// Actions lists the decisions.
var Actions = []Action{ActionRecheck, ActionAttach, ActionRecreate, ActionClose, ActionRetry, ActionCancel}

// CodeManual is the error code of an order a person closed.
const CodeManual = "MANUAL"

// Decision is one person's decision on one order.
type Decision struct {
	Action Action `json:"action"`
	// IDs are the provider order ids to attach (ActionAttach).
	IDs []string `json:"ids,omitempty"`
	// By is who decided (required).
	By string `json:"by"`
	// Reason is why, in their words (ActionClose: required; the order's
	// error message).
	Reason string `json:"reason,omitempty"`
	// DryRun answers what the decision would do, doing nothing (a lookup
	// at the provider included, for recheck and recreate).
	DryRun bool `json:"dryRun,omitempty"`
}

// Decided is what a decision did (or, on a dry run, would do).
type Decided struct {
	// Record is the order after the decision.
	Record *orders.Record `json:"record"`
	// Done: the decision took effect (a dry run: it would); false: refused,
	// Message says why and nothing changed.
	Done bool `json:"done"`
	// Message says, for a person, what happened or will happen, e.g. "the
	// provider has no order for this id as of 12:03:07Z; create again?".
	Message string `json:"message"`
}

// ErrDecision is wrapped by errors of a decision that is malformed (an
// unknown action, a missing --by): a person's mistake, not Redis's.
var ErrDecision = errors.New("invalid decision")

// ErrProvider is wrapped by errors of a decision whose provider call
// failed (nothing changed; decide again later).
var ErrProvider = errors.New("the provider did not answer")

// Bounds of a decision's texts.
const (
	maxActor  = 100
	maxReason = 1000
)

// Check reports what is wrong with a decision, naming the field.
func (d *Decision) Check() error {
	d.By, d.Reason = strings.TrimSpace(d.By), strings.TrimSpace(d.Reason)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrDecision, fmt.Sprintf(format, a...))
	}
	switch {
	case !slices.Contains(Actions, d.Action):
		return bad("action: want one of recheck, attach, recreate, close, retry, cancel, got %q", d.Action)
	case d.By == "":
		return bad("by: who decides is required")
	case len(d.By) > maxActor || providers.Unsafe(d.By) != "":
		return bad("by: at most %d printable characters", maxActor)
	case len(d.Reason) > maxReason || providers.Unsafe(d.Reason) != "":
		return bad("reason: at most %d printable characters", maxReason)
	case d.Action == ActionClose && d.Reason == "":
		return bad("reason: closing an order needs a reason")
	case d.Action == ActionAttach && len(d.IDs) == 0:
		return bad("ids: attach needs the provider order ids")
	case d.Action != ActionAttach && len(d.IDs) > 0:
		return bad("ids: only attach takes provider order ids")
	}
	for i, id := range d.IDs {
		if !providers.ValidProviderOrderID(id) {
			return bad("ids[%d]: %q is not a provider order id (1-64 letters, digits, - or _)", i, id)
		}
	}
	return nil
}

// Decide carries out a person's decision on an order, in the worker (it
// may ask the provider). Every decision that takes effect is recorded in
// the order's history (Actor, Action, Reason) and goes out on the event
// stream and to the callbackUrl. A refused decision changes nothing and
// says why (Done false). The error is for a malformed decision
// (ErrDecision), an unknown order (orders.ErrNotFound), and Redis or
// provider trouble.
func (h *Handlers) Decide(ctx context.Context, k orders.Key, d Decision) (Decided, error) {
	if err := d.Check(); err != nil {
		return Decided{}, err
	}
	p := h.cfg.Providers[k.Provider]
	if p == nil {
		return Decided{}, fmt.Errorf("%w: provider %q is not served by this worker", ErrDecision, k.Provider)
	}
	r, err := h.cfg.Store.Get(ctx, k)
	if err != nil {
		return Decided{}, err
	}
	j := &job{key: k, task: asynq.NewTask(tasks.TypeDecide, nil), p: p,
		log: h.log.With("decision", d.Action, "by", d.By, "provider", k.Provider, "outOrderId", k.OutOrderID)}
	refuse := func(format string, a ...any) (Decided, error) {
		return Decided{Record: r, Message: fmt.Sprintf(format, a...)}, nil
	}
	switch {
	case r.Terminal() && d.Action != ActionRetry:
		return refuse("%s: the order has ended (%s); nothing to decide", d.Action, r.State)
	case d.Action == ActionRetry:
		return h.retry(ctx, j, r, d)
	case d.Action == ActionCancel:
		return h.decideCancel(ctx, j, r, d)
	case r.State != providers.StateNeedsReview:
		return refuse("%s: the order is %s, not needs_review; review decides parked orders only", d.Action, r.State)
	}
	switch d.Action {
	case ActionRecheck:
		return h.recheck(ctx, j, r, d)
	case ActionAttach:
		return h.attach(ctx, j, r, d)
	case ActionRecreate:
		return h.recreate(ctx, j, r, d)
	}
	return h.closeOrder(ctx, j, r, d)
}

// entry is the history entry of decision d that moves nothing.
func (h *Handlers) entry(r *orders.Record, d Decision, note string) orders.Transition {
	return orders.Transition{State: r.State, At: h.cfg.Store.Now().UTC(), Event: orders.EntryDecision,
		Note: note, Actor: d.By, Action: string(d.Action), Reason: d.Reason}
}

// record writes decision d's history entry (plus what fn changes) and
// answers with msg.
func (h *Handlers) record(ctx context.Context, j *job, d Decision, note, msg string, fn func(r *orders.Record)) (Decided, error) {
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		r.History = append(r.History, h.entry(r, d, note))
		if fn != nil {
			fn(r)
		}
		return nil
	})
	if err != nil {
		return Decided{}, err
	}
	j.log.Info("decision recorded", "note", note)
	return Decided{Record: rec, Done: true, Message: msg}, nil
}

// stamp is a time as a person reads it in a message.
func stamp(t time.Time) string { return t.UTC().Format("15:04:05Z") }

// recheck asks the provider now. Without a provider order it looks the
// order up by outOrderId and adopts what it finds; with one, it reads the
// provider orders and, unless the provider ended them, takes the order
// out of review to be followed again.
func (h *Handlers) recheck(ctx context.Context, j *job, r *orders.Record, d Decision) (Decided, error) {
	now := h.cfg.Store.Now()
	if len(r.ProviderOrderIDs) == 0 {
		pl, err := j.p.Lookup(ctx, j.key.OutOrderID)
		switch {
		case errors.Is(err, providers.ErrNotFound):
			msg := fmt.Sprintf("the provider has no order for %s as of %s; to create it again: recreate, to end it: close", j.key.OutOrderID, stamp(now))
			if d.DryRun {
				return Decided{Record: r, Done: true, Message: msg}, nil
			}
			return h.record(ctx, j, d, "not found at the provider", msg, nil)
		case err != nil:
			return Decided{}, fmt.Errorf("recheck: look up at the provider: %w: %w", ErrProvider, err)
		}
		msg := fmt.Sprintf("the provider has order %s for %s as of %s: adopted and followed", strings.Join(pl.OrderIDs, ","), j.key.OutOrderID, stamp(now))
		if d.DryRun {
			return Decided{Record: r, Done: true, Message: strings.Replace(msg, "adopted and followed", "adopt it and follow it?", 1)}, nil
		}
		return h.adopt(ctx, j, d, pl, "found by recheck: "+strings.Join(pl.OrderIDs, ","), msg)
	}
	sts, err := h.statuses(ctx, j, r.ProviderOrderIDs)
	if err != nil {
		return Decided{}, fmt.Errorf("recheck: read the provider orders: %w: %w", ErrProvider, err)
	}
	next, raw := combine(sts)
	if next.Terminal() {
		msg := fmt.Sprintf("the provider has ended the order (%s) as of %s: it ends %s", raw, stamp(now), next)
		if d.DryRun {
			return Decided{Record: r, Done: true, Message: msg}, nil
		}
		return h.record(ctx, j, d, raw, msg, func(r *orders.Record) {
			r.RawStatus, r.ProviderState = raw, next
			r.Apply(providers.Reported(next), now, raw)
		})
	}
	msg := fmt.Sprintf("the provider has %s as of %s: out of review, followed again", raw, stamp(now))
	if d.DryRun {
		return Decided{Record: r, Done: true, Message: strings.Replace(msg, "out of review, followed again", "take it out of review and follow it?", 1)}, nil
	}
	res, err := h.record(ctx, j, d, raw, msg, func(r *orders.Record) {
		r.RawStatus, r.ProviderState = raw, next
		if r.Apply(providers.EventCreated, now, "recheck") {
			r.Error, r.PollStep = nil, 0
		}
	})
	if err == nil {
		err = h.enqueue(ctx, newPollTask(j.key, res.Record.PollSeq, 0))
	}
	return res, err
}

// statuses reads the provider orders.
func (h *Handlers) statuses(ctx context.Context, j *job, ids []string) ([]*providers.OrderStatus, error) {
	sts := make([]*providers.OrderStatus, 0, len(ids))
	for _, id := range ids {
		st, err := j.p.Details(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		sts = append(sts, st)
	}
	return sts, nil
}

// adopt records the decision and adopts the provider orders (their lines
// are checked at the first poll).
func (h *Handlers) adopt(ctx context.Context, j *job, d Decision, pl *providers.Placement, note, msg string) (Decided, error) {
	if _, err := h.record(ctx, j, d, note, msg, nil); err != nil {
		return Decided{}, err
	}
	if err := h.created(ctx, j, pl, noteReconciled); err != nil {
		return Decided{}, err
	}
	rec, err := h.cfg.Store.Get(ctx, j.key)
	if err != nil {
		return Decided{}, err
	}
	return Decided{Record: rec, Done: true, Message: msg}, nil
}

// attach adopts the provider orders a person found, once the provider
// confirms they exist and no other order owns them.
func (h *Handlers) attach(ctx context.Context, j *job, r *orders.Record, d Decision) (Decided, error) {
	if len(r.ProviderOrderIDs) > 0 {
		return Decided{Record: r, Message: fmt.Sprintf("attach: the order already follows provider order %s; use recheck",
			strings.Join(r.ProviderOrderIDs, ","))}, nil
	}
	for _, id := range d.IDs {
		k, err := h.cfg.Store.FindByProviderOrder(ctx, j.key.Provider, id)
		switch {
		case err == nil && k != j.key:
			return Decided{Record: r, Message: fmt.Sprintf("attach: provider order %s belongs to order %s", id, k.OutOrderID)}, nil
		case err != nil && !errors.Is(err, orders.ErrNotFound):
			return Decided{}, err
		}
	}
	sts, err := h.statuses(ctx, j, d.IDs)
	var pe *providers.PermanentError
	if errors.Is(err, providers.ErrNotFound) || errors.As(err, &pe) {
		return Decided{Record: r, Message: "attach refused: the provider does not know " + err.Error()}, nil
	}
	if err != nil {
		return Decided{}, fmt.Errorf("attach: read the provider orders: %w: %w", ErrProvider, err)
	}
	_, raw := combine(sts)
	msg := fmt.Sprintf("provider order %s (%s) attached and followed", strings.Join(d.IDs, ","), raw)
	if d.DryRun {
		return Decided{Record: r, Done: true, Message: fmt.Sprintf("the provider has %s (%s) as of %s; attach it and follow it?",
			strings.Join(d.IDs, ","), raw, stamp(h.cfg.Store.Now()))}, nil
	}
	return h.adopt(ctx, j, d, &providers.Placement{OrderIDs: d.IDs, Total: statusTotal(sts)}, "attached: "+strings.Join(d.IDs, ","), msg)
}

// recreate creates the order again, allowed only once a fresh lookup says
// the provider has none: the person's word stands in for the settle
// window, the lookup for what the provider knows now.
func (h *Handlers) recreate(ctx context.Context, j *job, r *orders.Record, d Decision) (Decided, error) {
	if len(r.ProviderOrderIDs) > 0 {
		return Decided{Record: r, Message: fmt.Sprintf("recreate: the order has provider order %s; recreate is for an order the provider does not have",
			strings.Join(r.ProviderOrderIDs, ","))}, nil
	}
	now := h.cfg.Store.Now()
	pl, err := j.p.Lookup(ctx, j.key.OutOrderID)
	switch {
	case err == nil:
		return Decided{Record: r, Message: fmt.Sprintf("recreate refused: the provider has order %s for %s as of %s; recheck adopts it",
			strings.Join(pl.OrderIDs, ","), j.key.OutOrderID, stamp(now))}, nil
	case !errors.Is(err, providers.ErrNotFound):
		return Decided{}, fmt.Errorf("recreate: look up at the provider first: %w: %w", ErrProvider, err)
	}
	if d.DryRun {
		return Decided{Record: r, Done: true, Message: fmt.Sprintf("the provider has no order for %s as of %s; create again?", j.key.OutOrderID, stamp(now))}, nil
	}
	res, err := h.record(ctx, j, d, "not found at the provider as of "+stamp(now), fmt.Sprintf(
		"the provider had no order for %s as of %s: created again", j.key.OutOrderID, stamp(now)), func(r *orders.Record) {
		r.ClearedAt, r.ClearedAttempts = now.UTC(), r.CreateAttempts
		r.CreateFailures = 0
	})
	if err != nil {
		return res, err
	}
	return res, h.enqueue(ctx, newCreateTask(j.key))
}

// closeOrder ends a parked order failed, code MANUAL, with the reason.
func (h *Handlers) closeOrder(ctx context.Context, j *job, r *orders.Record, d Decision) (Decided, error) {
	msg := "closed: the order ends failed (MANUAL)"
	if len(r.ProviderOrderIDs) > 0 {
		msg += "; provider order " + strings.Join(r.ProviderOrderIDs, ",") + " is not cancelled by this"
	}
	if d.DryRun {
		return Decided{Record: r, Done: true, Message: strings.Replace(msg, "closed: the order ends", "close it: the order will end", 1) + "?"}, nil
	}
	rec, err := h.update(ctx, j, func(r *orders.Record) error {
		if !r.Fail(CodeManual, d.Reason, h.cfg.Store.Now()) {
			return orders.ErrNoChange
		}
		last := &r.History[len(r.History)-1]
		last.Actor, last.Action, last.Reason = d.By, string(d.Action), d.Reason
		return nil
	})
	if err != nil {
		return Decided{}, err
	}
	if rec.State != providers.StateFailed {
		return Decided{Record: rec, Message: "close: the order moved on meanwhile (" + string(rec.State) + ")"}, nil
	}
	return Decided{Record: rec, Done: true, Message: msg}, nil
}

// decideCancel cancels the order for a person.
func (h *Handlers) decideCancel(ctx context.Context, j *job, r *orders.Record, d Decision) (Decided, error) {
	if d.DryRun {
		return Decided{Record: r, Done: !paid(r.ProviderState), Message: CancelPreview(r)}, nil
	}
	return DecideCancel(ctx, h.cfg.Store, h.cfg.Enqueuer, h.cfg.Inspector, j.key, d)
}

// DecideCancel is a person's cancel (`enqueue cancel`, the console): the
// cancel request, recorded with who and why unless it was refused.
func DecideCancel(ctx context.Context, st *orders.Store, enq Enqueuer, insp TaskInspector, k orders.Key, d Decision) (Decided, error) {
	d.Action = ActionCancel
	if err := d.Check(); err != nil {
		return Decided{}, err
	}
	rec, out, err := RequestCancel(ctx, st, enq, insp, k)
	if err != nil {
		return Decided{}, err
	}
	msg := CancelMessage(out, rec)
	if out == CancelNotCancellable {
		return Decided{Record: rec, Message: msg}, nil
	}
	rec, err = st.Update(ctx, k, func(r *orders.Record) error {
		r.History = append(r.History, orders.Transition{State: r.State, At: st.Now().UTC(), Event: orders.EntryDecision,
			Note: string(out), Actor: d.By, Action: string(d.Action), Reason: d.Reason})
		return nil
	})
	if err != nil {
		return Decided{}, err
	}
	return Decided{Record: rec, Done: true, Message: msg}, NotifyLater(ctx, enq, insp, rec)
}

// CancelPreview says what a cancel of r would do.
func CancelPreview(r *orders.Record) string {
	switch {
	case r.Terminal():
		return "not cancellable: the order has ended (" + string(r.State) + ")"
	case paid(r.ProviderState):
		return "not cancellable: the provider order is paid (" + r.RawStatus + ")"
	case awaitsReview(r):
		return CancelMessage(CancelAwaitsReview, r)
	case len(r.ProviderOrderIDs) > 0:
		return "cancel provider order " + strings.Join(r.ProviderOrderIDs, ",") + " at the provider?"
	}
	return "cancel the order before it is placed?"
}

// CancelMessage says what a cancel request did.
func CancelMessage(out CancelOutcome, r *orders.Record) string {
	switch out {
	case CancelAwaitsReview:
		return "cancel recorded: a create may have reached the provider and no provider order is known, so nothing is sent now; " +
			"review recheck (or attach) cancels what the provider has, review close ends the order"
	case CancelNotCancellable:
		return CancelPreview(r)
	}
	if len(r.ProviderOrderIDs) > 0 {
		return "cancel requested at the provider for " + strings.Join(r.ProviderOrderIDs, ",")
	}
	return "cancel requested: the order is not sent to the provider"
}

// retry re-drives the order's archived tasks (every step is idempotent).
// A parked create gets its budget back.
func (h *Handlers) retry(ctx context.Context, j *job, r *orders.Record, d Decision) (Decided, error) {
	var ids []string
	for _, t := range OrderTasks(r) {
		info, err := h.cfg.Inspector.GetTaskInfo(t.Queue, t.ID)
		if err != nil || info.State != asynq.TaskStateArchived {
			continue
		}
		ids = append(ids, t.ID)
		if d.DryRun {
			continue
		}
		if t.ID == TaskID(tasks.TypeCreate, j.key) {
			if _, err := h.update(ctx, j, func(r *orders.Record) error { r.CreateFailures = 0; return nil }); err != nil {
				return Decided{}, err
			}
		}
		if err := h.cfg.Inspector.RunTask(t.Queue, t.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return Decided{}, fmt.Errorf("retry %s: %w", t.ID, err)
		}
	}
	if len(ids) == 0 {
		return Decided{Record: r, Message: "retry: the order has no archived task"}, nil
	}
	msg := "re-run: " + strings.Join(ids, ", ")
	if d.DryRun {
		return Decided{Record: r, Done: true, Message: "re-run " + strings.Join(ids, ", ") + "?"}, nil
	}
	return h.record(ctx, j, d, msg, msg, nil)
}

// TaskRef names an asynq task: its queue and id.
type TaskRef struct{ Queue, ID string }

// OrderTasks are the queue and id of every task an order may have now
// (its preview, create, cancel, current poll and trace, deadline step, and
// undelivered callbacks): what retry re-runs when archived and what the
// console links to.
func OrderTasks(r *orders.Record) []TaskRef {
	k := r.Key()
	create, poll := tasks.Queue(k.Provider, tasks.KindCreate), tasks.Queue(k.Provider, tasks.KindPoll)
	out := []TaskRef{
		{tasks.Queue(k.Provider, tasks.KindPreview), TaskID(tasks.TypePreview, k)},
		{create, TaskID(tasks.TypeCreate, k)},
		{create, TaskID(tasks.TypeCancel, k)},
		{poll, pollID(k, r.PollSeq)},
		{poll, trackID(k, r.TrackSeq)},
		{poll, TaskID(tasks.TypeExpire, k)},
	}
	for n := r.Notified + 1; n <= len(r.History); n++ {
		out = append(out, TaskRef{tasks.QueueNotify, fmt.Sprintf("%s:%d", TaskID(tasks.TypeNotify, k), n)})
	}
	return out
}
