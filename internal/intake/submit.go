package intake

import (
	"context"
	"errors"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// Unavailable is the outcome of an order whose submission Redis failed
// (on it or on an earlier order of the batch): it may be recorded without
// its preview queued, or not at all; submit it again (a duplicate then
// queues what is missing).
const Unavailable pipeline.Outcome = "unavailable"

// Result is one order's answer to a submission: a line of
// `enqueue submit --json`, an element of POST /v1/orders' answer.
type Result struct {
	// N is the order's 1-based position in the input.
	N int `json:"n"`
	// Provider and OutOrderID are the order's, as far as they could be
	// decoded (empty when not).
	Provider   string `json:"provider,omitempty"`
	OutOrderID string `json:"outOrderId,omitempty"`
	// Outcome is accepted, duplicate, conflict, invalid or unavailable.
	Outcome pipeline.Outcome `json:"outcome"`
	// State is the order's state (received when accepted; the current one
	// for a duplicate).
	State providers.State `json:"state,omitempty"`
	// Field names the invalid field, where one can be named.
	Field string `json:"field,omitempty"`
	// Error says why the order is invalid, or what differs in a conflict.
	Error string `json:"error,omitempty"`
}

// UnavailableResult is the answer for an entry not submitted because Redis
// failed: outcome Unavailable, with reason as its error.
func UnavailableResult(e Entry, reason string) Result {
	res := echo(e)
	res.Outcome, res.Error = Unavailable, reason
	return res
}

// echo is the part of a result that repeats the entry: its position and,
// when valid, its provider and outOrderId.
func echo(e Entry) Result {
	res := Result{N: e.N, Provider: e.Req.Provider, OutOrderID: e.Req.OutOrderID}
	if !providers.ValidOutOrderID(res.OutOrderID) {
		res.OutOrderID = "" // not echoed: it may be anything
	}
	if !providers.Known(res.Provider) {
		res.Provider = ""
	}
	return res
}

// Policy is what a submission allows beyond the order's own rules.
type Policy struct {
	// AllowPrivateCallbacks (CALLBACK_ALLOW_PRIVATE) lets a callbackUrl
	// name a loopback or private address (see
	// providers.CheckCallbackTarget).
	AllowPrivateCallbacks bool
}

// Submit submits one decoded entry with pipeline.Submit (an entry that did
// not decode or validate, or whose callbackUrl pol refuses, is answered
// invalid without touching Redis). The error is for Redis trouble only.
func Submit(ctx context.Context, st *orders.Store, enq pipeline.Enqueuer, insp pipeline.TaskInspector, e Entry, pol Policy) (Result, error) {
	res := echo(e)
	invalid := e.Err
	if invalid == nil {
		invalid = providers.CheckCallbackTarget(e.Req.CallbackURL, pol.AllowPrivateCallbacks)
	}
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
