package sim

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"orderflow/providers"
)

// Planned prices, in fen. A quote is computable from the cart alone:
// goods = Σ UnitPrice(productId)·quantity, freight = Freight per provider
// order the create will make (see Parts), service = ServiceFee(goods) at
// Depal and 0 at Xportcn. PlannedQuote does the sum.
const (
	// Freight is the freight of one provider order, in fen.
	Freight int64 = 1000
)

// UnitPrice is the planned unit price of a product, in fen.
func UnitPrice(productID int64) int64 { return 100 + productID%10000 }

// ServiceFee is Depal's service fee on goods worth goods fen (2 %, rounded
// down). Xportcn charges none (additionalFee 0).
func ServiceFee(goods int64) int64 { return goods * 2 / 100 }

// Planned product ids with a deterministic behaviour.
const (
	// PlannedErrorBase + N (N = 1..9) fails preview with R500_00N (Xportcn:
	// resultCode "500_00N").
	PlannedErrorBase int64 = 900000000000
	// ProductCancelled: the order is never paid and is closed (status
	// "cancel") after Timeline.PayAfter.
	ProductCancelled int64 = 910000000001
	// ProductTerminated: the order is paid, then refunded: "terminated"
	// Timeline.ShipAfter after payment, never shipped.
	ProductTerminated int64 = 910000000002
	// ProductSplit: an Xportcn create splits into 2 provider orders (see
	// Parts); both follow the normal fate. Depal never splits.
	ProductSplit int64 = 910000000003
	// ProductUnknownStatus: details answer UnknownStatusWord instead of
	// "waitsellersend" (for Timeline.ShipAfter after payment), then go on
	// normally.
	ProductUnknownStatus int64 = 910000000004
	// ProductRepriceAtCreate: the seller re-priced between preview and
	// create: the create makes the order with RepriceFactor times the
	// planned goods (its answer and details say so), and the buyer never
	// pays it: it awaits payment until cancelled.
	ProductRepriceAtCreate int64 = 910000000005
	// ProductRepriceUnpaid: Timeline.PayAfter/2 after creation the seller
	// raises the goods RepriceFactor times (Xportcn pushes
	// ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY) and the buyer never pays: the
	// order awaits payment until cancelled.
	ProductRepriceUnpaid int64 = 910000000006
	// ProductRepricePaid: the same raise, then the order is paid at
	// Timeline.PayAfter and goes on normally.
	ProductRepricePaid int64 = 910000000007
	// ProductZeroTotal: the preview answers every amount 0 (a provider
	// glitch; a create would be priced by the seller later).
	ProductZeroTotal int64 = 910000000008
	// ProductUnpaid: the order is never paid: it awaits payment until
	// cancelled.
	ProductUnpaid int64 = 910000000009
	// ProductNeverShipped: the order is paid at Timeline.PayAfter and the
	// seller never ships it: it awaits shipment for ever.
	ProductNeverShipped int64 = 910000000010
)

// RepriceFactor is how many times the planned goods a re-priced order
// costs.
const RepriceFactor = 10

// UnknownStatusWord is the status word no client knows, answered for orders
// of ProductUnknownStatus while paid and not yet shipped.
const UnknownStatusWord = "waitlogisticstakein"

// CancelGuard is 1688's rule: no cancel within this long (sim time) of
// creation (CLOSE_ORDER_TOO_FAST).
const CancelGuard = 10 * time.Second

// Carrier is the carrier of every simulated parcel (Depal channelCode,
// Xportcn logisticsCompanyName).
const Carrier = "YTO"

// plannedTexts are the seed's R500 descriptions, by N.
var plannedTexts = [10]string{
	1: "product %d is not tradable online",
	2: "product %d: several sellers or no specId",
	3: "product %d: spec does not belong to this offer",
	4: "product %d: out of stock",
	5: "product %d: quantity below the minimum order quantity",
	6: "product %d: quantity or amount does not meet the mixed-batch rule",
	7: "product %d: no consignment relation with the supplier for this flow",
	8: "product %d: price is 0",
	9: "product %d: quantity below the wholesale minimum",
}

