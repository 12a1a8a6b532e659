package providers

import (
	"fmt"
	"strings"
	"testing"
)

// allowed is the order state machine written out by hand, row by row: the
// table test compares Transitions with it for every (state, event) pair.
var allowed = `
received         previewed                  previewed
received         price_guard                rejected
received         failed                     failed
received         cancelled                  cancelled
received         deadline                   expired
previewed        price_guard                rejected
previewed        created                    created
previewed        parked                     needs_review
previewed        failed                     failed
previewed        cancelled                  cancelled
previewed        deadline                   expired
needs_review     created                    created
needs_review     price_guard                rejected
needs_review     failed                     failed
needs_review     cancelled                  cancelled
needs_review     deadline                   expired
needs_review     reported_completed         completed
needs_review     reported_cancelled         cancelled
needs_review     reported_terminated        terminated
created          deadline                   expired
created          price_guard                rejected
created          parked                     needs_review
created          parcel_signed              delivered
created          reported_awaiting_payment  awaiting_payment
created          reported_paid              paid
created          reported_shipped           shipped
created          reported_delivered         delivered
created          reported_completed         completed
created          reported_cancelled         cancelled
created          reported_terminated        terminated
awaiting_payment deadline                   expired
awaiting_payment price_guard                rejected
awaiting_payment parked                     needs_review
awaiting_payment parcel_signed              delivered
awaiting_payment reported_paid              paid
awaiting_payment reported_shipped           shipped
awaiting_payment reported_delivered         delivered
awaiting_payment reported_completed         completed
awaiting_payment reported_cancelled         cancelled
awaiting_payment reported_terminated        terminated
paid             parked                     needs_review
paid             parcel_signed              delivered
paid             reported_shipped           shipped
paid             reported_delivered         delivered
paid             reported_completed         completed
paid             reported_cancelled         cancelled
paid             reported_terminated        terminated
shipped          parked                     needs_review
shipped          parcel_signed              delivered
shipped          reported_delivered         delivered
shipped          reported_completed         completed
shipped          reported_cancelled         cancelled
shipped          reported_terminated        terminated
delivered        parked                     needs_review
delivered        reported_completed         completed
delivered        reported_cancelled         cancelled
delivered        reported_terminated        terminated
`

func TestTransitionTable(t *testing.T) {
	want := map[string]State{}
	for _, line := range strings.Split(strings.TrimSpace(allowed), "\n") {
		f := strings.Fields(line)
		want[f[0]+" "+f[1]] = State(f[2])
	}
	if len(Transitions) != len(want) {
		t.Errorf("Transitions has %d rows, the written-out table %d", len(Transitions), len(want))
	}
	for _, from := range append(States, StateUnknown) {
		for _, ev := range append(Events, "", "bogus") {
			t.Run(fmt.Sprintf("%s/%s", from, ev), func(t *testing.T) {
				to, ok := Next(from, ev)
				w, allow := want[string(from)+" "+string(ev)]
				switch {
				case allow && (!ok || to != w):
					t.Errorf("Next(%s, %s) = %s, %v; want %s", from, ev, to, ok, w)
				case !allow && ok:
					t.Errorf("Next(%s, %s) = %s: the table allows a transition it must refuse", from, ev, to)
				case !allow && to != from:
					t.Errorf("Next(%s, %s) refused but moved to %s", from, ev, to)
				}
			})
		}
	}
}

func TestTerminalStatesHaveNoWayOut(t *testing.T) {
	for _, tr := range Transitions {
		if tr.From.Terminal() {
			t.Errorf("%s -%s-> %s: a terminal state has a way out", tr.From, tr.Event, tr.To)
		}
	}
}

func TestPrecedesReadsForwards(t *testing.T) {
	for _, c := range []struct {
		s, t State
		want bool
	}{
		{StateCreated, StatePaid, true},
		{StatePaid, StateAwaitingPayment, false},
		{StateShipped, StateDelivered, true},
		{StateDelivered, StateCompleted, false}, // completed is not in the flow
		{StateNeedsReview, StateCreated, false},
		{StatePaid, StatePaid, false},
	} {
		if got := c.s.Precedes(c.t); got != c.want {
			t.Errorf("%s.Precedes(%s) = %v, want %v", c.s, c.t, got, c.want)
		}
	}
}

func TestReported(t *testing.T) {
	for _, s := range []State{StateReceived, StatePreviewed, StateCreated, StateNeedsReview, StateFailed, StateUnknown} {
		if ev := Reported(s); ev != "" {
			t.Errorf("Reported(%s) = %q: a provider cannot report %s", s, ev, s)
		}
	}
	if Reported(StatePaid) != EventReportedPaid {
		t.Errorf("Reported(paid) = %q", Reported(StatePaid))
	}
}
