// Package consoletest writes orders in every state straight into an order
// store, for the console's tests (its page tests, the browser test and
// the list benchmark): no pipeline, no provider.
package consoletest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// paths are the events that bring a received order to each state.
var paths = map[providers.State][]providers.Event{
	providers.StateReceived:        nil,
	providers.StatePreviewed:       {providers.EventPreviewed},
	providers.StateCreated:         {providers.EventPreviewed, providers.EventCreated},
	providers.StateAwaitingPayment: {providers.EventPreviewed, providers.EventCreated, providers.EventReportedAwaitingPayment},
	providers.StatePaid:            {providers.EventPreviewed, providers.EventCreated, providers.EventReportedPaid},
	providers.StateShipped:         {providers.EventPreviewed, providers.EventCreated, providers.EventReportedPaid, providers.EventReportedShipped},
	providers.StateDelivered:       {providers.EventPreviewed, providers.EventCreated, providers.EventReportedShipped, providers.EventParcelSigned},
	providers.StateNeedsReview:     {providers.EventPreviewed, providers.EventParked},
	providers.StateCompleted:       {providers.EventPreviewed, providers.EventCreated, providers.EventReportedShipped, providers.EventReportedCompleted},
	providers.StateCancelled:       {providers.EventCancelled},
	providers.StateTerminated:      {providers.EventPreviewed, providers.EventCreated, providers.EventReportedTerminated},
	providers.StateFailed:          {providers.EventPreviewed, providers.EventFailed},
	providers.StateRejected:        {providers.EventPriceGuard},
	providers.StateExpired:         {providers.EventPreviewed, providers.EventDeadline},
}

// Codes are the error codes the orders that need one get.
var Codes = map[providers.State]string{
	providers.StateNeedsReview: "CREATE_OUTCOME_UNKNOWN",
	providers.StateFailed:      "ITEM_OFF_SHELF",
	providers.StateRejected:    "PRICE_GUARD",
	providers.StateExpired:     "DEADLINE",
}

// Request is an order request of provider p.
func Request(p, id string) providers.OrderRequest {
	return providers.OrderRequest{
		Provider: p, OutOrderID: id,
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Country: "CN",
			Province: "Zhejiang", City: "Hangzhou", Address: "1 Example Road"},
		Items:       []providers.Item{{ProductID: 623456789012, SkuID: "b5f2", Quantity: 2}},
		MaxTotal:    "120.00",
		CallbackURL: "https://erp.example/orderflow",
	}
}

// Write writes the order id of provider p and brings it to state st, with
// what a provider would have told (its ids, status words, parcel,
// totals, a delivery) taken from text: the provider order id is
// "P-"+text, the tracking number "SF-"+text, and text is also the raw
// status word and the error message. It returns the record as written.
func Write(tb testing.TB, s *orders.Store, p, id string, st providers.State, text string) *orders.Record {
	tb.Helper()
	ctx := context.Background()
	evs, ok := paths[st]
	if !ok {
		tb.Fatalf("consoletest: no path to state %q", st)
	}
	if _, _, err := s.Create(ctx, Request(p, id)); err != nil {
		tb.Fatal(err)
	}
	k := orders.Key{Provider: p, OutOrderID: id}
	if len(evs) == 0 {
		rec, err := s.Get(ctx, k)
		if err != nil {
			tb.Fatal(err)
		}
		return rec
	}
	placed := false
	rec, err := s.Update(ctx, k, func(r *orders.Record) error {
		now := s.Now()
		for _, ev := range evs {
			switch ev {
			case providers.EventPreviewed:
				r.Quote = &providers.Quote{Goods: 9800, Freight: 1200, Service: 0, Total: 11000}
				r.Totals = append(r.Totals, orders.TotalSeen{At: now, Source: "preview", Total: 11000})
			case providers.EventPriceGuard:
				r.Quote = &providers.Quote{Goods: 98000, Freight: 1200, Total: 99200}
			case providers.EventCreated:
				placed = true
				r.ProviderOrderIDs = []string{"P-" + text}
				r.RawStatus = text
				r.CreateAttempts = 1
				r.CreateSentAt = now
				r.Totals = append(r.Totals, orders.TotalSeen{At: now, Source: "create", Total: 11300})
				r.Deliveries = append(r.Deliveries, orders.Delivery{At: now, Seq: 1, Status: 502, Error: "HTTP 502: " + text})
			case providers.EventReportedShipped:
				r.Parcels = []orders.Parcel{{OrderID: "P-" + text, ParcelRef: providers.ParcelRef{Carrier: "SF", BillNo: "SF-" + text},
					Status: "TRANSPORT"}}
			}
			note := ""
			if code := Codes[st]; code != "" && ev == evs[len(evs)-1] {
				r.Error = &orders.ErrorInfo{Code: code, Message: text}
				note = code
			}
			if !r.Apply(ev, now, note) {
				return fmt.Errorf("consoletest: %s not allowed in %s", ev, r.State)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if placed {
		if err := s.Link(ctx, k, rec.ProviderOrderIDs, time.Hour); err != nil {
			tb.Fatal(err)
		}
	}
	return rec
}

// Every writes one order in every state at each provider, named
// prefix-{provider}-{state}, and returns them by provider and state.
func Every(tb testing.TB, s *orders.Store, prefix, text string) map[orders.Key]providers.State {
	tb.Helper()
	out := map[orders.Key]providers.State{}
	for _, p := range providers.Names {
		for _, st := range providers.States {
			id := fmt.Sprintf("%s-%s-%s", prefix, p[:1], st)
			rec := Write(tb, s, p, id, st, text+"-"+p[:1]+"-"+string(st))
			out[rec.Key()] = st
		}
	}
	return out
}
