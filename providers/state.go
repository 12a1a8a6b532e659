package providers

import "strings"

// State is an orderflow order state (INTERFACE.md). Its string is the
// contract: never rename one.
type State string

// The order states, in the order an order normally moves through them.
const (
	StateUnknown         State = ""
	StateReceived        State = "received"
	StatePreviewed       State = "previewed"
	StateCreated         State = "created"
	StateAwaitingPayment State = "awaiting_payment"
	StatePaid            State = "paid"
	StateShipped         State = "shipped"
	StateDelivered       State = "delivered"
	StateCompleted       State = "completed"
	StateCancelled       State = "cancelled"
	StateTerminated      State = "terminated"
	StateFailed          State = "failed"
	StateRejected        State = "rejected"
	StateExpired         State = "expired"
	// StateNeedsReview parks an order whose create outcome the provider
	// cannot tell: a person decides. Not terminal.
	StateNeedsReview State = "needs_review"
)

// States lists every state, in flow order then the terminal ones.
var States = []State{
	StateReceived, StatePreviewed, StateCreated, StateAwaitingPayment, StatePaid,
	StateShipped, StateDelivered, StateNeedsReview, StateCompleted, StateCancelled,
	StateTerminated, StateFailed, StateRejected, StateExpired,
}

// Terminal reports whether no further change is expected of an order in s.
func (s State) Terminal() bool {
	switch s {
	case StateCompleted, StateCancelled, StateTerminated, StateFailed, StateRejected, StateExpired:
		return true
	}
	return false
}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

// rank orders the live states so an old poll answer cannot move an order
// backwards. Terminal states rank highest.
func (s State) rank() int {
	for i, v := range States {
		if v == s {
			return i
		}
	}
	return -1
}

// After reports whether moving from s to next is progress: next is a
// later state, or a terminal state reached from a non-terminal one.
func (s State) After(next State) bool {
	if s.Terminal() || next == StateUnknown {
		return false
	}
	if next.Terminal() {
		return true
	}
	return next.rank() > s.rank()
}

// MapStatus maps a provider order status word (1688's lower-case words, and
// the upper-case words of Xportcn's push messages) to an orderflow state.
// A word it does not know maps to StateUnknown with ok false: keep the
// current state and record the word.
func MapStatus(word string) (s State, ok bool) {
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "waitbuyerpay", "waiting_for_payment":
		return StateAwaitingPayment, true
	case "waitsellersend", "waiting_for_sent":
		return StatePaid, true
	case "waitbuyerreceive", "waitsellerconfirm", "waitbuyersign":
		return StateShipped, true
	case "confirm_goods", "signinsuccess":
		return StateDelivered, true
	case "success":
		return StateCompleted, true
	case "cancel":
		return StateCancelled, true
	case "terminated":
		return StateTerminated, true
	}
	return StateUnknown, false
}