// PlannedError reports whether productID is planned to fail preview, and
// with which N (1..9, the error R500_00N).
func PlannedError(productID int64) (n int, ok bool) {
	d := productID - PlannedErrorBase
	if d >= 1 && d <= 9 {
		return int(d), true
	}
	return 0, false
}

// PlannedErrorCode is Depal's word for planned error n: "R500_00N".
// Xportcn's is the same without the "R" ("500_00N").
func PlannedErrorCode(n int) string { return fmt.Sprintf("R500_%03d", n) }

func plannedErrorText(n int, productID int64) string {
	return fmt.Sprintf(plannedTexts[n], productID)
}

// firstPlannedError returns the first cart line planned to fail preview.
func firstPlannedError(items []providers.Item) (n int, productID int64, ok bool) {
	for _, it := range items {
		if n, ok := PlannedError(it.ProductID); ok {
			return n, it.ProductID, true
		}
	}
	return 0, 0, false
}

// Timeline is the simulated-time schedule of an order. Zero fields take the
// defaults: PayAfter 2m, ShipAfter 30m, ParcelStep 1h, CompleteAfter 2h.
//
// Normal fate: waitbuyerpay, PayAfter later waitsellersend, ShipAfter later
// waitbuyerreceive with a parcel WAITACCEPT, then ACCEPT, TRANSPORT, SIGN one
// ParcelStep apart; at SIGN the order is confirm_goods, CompleteAfter later
// success.
type Timeline struct {
	PayAfter      time.Duration
	ShipAfter     time.Duration
	ParcelStep    time.Duration
	CompleteAfter time.Duration
}

func (t Timeline) withDefaults() Timeline {
	if t.PayAfter <= 0 {
		t.PayAfter = 2 * time.Minute
	}
	if t.ShipAfter <= 0 {
		t.ShipAfter = 30 * time.Minute
	}
	if t.ParcelStep <= 0 {
		t.ParcelStep = time.Hour
	}
	if t.CompleteAfter <= 0 {
		t.CompleteAfter = 2 * time.Hour
	}
	return t
}

// Fate is how an order's life goes, decided by its cart.
type Fate int

// The fates.
const (
	FateNormal Fate = iota
	FateCancelled
	FateTerminated
	FateUnknownStatus
	FateRepriceAtCreate
	FateRepriceUnpaid
	FateRepricePaid
	FateUnpaid
	FateNeverShipped
)

func (f Fate) String() string {
	switch f {
	case FateNormal:
		return "normal"
	case FateCancelled:
		return "cancelled"
	case FateTerminated:
		return "terminated"
	case FateUnknownStatus:
		return "unknown_status"
	case FateRepriceAtCreate:
		return "reprice_at_create"
	case FateRepriceUnpaid:
		return "reprice_unpaid"
	case FateRepricePaid:
		return "reprice_paid"
	case FateUnpaid:
		return "unpaid"
	case FateNeverShipped:
		return "never_shipped"
	}
	return "fate(" + strconv.Itoa(int(f)) + ")"
}

// fateProducts are the planned products of the fates, the first found in
// this order winning.
var fateProducts = []struct {
	product int64
	fate    Fate
}{
	{ProductCancelled, FateCancelled},
	{ProductTerminated, FateTerminated},
	{ProductUnknownStatus, FateUnknownStatus},
	{ProductRepriceAtCreate, FateRepriceAtCreate},
	{ProductRepriceUnpaid, FateRepriceUnpaid},
	{ProductRepricePaid, FateRepricePaid},
	{ProductUnpaid, FateUnpaid},
	{ProductNeverShipped, FateNeverShipped},
}

// FateOf is the fate of a cart: ProductCancelled wins over
// ProductTerminated, which wins over ProductUnknownStatus, then the
// re-priced and unpaid products in their order; else normal.
func FateOf(items []providers.Item) Fate {
	for _, fp := range fateProducts {
		for _, it := range items {
			if it.ProductID == fp.product {
				return fp.fate
			}
		}
	}
	return FateNormal
}

// zeroQuote reports whether a cart's preview answers every amount 0.
func zeroQuote(items []providers.Item) bool {
	for _, it := range items {
		if it.ProductID == ProductZeroTotal {
			return true
		}
	}
	return false
}

