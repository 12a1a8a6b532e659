// Package fakeprovider is an in-memory providers.Provider for pipeline
// tests: orders advance one status word per Details call, and faults are
// planned per outOrderId.
package fakeprovider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"orderflow/providers"
)

// Normal is the status words an order goes through, one per Details call.
var Normal = []string{"waitbuyerpay", "waitsellersend", "waitbuyerreceive", "success"}

// Plan says how one order behaves.
type Plan struct {
	// PreviewErr fails every preview with this error.
	PreviewErr error
	// DropCreates: this many creates make the order and then report an
	// unknown outcome.
	DropCreates int
	// Words overrides Normal.
	Words []string
	// CommitDelay: a create answers an unknown outcome at once and the
	// order is made this long later (a provider still working when the
	// client gave up).
	CommitDelay time.Duration
	// SearchLag: Lookup sees an order only this long after it was made.
	SearchLag time.Duration
	// LookupErr fails every Lookup with this error (a transient error, a
	// deferral) while set.
	LookupErr error
	// RejectLast: a create of two or more lines refuses the last one and
	// makes an order for the rest.
	RejectLast bool
}

// Fake is the provider. Safe for concurrent use.
type Fake struct {
	name string
	mu   sync.Mutex
	plan map[string]*Plan
	// created counts provider orders per outOrderId.
	created map[string][]string
	byID    map[string]*order
	calls   map[string]int
	seq     int
	// now is the fake's clock (SetClock); time.Now by default.
	now func() time.Time
	// madeAt is when each provider order was (or will be) made.
	madeAt map[string]time.Time
	// createDelay holds every create this long before it answers.
	createDelay time.Duration
}

type order struct {
	outOrderID string
	polls      int
	words      []string
	cancelled  bool
	lines      []providers.OrderLine // nil: the provider does not say
}

var _ providers.Provider = (*Fake)(nil)

// New returns a fake named name.
func New(name string) *Fake {
	return &Fake{name: name, plan: map[string]*Plan{}, created: map[string][]string{},
		byID: map[string]*order{}, calls: map[string]int{}, now: time.Now, madeAt: map[string]time.Time{}}
}

// SetClock replaces the fake's clock (for CommitDelay and SearchLag).
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// SetCreateDelay holds every create d before it answers.
func (f *Fake) SetCreateDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createDelay = d
}

// Precreate makes a provider order for outOrderID as if an earlier create,
// one orderflow has no record of, had made it.
func (f *Fake) Precreate(outOrderID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.make(outOrderID, Normal, f.now(), nil)
}

// make records a provider order made at at; the lock is held.
func (f *Fake) make(outOrderID string, words []string, at time.Time, lines []providers.OrderLine) string {
	f.seq++
	id := fmt.Sprintf("%s-%d", f.name, f.seq)
	f.created[outOrderID] = append(f.created[outOrderID], id)
	f.byID[id] = &order{outOrderID: outOrderID, words: words, lines: lines}
	f.madeAt[id] = at
	return id
}

// SetPlan plans an order's behaviour.
func (f *Fake) SetPlan(outOrderID string, p Plan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan[outOrderID] = &p
}

// Created returns how many provider orders exist for outOrderID.
func (f *Fake) Created(outOrderID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.created[outOrderID])
}

// Calls returns how many times op was called.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Name implements providers.Provider.
func (f *Fake) Name() string { return f.name }

// Preview implements providers.Provider: 1000 fen per unit, 500 freight.
func (f *Fake) Preview(_ context.Context, req *providers.OrderRequest) (*providers.Quote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["preview"]++
	if p := f.plan[req.OutOrderID]; p != nil && p.PreviewErr != nil {
		return nil, p.PreviewErr
	}
	q := &providers.Quote{Freight: 500, PreviewID: "pv-" + req.OutOrderID}
	for _, it := range req.Items {
		q.Goods += int64(it.Quantity) * 1000
	}
	q.Total = q.Goods + q.Freight
	return q, nil
}

// Create implements providers.Provider.
func (f *Fake) Create(ctx context.Context, req *providers.OrderRequest, _ *providers.Quote) (*providers.Placement, error) {
	f.mu.Lock()
	delay := f.createDelay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, &providers.UnknownOutcomeError{Op: "create", Err: ctx.Err()}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["create"]++
	words := Normal
	p := f.plan[req.OutOrderID]
	if p != nil && p.Words != nil {
		words = p.Words
	}
	at := f.now()
	items := req.Items
	var rejected []providers.RejectedItem
	if p != nil && p.RejectLast && len(items) > 1 {
		last := items[len(items)-1]
		items = items[:len(items)-1]
		rejected = []providers.RejectedItem{{ProductID: last.ProductID, SkuID: last.SkuID, Code: "500_004", Message: "out of stock"}}
	}
	lines := make([]providers.OrderLine, len(items))
	for i, it := range items {
		lines[i] = providers.OrderLine(it)
	}
	if p != nil && p.CommitDelay > 0 {
		f.make(req.OutOrderID, words, at.Add(p.CommitDelay), lines)
		return nil, &providers.UnknownOutcomeError{Op: "create", Err: errors.New("timed out while the provider was still working")}
	}
	id := f.make(req.OutOrderID, words, at, lines)
	if p != nil && p.DropCreates > 0 {
		p.DropCreates--
		return nil, &providers.UnknownOutcomeError{Op: "create", Err: errors.New("connection dropped")}
	}
	return &providers.Placement{OrderIDs: []string{id}, Rejected: rejected}, nil
}

// Lookup implements providers.Provider.
func (f *Fake) Lookup(_ context.Context, outOrderID string) (*providers.Placement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["lookup"]++
	p := f.plan[outOrderID]
	if p != nil && p.LookupErr != nil {
		return nil, p.LookupErr
	}
	var lag time.Duration
	if p != nil {
		lag = p.SearchLag
	}
	var ids []string
	for _, id := range f.created[outOrderID] {
		if !f.now().Before(f.madeAt[id].Add(lag)) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, providers.ErrNotFound
	}
	return &providers.Placement{OrderIDs: ids}, nil
}

// Details implements providers.Provider.
func (f *Fake) Details(_ context.Context, orderID string) (*providers.OrderStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["details"]++
	o := f.byID[orderID]
	if o == nil || f.now().Before(f.madeAt[orderID]) {
		return nil, providers.ErrNotFound
	}
	word := o.words[min(o.polls, len(o.words)-1)]
	if o.cancelled {
		word = "cancel"
	}
	o.polls++
	st, _ := providers.MapStatus(word)
	out := &providers.OrderStatus{OrderID: orderID, State: st, Raw: word, Lines: o.lines}
	if st == providers.StateShipped || st == providers.StateCompleted {
		out.Parcel = &providers.ParcelRef{Carrier: "SF", BillNo: "SF" + orderID}
	}
	return out, nil
}

// Trace implements providers.Provider: signed at once.
func (f *Fake) Trace(_ context.Context, _ string, ref *providers.ParcelRef) (*providers.Parcel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["trace"]++
	return &providers.Parcel{ParcelRef: *ref, Status: providers.ParcelSigned}, nil
}

// Cancel implements providers.Provider.
func (f *Fake) Cancel(_ context.Context, orderID, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cancel"]++
	o := f.byID[orderID]
	if o == nil {
		return &providers.PermanentError{Op: "cancel", Code: "404", Message: "no such order"}
	}
	o.cancelled = true
	return nil
}
