package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"orderflow/internal/orders"
	"orderflow/internal/wake"
	"orderflow/providers"
)

// Outcome is what Submit did with one order.
type Outcome string

// Submit outcomes (the words `enqueue submit` prints).
const (
	Accepted  Outcome = "accepted"
	Duplicate Outcome = "duplicate"
	Invalid   Outcome = "invalid"
	// Conflict: the outOrderId is known with other items, address,
	// options, price guard or callback URL; nothing changed.
	Conflict Outcome = "conflict"
)

// SubmitResult is Submit's answer for one order.
type SubmitResult struct {
	Outcome Outcome
	// Record is the stored record (the existing one for a duplicate).
	Record *orders.Record
	// Err says why the order is invalid (a *providers.FieldError), or, for
	// a conflict, what differs from the stored order.
	Err error
}

// Submit validates an order, records it (state received, once per
// provider + outOrderId) and enqueues and announces its preview, in one
// round trip. An order already known is a duplicate and changes nothing,
// except that an order still in received gets its preview enqueued again
// (a no-op when it exists), so a preview lost (say, with its queue) is
// put back by resubmitting. The error is for Redis trouble only.
func Submit(ctx context.Context, st *orders.Store, enq Enqueuer, insp TaskInspector, req providers.OrderRequest) (SubmitResult, error) {
	step, err := PreviewStep(req)
	if err != nil {
		return SubmitResult{Outcome: Invalid, Err: err}, nil //nolint:nilerr // an invalid order is an answer, not a failure
	}
	// The record, the preview and its announcement in one round trip
	// (unless asynq's enqueue could not be captured: then one each).
	task, err := orders.NewTask(step.Task)
	if err == nil {
		task.Announce = wake.Channel
	}
	rec, created, queued, err := st.CreateThen(ctx, req, task)
	if err != nil {
		return SubmitResult{}, err
	}
	res := SubmitResult{Outcome: Accepted, Record: rec}
	if queued {
		return res, nil
	}
	if !created {
		if diff := Differs(&rec.Request, &req); len(diff) > 0 {
			return SubmitResult{Outcome: Conflict, Record: rec, Err: fmt.Errorf(
				"%s is known with another %s", rec.Key(), strings.Join(diff, ", "))}, nil
		}
		res.Outcome = Duplicate
		if rec.State != providers.StateReceived {
			return res, nil
		}
	}
	if err := Enqueue(ctx, enq, insp, step); err != nil {
		return SubmitResult{}, fmt.Errorf("pipeline: preview of %s: %w", rec.Key(), err)
	}
	// Best effort: unannounced, the preview waits for a worker's next
	// look (wake.Announce).
	_ = st.Announce(ctx, step.Queue)
	return res, nil
}

// Differs names the parts of an order request that differ between the
// stored order and a resubmission of the same outOrderId.
func Differs(stored, again *providers.OrderRequest) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("items", !slices.Equal(stored.Items, again.Items))
	add("address", stored.Address != again.Address)
	add("options", stored.Options != again.Options)
	add("maxTotal", stored.MaxTotal != again.MaxTotal)
	add("callbackUrl", stored.CallbackURL != again.CallbackURL)
	return out
}