// Parts is how a create of items at provider splits into provider orders.
// Only an Xportcn cart holding ProductSplit splits, into 2: with two lines
// or more, the first half of the lines and the rest; with one line of
// quantity q ≥ 2, q-q/2 and q/2; a single line of quantity 1 does not split.
func Parts(provider string, items []providers.Item) [][]providers.Item {
	split := false
	if provider == providers.Xportcn {
		for _, it := range items {
			if it.ProductID == ProductSplit {
				split = true
			}
		}
	}
	if !split {
		return [][]providers.Item{items}
	}
	switch {
	case len(items) >= 2:
		h := len(items) / 2
		return [][]providers.Item{append([]providers.Item(nil), items[:h]...), append([]providers.Item(nil), items[h:]...)}
	case len(items) == 1 && items[0].Quantity >= 2:
		a, b := items[0], items[0]
		b.Quantity = a.Quantity / 2
		a.Quantity -= b.Quantity
		return [][]providers.Item{{a}, {b}}
	}
	return [][]providers.Item{items}
}

// Goods is the planned goods amount of items, in fen.
func Goods(items []providers.Item) int64 {
	var g int64
	for _, it := range items {
		g += UnitPrice(it.ProductID) * int64(it.Quantity)
	}
	return g
}

// PlannedQuote is the quote the simulator answers for items at provider
// (amounts in fen). Total = Goods + Freight + Service.
func PlannedQuote(provider string, items []providers.Item) providers.Quote {
	if zeroQuote(items) {
		return providers.Quote{}
	}
	q := providers.Quote{Goods: Goods(items)}
	q.Freight = Freight * int64(len(Parts(provider, items)))
	if provider == providers.Depal {
		q.Service = ServiceFee(q.Goods)
	}
	q.Total = q.Goods + q.Freight + q.Service
	return q
}

// 1688 order status words.
const (
	statusWaitPay     = "waitbuyerpay"
	statusWaitSend    = "waitsellersend"
	statusWaitReceive = "waitbuyerreceive"
	statusConfirm     = "confirm_goods"
	statusSuccess     = "success"
	statusCancel      = "cancel"
	statusTerminated  = "terminated"
)

// parcelWords are 1688's parcel words along a normal delivery.
var parcelWords = [...]string{"WAITACCEPT", "ACCEPT", "TRANSPORT", "SIGN"}

var parcelMemos = [...]string{
	"WAITACCEPT: waiting for the carrier to collect",
	"ACCEPT: collected by the carrier",
	"TRANSPORT: in transit",
	"SIGN: signed for by the recipient",
}

// order is one provider order. Fields are set at creation and never change,
// except cancelledAt (buyer cancel) and the push bookkeeping, all under the
// store's mutex.
type order struct {
	provider   string
	id         string
	outOrderID string
	previewID  string
	part       int // 0-based index among the parts of one create
	created    time.Time
	committed  time.Time // wall time of the commit, for Faults.SearchLag
	fate       Fate
	lines      []providers.Item
	goods      int64
	freight    int64
	service    int64
	billNo     string

	cancelledAt  time.Time // buyer cancel (sim time); zero: none
	cancelReason string

	pushed  int       // status changes already queued for pushing
	pushDue time.Time // the next change's time, zero when none is scheduled
}

// goodsAt is the goods amount at sim time now: a re-priced order's goods
// are raised from its raise time on.
func (o *order) goodsAt(tl Timeline, now time.Time) int64 {
	if r := o.raiseAt(tl); !r.IsZero() && !now.Before(r) {
		return o.goods * RepriceFactor
	}
	return o.goods
}

// totalAt is the order's total at sim time now.
func (o *order) totalAt(tl Timeline, now time.Time) int64 {
	return o.goodsAt(tl, now) + o.freight + o.service
}

// raiseAt is when the seller raises a re-priced order's price (zero: never).
func (o *order) raiseAt(tl Timeline) time.Time {
	if o.fate == FateRepriceUnpaid || o.fate == FateRepricePaid {
		return o.created.Add(tl.PayAfter / 2)
	}
	return time.Time{}
}

// change is an order status change at a simulated time; price marks the
// seller's price change (the status word stays).
type change struct {
	at     time.Time
	status string
	price  bool
}

