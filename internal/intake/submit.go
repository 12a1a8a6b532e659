package intake

import (
	"context"
	"errors"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// Result is one order's answer to a submission: a line of
// `enqueue submit --json`, an element of POST /v1/orders' answer.
type Result struct {
	// N is the order's 1-based position in the input.
	N int `json:"n"`
	// Provider and OutOrderID are the order's, as far as they could be
	// decoded (empty when not).
	Provider   string `json:"provider,omitempty"`
	OutOrderID string `json:"outOrderId,omitempty"`
	// Outcome is accepted, duplicate, conflict or invalid.
	Outcome pipeline.Outcome `json:"outcome"`
	// State is the order's state (received when accepted; the current one
	// for a duplicate).
	State providers.State `json:"state,omitempty"`
	// Field names the invalid field, where one can be named.
	Field string `json:"field,omitempty"`
	// Error says why the order is invalid, or what differs in a conflict.
	Error string `json:"error,omitempty"`
}

// Submit submits one decoded entry with pipeline.Submit (an entry that did
// not decode or validate is answered invalid without touching Redis). The
// error is for Redis trouble only.
func Submit(ctx context.Context, st *orders.Store, enq pipeline.Enqueuer, insp pipeline.TaskInspector, e Entry) (Result, error) {
	res := Result{N: e.N, Provider: e.Req.Provider, OutOrderID: e.Req.OutOrderID}
	invalid := e.Err
	if invalid == nil {
		r, err := pipeline.Submit(ctx, st, enq, insp, e.Req)
		if err != nil {
			return res, err
		}
		res.Outcome, invalid = r.Outcome, r.Err
		if r.Record != nil {
			res.State = r.Record.State
		}
		if r.Outcome == pipeline.Conflict {
			res.Error, invalid = r.Err.Error(), nil
		}
	}
	if invalid != nil {
		res.Outcome, res.Error = pipeline.Invalid, invalid.Error()
		var fe *providers.FieldError
		if errors.As(invalid, &fe) {
			res.Field = fe.Field
		}
	}
	return res, nil
}
