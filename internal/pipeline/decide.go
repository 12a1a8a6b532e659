package pipeline

import (
	"context"
	"errors"

	"orderflow/internal/orders"
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
var ErrDecision = errors.New("pipeline: invalid decision")

// Decide carries out a person's decision on an order, in the worker (it
// may ask the provider). Every decision that takes effect is recorded in
// the order's history (Actor, Action, Reason) and goes out on the event
// stream and to the callbackUrl.
func (h *Handlers) Decide(ctx context.Context, k orders.Key, d Decision) (Decided, error) {
	return Decided{}, errors.New("pipeline: Decide is not built yet")
}