// changes is the order's whole life, as a pure function of its creation
// time, fate, buyer cancel and the timeline. The first change is creation.
func (o *order) changes(tl Timeline) []change {
	c := o.created
	if !o.cancelledAt.IsZero() {
		cs := []change{{at: c, status: statusWaitPay}}
		if r := o.raiseAt(tl); !r.IsZero() && r.Before(o.cancelledAt) {
			cs = append(cs, change{at: r, status: statusWaitPay, price: true})
		}
		return append(cs, change{at: o.cancelledAt, status: statusCancel})
	}
	paid := c.Add(tl.PayAfter)
	ship := paid.Add(tl.ShipAfter)
	switch o.fate {
	case FateCancelled:
		return []change{{at: c, status: statusWaitPay}, {at: paid, status: statusCancel}}
	case FateTerminated:
		return []change{{at: c, status: statusWaitPay}, {at: paid, status: statusWaitSend}, {at: ship, status: statusTerminated}}
	case FateUnpaid, FateRepriceAtCreate:
		return []change{{at: c, status: statusWaitPay}}
	case FateNeverShipped:
		return []change{{at: c, status: statusWaitPay}, {at: paid, status: statusWaitSend}}
	case FateRepriceUnpaid:
		return []change{{at: c, status: statusWaitPay}, {at: o.raiseAt(tl), status: statusWaitPay, price: true}}
	}
	send := statusWaitSend
	if o.fate == FateUnknownStatus {
		send = UnknownStatusWord
	}
	sign := ship.Add(3 * tl.ParcelStep)
	cs := []change{{at: c, status: statusWaitPay}}
	if o.fate == FateRepricePaid {
		cs = append(cs, change{at: o.raiseAt(tl), status: statusWaitPay, price: true})
	}
	return append(cs, change{at: paid, status: send}, change{at: ship, status: statusWaitReceive},
		change{at: sign, status: statusConfirm}, change{at: sign.Add(tl.CompleteAfter), status: statusSuccess})
}

// never is a fate that never pays.
func (f Fate) never() bool {
	return f == FateCancelled || f == FateUnpaid || f == FateRepriceUnpaid || f == FateRepriceAtCreate
}

// statusAt is the order's status word at sim time now.
func (o *order) statusAt(tl Timeline, now time.Time) string {
	cs := o.changes(tl)
	s := cs[0].status
	for _, c := range cs[1:] {
		if c.at.After(now) {
			break
		}
		s = c.status
	}
	return s
}

// payTime is when the order was paid, zero when it is not (yet).
func (o *order) payTime(tl Timeline, now time.Time) time.Time {
	if !o.cancelledAt.IsZero() || o.fate.never() {
		return time.Time{}
	}
	p := o.created.Add(tl.PayAfter)
	if p.After(now) {
		return time.Time{}
	}
	return p
}

// parcelStep is one parcel event.
type parcelStep struct {
	at     time.Time
	status string
	memo   string
}

// parcelAt is the parcel's events up to now, oldest first; nil before
// shipment and for orders that never ship.
func (o *order) parcelAt(tl Timeline, now time.Time) []parcelStep {
	if !o.cancelledAt.IsZero() || o.fate.never() || o.fate == FateTerminated || o.fate == FateNeverShipped {
		return nil
	}
	ship := o.created.Add(tl.PayAfter + tl.ShipAfter)
	var steps []parcelStep
	for i, w := range parcelWords {
		at := ship.Add(time.Duration(i) * tl.ParcelStep)
		if at.After(now) {
			break
		}
		steps = append(steps, parcelStep{at: at, status: w, memo: parcelMemos[i]})
	}
	return steps
}

// preview is a Depal preview: what a submit with its id creates.
type preview struct {
	outOrderID string
	lines      []providers.Item
	orderID    string // set once a submit created the order
}

// store holds every order and preview behind one mutex.
type store struct {
	mu       sync.Mutex
	seq      int64
	orders   map[string]*order
	bills    map[string]*order
	byOut    map[string][]*order // provider + "\x00" + outOrderId
	all      map[string][]*order // by provider, oldest first
	creates  map[string]int      // same key as byOut: creates that made orders
	previews map[string]*preview
	track    func(o *order) // called under mu for each new or cancelled order (pushes)
}

