package pipeline

import (
	"context"
	"fmt"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// Outcome is what Submit did with one order.
type Outcome string

// Submit outcomes (the words `enqueue submit` prints).
const (
	Accepted  Outcome = "accepted"
	Duplicate Outcome = "duplicate"
	Invalid   Outcome = "invalid"
)

// SubmitResult is Submit's answer for one order.
type SubmitResult struct {
	Outcome Outcome
	// Record is the stored record (the existing one for a duplicate).
	Record *orders.Record
	// Err says why the order is invalid (a *providers.FieldError).
	Err error
}

// Submit validates an order, records it (state received, once per
// provider + outOrderId) and enqueues its preview. An order already known
// is a duplicate and changes nothing, except that an order still in
// received gets its preview enqueued again (a no-op when it exists), so a
// crash between the record and the enqueue loses nothing. The error is for
// Redis trouble only.
func Submit(ctx context.Context, st *orders.Store, enq Enqueuer, insp TaskInspector, req providers.OrderRequest) (SubmitResult, error) {
	step, err := PreviewStep(req)
	if err != nil {
		return SubmitResult{Outcome: Invalid, Err: err}, nil //nolint:nilerr // an invalid order is an answer, not a failure
	}
	rec, created, err := st.Create(ctx, req)
	if err != nil {
		return SubmitResult{}, err
	}
	res := SubmitResult{Outcome: Accepted, Record: rec}
	if !created {
		res.Outcome = Duplicate
		if rec.State != providers.StateReceived {
			return res, nil
		}
	}
	if err := Enqueue(ctx, enq, insp, step); err != nil {
		return SubmitResult{}, fmt.Errorf("pipeline: preview of %s: %w", rec.Key(), err)
	}
	return res, nil
}
