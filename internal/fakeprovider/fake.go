// Package fakeprovider is an in-memory providers.Provider for pipeline
// tests: orders advance one status word per Details call, and faults are
// planned per outOrderId.
package fakeprovider

import (
	"context"
	"errors"
	"fmt"
	"sync"

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
}

type order struct {
	outOrderID string
	polls      int
	words      []string
	cancelled  bool
}

var _ providers.Provider = (*Fake)(nil)

// New returns a fake named name.
func New(name string) *Fake {
	return &Fake{name: name, plan: map[string]*Plan{}, created: map[string][]string{},
		byID: map[string]*order{}, calls: map[string]int{}}
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
func (f *Fake) Create(_ context.Context, req *providers.OrderRequest, _ *providers.Quote) (*providers.Placement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["create"]++
	f.seq++
	id := fmt.Sprintf("%s-%d", f.name, f.seq)
	words := Normal
	p := f.plan[req.OutOrderID]
	if p != nil && p.Words != nil {
		words = p.Words
	}
	f.created[req.OutOrderID] = append(f.created[req.OutOrderID], id)
	f.byID[id] = &order{outOrderID: req.OutOrderID, words: words}
	if p != nil && p.DropCreates > 0 {
		p.DropCreates--
		return nil, &providers.UnknownOutcomeError{Op: "create", Err: errors.New("connection dropped")}
	}
	return &providers.Placement{OrderIDs: []string{id}}, nil
}

// Lookup implements providers.Provider.
func (f *Fake) Lookup(_ context.Context, outOrderID string) (*providers.Placement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["lookup"]++
	ids := f.created[outOrderID]
	if len(ids) == 0 {
		return nil, providers.ErrNotFound
	}
	return &providers.Placement{OrderIDs: append([]string(nil), ids...)}, nil
}

// Details implements providers.Provider.
func (f *Fake) Details(_ context.Context, orderID string) (*providers.OrderStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["details"]++
	o := f.byID[orderID]
	if o == nil {
		return nil, providers.ErrNotFound
	}
	word := o.words[min(o.polls, len(o.words)-1)]
	if o.cancelled {
		word = "cancel"
	}
	o.polls++
	st, _ := providers.MapStatus(word)
	out := &providers.OrderStatus{OrderID: orderID, State: st, Raw: word}
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
