package pipeline

import (
	"fmt"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// Price guard codes and reasons.
const (
	// CodePriceGuard: the order is priced above its maxTotal (or has no
	// price): rejected at preview, or, once placed and unpaid, cancelled
	// at the provider and then rejected.
	CodePriceGuard = "PRICE_GUARD"
	// ReasonPriceChanged: a total above maxTotal was seen once the order
	// could no longer be cancelled (paid, or the cancel was refused).
	ReasonPriceChanged = "PRICE_CHANGED"
)

// DefaultQuoteMaxAge is QUOTE_MAX_AGE's default: a quote older than this
// is made again before the create.
const DefaultQuoteMaxAge = 30 * time.Minute

// lastTotal is the last total the provider stated for the order: the
// latest seen after the quote, else the quote's.
func lastTotal(r *orders.Record) int64 {
	if n := len(r.Totals); n > 0 {
		return r.Totals[n-1].Total
	}
	if r.Quote != nil {
		return r.Quote.Total
	}
	return 0
}

// seeTotal records a total the provider stated (source: "create", "poll",
// "preview"…) when it differs from the last one: in Totals and as a
// price_changed history entry, which the upstream gets as an event. It
// reports whether the total changed. A zero total says nothing.
func (h *Handlers) seeTotal(r *orders.Record, source string, total int64) bool {
	last := lastTotal(r)
	if total <= 0 || total == last {
		return false
	}
	now := h.cfg.Store.Now().UTC()
	r.Totals = append(r.Totals, orders.TotalSeen{At: now, Source: source, Total: total})
	if n := len(r.Totals); n > orders.MaxTotals {
		r.Totals = append([]orders.TotalSeen(nil), r.Totals[n-orders.MaxTotals:]...)
	}
	r.History = append(r.History, orders.Transition{State: r.State, At: now, Event: orders.EntryPriceChanged,
		Note: fmt.Sprintf("%s: total %s -> %s", source, providers.FormatYuan(last), providers.FormatYuan(total))})
	return true
}

// priceError is the error of a total above maxTotal.
func priceError(code, source string, total, limit int64) *orders.ErrorInfo {
	return &orders.ErrorInfo{Code: code, Total: providers.FormatYuan(total), MaxTotal: providers.FormatYuan(limit),
		Message: fmt.Sprintf("%s total %s exceeds maxTotal %s", source, providers.FormatYuan(total), providers.FormatYuan(limit))}
}

// guardPlaced checks a new total the provider stated for a placed order
// against maxTotal. Above it, an unpaid order is marked to be cancelled
// at the provider (the cancel step then ends it rejected, PRICE_GUARD) and
// a paid one is parked (PRICE_CHANGED). It reports whether the cancel
// step must be enqueued.
func (h *Handlers) guardPlaced(r *orders.Record, source string, total int64, paidNow bool) bool {
	limit, ok := r.Request.MaxTotalFen()
	if !ok || total <= limit || r.Terminal() || r.CancelFor == cancelForPrice {
		return false
	}
	if paidNow {
		h.parkPrice(r, source, total, limit)
		return false
	}
	r.Error = priceError(CodePriceGuard, source, total, limit)
	r.CancelFor, r.CancelRequested = cancelForPrice, true
	return true
}

// parkPrice parks an order whose total rose above maxTotal when it could
// no longer be cancelled.
func (h *Handlers) parkPrice(r *orders.Record, source string, total, limit int64) {
	r.Park(ReasonPriceChanged, h.cfg.Store.Now())
	r.Error = priceError(ReasonPriceChanged, source, total, limit)
}

// statusTotal is the total of a (possibly split) order's statuses, 0 when
// a part does not say.
func statusTotal(sts []*providers.OrderStatus) int64 {
	var t int64
	for _, st := range sts {
		if st.Total <= 0 {
			return 0
		}
		t += st.Total
	}
	return t
}
