package providers

import (
	"slices"
	"strings"
)

// State is an orderflow order state (docs/interface.md). Its string is the
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
	// StateNeedsReview parks an order for a person (its error names the
	// reason, e.g. CREATE_OUTCOME_UNKNOWN). Not terminal.
	StateNeedsReview State = "needs_review"
)

// flow lists the live states in the order an order moves through them.
var flow = []State{
	StateReceived, StatePreviewed, StateCreated, StateAwaitingPayment, StatePaid,
	StateShipped, StateDelivered,
}

// States lists every state: the flow, the parked state, then the terminal ones.
var States = append(append(append([]State{}, flow...), StateNeedsReview),
	StateCompleted, StateCancelled, StateTerminated, StateFailed, StateRejected, StateExpired)

// Terminal reports whether no further change is expected of an order in s.
func (s State) Terminal() bool {
	switch s {
	case StateCompleted, StateCancelled, StateTerminated, StateFailed, StateRejected, StateExpired:
		return true
	}
	return false
}

// Valid reports whether s is one of States.
func (s State) Valid() bool { return slices.Contains(States, s) }

// Precedes reports whether s comes before t in the flow (received …
// delivered). States outside the flow precede nothing and follow nothing.
func (s State) Precedes(t State) bool {
	i, j := slices.Index(flow, s), slices.Index(flow, t)
	return i >= 0 && j >= 0 && i < j
}

// Event is what happened to an order: the input of the transition table.
type Event string

// The events. Reported* are the provider's status of the order (a poll, or
// the provider's answer to a cancel); the rest are orderflow's own steps.
const (
	EventPreviewed    Event = "previewed"     // the provider priced the order
	EventPriceGuard   Event = "price_guard"   // the price is above maxTotal
	EventCreated      Event = "created"       // the provider order exists (created, reconciled or attached)
	EventParked       Event = "parked"        // a person must decide (needs_review)
	EventFailed       Event = "failed"        // a permanent error, retries spent, or a person closed it
	EventCancelled    Event = "cancelled"     // cancelled before anything was sent to the provider
	EventDeadline     Event = "deadline"      // the order deadline passed
	EventParcelSigned Event = "parcel_signed" // the parcel was signed for

	EventReportedAwaitingPayment Event = "reported_awaiting_payment"
	EventReportedPaid            Event = "reported_paid"
	EventReportedShipped         Event = "reported_shipped"
	EventReportedDelivered       Event = "reported_delivered"
	EventReportedCompleted       Event = "reported_completed"
	EventReportedCancelled       Event = "reported_cancelled"
	EventReportedTerminated      Event = "reported_terminated"
)

// Events lists every event.
var Events = []Event{
	EventPreviewed, EventPriceGuard, EventCreated, EventParked, EventFailed, EventCancelled,
	EventDeadline, EventParcelSigned,
	EventReportedAwaitingPayment, EventReportedPaid, EventReportedShipped, EventReportedDelivered,
	EventReportedCompleted, EventReportedCancelled, EventReportedTerminated,
}

// Reported is the event of the provider reporting an order in state s
// (StateUnknown, or a state the provider cannot report: "").
func Reported(s State) Event {
	switch s {
	case StateAwaitingPayment, StatePaid, StateShipped, StateDelivered,
		StateCompleted, StateCancelled, StateTerminated:
		return "reported_" + Event(s)
	}
	return ""
}

// Transition is one row of the transition table: in state From, event
// Event moves an order to To.
type Transition struct {
	From  State
	Event Event
	To    State
}

// Transitions is the order state machine: every allowed (from, event) and
// where it leads. Anything else is refused: the order keeps its state. A
// provider's report of a state the order has already passed is refused, so
// an old poll answer cannot move an order backwards.
var Transitions = buildTransitions()

func buildTransitions() []Transition {
	var t []Transition
	add := func(from []State, ev Event, to State) {
		for _, f := range from {
			t = append(t, Transition{f, ev, to})
		}
	}
	add([]State{StateReceived}, EventPreviewed, StatePreviewed)
	// The price guard rejects an order priced above maxTotal: at preview,
	// or, once placed and still unpaid, after the provider cancelled it.
	add([]State{StateReceived, StatePreviewed, StateNeedsReview, StateCreated, StateAwaitingPayment},
		EventPriceGuard, StateRejected)
	add([]State{StatePreviewed, StateNeedsReview}, EventCreated, StateCreated)
	// A person must decide: a create whose outcome cannot be learned, a
	// partial create, and (once placed) an order the pipeline cannot settle
	// on its own.
	add([]State{StatePreviewed, StateCreated, StateAwaitingPayment, StatePaid, StateShipped, StateDelivered},
		EventParked, StateNeedsReview)
	add([]State{StateReceived, StatePreviewed, StateNeedsReview}, EventFailed, StateFailed)
	add([]State{StateReceived, StatePreviewed, StateNeedsReview}, EventCancelled, StateCancelled)
	// The deadline ends an order only while nothing is bought: never
	// placed, or placed and not paid (once the provider cancelled it). A
	// paid order is parked instead (DEADLINE_LIVE) and followed on.
	add([]State{StateReceived, StatePreviewed, StateNeedsReview, StateCreated, StateAwaitingPayment},
		EventDeadline, StateExpired)
	add([]State{StateCreated, StateAwaitingPayment, StatePaid, StateShipped}, EventParcelSigned, StateDelivered)
	// The provider's reports move an order forwards through the flow, from
	// created on.
	provider := []State{StateCreated, StateAwaitingPayment, StatePaid, StateShipped, StateDelivered}
	for _, to := range provider[1:] {
		var from []State
		for _, f := range provider {
			if f.Precedes(to) {
				from = append(from, f)
			}
		}
		add(from, Reported(to), to)
	}
	// An order ends wherever the provider ends it; a parked order too (a
	// person's question is moot once the provider has ended the order).
	for _, to := range []State{StateCompleted, StateCancelled, StateTerminated} {
		add(append(append([]State{}, provider...), StateNeedsReview), Reported(to), to)
	}
	return t
}

// Next returns the state event ev moves an order in state from to, and
// whether the table allows it.
func Next(from State, ev Event) (State, bool) {
	for _, t := range Transitions {
		if t.From == from && t.Event == ev {
			return t.To, true
		}
	}
	return from, false
}

// CanMove reports whether some event moves an order from one state to the
// other: the store's check on every write.
func CanMove(from, to State) bool {
	for _, t := range Transitions {
		if t.From == from && t.To == to {
			return true
		}
	}
	return false
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