func newStore() *store {
	return &store{
		orders:   make(map[string]*order),
		bills:    make(map[string]*order),
		byOut:    make(map[string][]*order),
		all:      make(map[string][]*order),
		creates:  make(map[string]int),
		previews: make(map[string]*preview),
	}
}

func outKey(provider, outOrderID string) string { return provider + "\x00" + outOrderID }

// idBase makes order ids 1688-like: 19 digits, by provider.
var idBase = map[string]int64{providers.Xportcn: 3100000000000000000, providers.Depal: 4200000000000000000}

// create makes the provider orders of one create call. dup reports that
// this create made outOrderID a duplicate (its second create that made
// orders; later ones do not count again).
func (s *store) create(provider, outOrderID, previewID string, items []providers.Item, now time.Time) (made []*order, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createLocked(provider, outOrderID, previewID, items, now)
}

func (s *store) createLocked(provider, outOrderID, previewID string, items []providers.Item, now time.Time) (made []*order, dup bool) {
	parts := Parts(provider, items)
	fate := FateOf(items)
	var service int64
	if provider == providers.Depal {
		service = ServiceFee(Goods(items))
	}
	k := outKey(provider, outOrderID)
	for i, p := range parts {
		s.seq++
		id := strconv.FormatInt(idBase[provider]+s.seq, 10)
		o := &order{
			provider: provider, id: id, outOrderID: outOrderID, previewID: previewID, part: i,
			created: now, committed: time.Now(), fate: fate, lines: p, goods: Goods(p), freight: Freight,
			billNo: "YT" + id[len(id)-12:],
		}
		if fate == FateRepriceAtCreate {
			o.goods *= RepriceFactor
		}
		if i == 0 {
			o.service = service // the whole fee on the first part
		}
		s.orders[id] = o
		s.bills[o.billNo] = o
		s.byOut[k] = append(s.byOut[k], o)
		s.all[provider] = append(s.all[provider], o)
		if s.track != nil {
			s.track(o)
		}
		made = append(made, o)
	}
	s.creates[k]++
	return made, s.creates[k] == 2
}

// submitResult is the outcome of a Depal submit.
type submitResult struct {
	made     []*order
	dup      bool
	rejected *providers.Item // the line a partial create refused
	existing string          // the previewId already made this order
	bad      string          // refusal (bad parameter)
}

// submit creates the order of Depal preview previewID, once. With partial
// and 2 lines or more, the last line is refused (rejected) and the order
// made for the others.
func (s *store) submit(previewID, outOrderID string, now time.Time, partial bool) submitResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.checkSubmitLocked(previewID, outOrderID); r.bad != "" || r.existing != "" {
		return r
	}
	pv := s.previews[previewID]
	lines, rejected := splitPartial(pv.lines, partial)
	made, dup := s.createLocked(providers.Depal, outOrderID, previewID, lines, now)
	pv.orderID = made[0].id
	return submitResult{made: made, dup: dup, rejected: rejected}
}

// checkSubmit tells what a submit of previewID would answer without making
// anything: a refusal, the order it already made, or (zero) a new order.
func (s *store) checkSubmit(previewID, outOrderID string) submitResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkSubmitLocked(previewID, outOrderID)
}

func (s *store) checkSubmitLocked(previewID, outOrderID string) submitResult {
	pv := s.previews[previewID]
	switch {
	case pv == nil:
		return submitResult{bad: "unknown previewId " + previewID}
	case pv.outOrderID != outOrderID:
		return submitResult{bad: "previewId " + previewID + " belongs to another outOrderId"}
	case pv.orderID != "":
		return submitResult{existing: pv.orderID}
	}
	return submitResult{}
}

// splitPartial is a PartialCreate: with partial and 2 lines or more, the
// lines ordered (all but the last) and the one refused.
func splitPartial(items []providers.Item, partial bool) (ordered []providers.Item, rejected *providers.Item) {
	if !partial || len(items) < 2 {
		return items, nil
	}
	last := items[len(items)-1]
	return append([]providers.Item(nil), items[:len(items)-1]...), &last
}

// PartialCreateCode is 1688's word for the line a PartialCreate refuses
// (out of stock); Depal's is the same with an "R" in front.
const PartialCreateCode = "500_004"

// partialCreateText is the message of a refused line.
func partialCreateText(productID int64) string {
	return fmt.Sprintf("product %d: out of stock (sim: partial create)", productID)
}

// byBill returns a copy of the order whose parcel is billNo at provider.
func (s *store) byBill(provider, billNo string) (order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.bills[billNo]
	if !ok || o.provider != provider {
		return order{}, false
	}
	return *o, true
}

// get returns a copy of the order with id at provider.
func (s *store) get(provider, id string) (order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok || o.provider != provider {
		return order{}, false
	}
	return *o, true
}

// byOutOrderID returns copies of the orders of outOrderID at provider, oldest
// first.
func (s *store) byOutOrderID(provider, outOrderID string) []order {
	s.mu.Lock()
	defer s.mu.Unlock()
	os := s.byOut[outKey(provider, outOrderID)]
	out := make([]order, len(os))
	for i, o := range os {
		out[i] = *o
	}
	return out
}

// lookup returns copies of the orders a lookup by outOrderID sees at
// provider, oldest first: with unfiltered every order of the provider,
// whoever's; either way only those committed at least lag (wall time)
// ago. hidden is how many were left out for the lag.
func (s *store) lookup(provider, outOrderID string, unfiltered bool, lag time.Duration) (out []order, hidden int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	os := s.byOut[outKey(provider, outOrderID)]
	if unfiltered {
		os = s.all[provider]
	}
	now := time.Now()
	for _, o := range os {
		if lag > 0 && now.Sub(o.committed) < lag {
			hidden++
			continue
		}
		out = append(out, *o)
	}
	return out, hidden
}

// errCancel is a refused cancel; reason is 1688's word.
type errCancel struct{ reason, msg string }

func (e *errCancel) Error() string { return e.reason + ": " + e.msg }

// cancel cancels order id at provider at sim time now. It returns
// (nil, false) when there is no such order; an already cancelled order
// cancels again without error. The returned order is a copy.
func (s *store) cancel(provider, id, reason string, tl Timeline, now time.Time) (*order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok || o.provider != provider {
		return nil, false, nil
	}
	st := o.statusAt(tl, now)
	switch {
	case st == statusCancel:
		c := *o
		return &c, true, nil
	case st != statusWaitPay:
		return nil, true, &errCancel{"ORDER_STATUS_NOT_SUPPORT", "order is " + st + ", only an unpaid order can be cancelled"}
	case now.Sub(o.created) < CancelGuard:
		return nil, true, &errCancel{"CLOSE_ORDER_TOO_FAST", "an order cannot be closed within 10 s of its creation"}
	}
	o.cancelledAt = now
	o.cancelReason = reason
	if s.track != nil {
		s.track(o)
	}
	c := *o
	return &c, true, nil
}

// newPreview records a Depal preview and returns its id.
func (s *store) newPreview(outOrderID string, items []providers.Item) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := "PV" + strconv.FormatInt(s.seq, 10)
	s.previews[id] = &preview{outOrderID: outOrderID, lines: items}
	return id
}

// OrderView is what the simulator holds of one provider order, for tests.
type OrderView struct {
	Provider   string
	OrderID    string
	OutOrderID string
	// Part is the index of this order among the parts of a split create.
	Part int
	Fate Fate
	// Status is the 1688 status word now.
	Status string
	// ParcelStatus is the parcel's latest word, empty before shipment.
	ParcelStatus string
	Created      time.Time
	// Total is goods + freight + service, in fen.
	Total int64
}

func (o *order) view(tl Timeline, now time.Time) OrderView {
	v := OrderView{
		Provider: o.provider, OrderID: o.id, OutOrderID: o.outOrderID, Part: o.part,
		Fate: o.fate, Status: o.statusAt(tl, now), Created: o.created, Total: o.totalAt(tl, now),
	}
	if ps := o.parcelAt(tl, now); len(ps) > 0 {
		v.ParcelStatus = ps[len(ps)-1].status
	}
	return v
}
