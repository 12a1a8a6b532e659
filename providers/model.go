package providers

import (
	"context"
	"time"
)

// Provider names: the value of OrderRequest.Provider and the key of every
// per-provider setting, queue and metric.
const (
	Xportcn = "xportcn"
	Depal   = "depal"
)

// Names lists every provider orderflow knows, in a stable order.
var Names = []string{Xportcn, Depal}

// Known reports whether name is a provider orderflow knows.
func Known(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}

// Provider is what the pipeline needs of a purchasing agent. Implementations
// return errors of the classes in errors.go so callers can steer by them.
type Provider interface {
	// Name is the provider's name (Xportcn or Depal).
	Name() string
	// Preview prices the cart: goods, freight, service, and whatever the
	// provider needs later to create it (a preview id, a trade type).
	Preview(ctx context.Context, req *OrderRequest) (*Quote, error)
	// Create places the order previewed in q. An error of class
	// UnknownOutcome means the request left and no answer came back: the
	// order may exist, so Lookup before any new Create.
	Create(ctx context.Context, req *OrderRequest, q *Quote) (*Placement, error)
	// Lookup finds the provider orders created for outOrderID. It has
	// three answers:
	//   - a Placement: the provider named orders whose outOrderId is
	//     exactly outOrderID (never an entry without one, never another's);
	//   - ErrNotFound: the provider said explicitly and unambiguously that
	//     it has none (a valid envelope with an empty list, Depal's 640,
	//     Xportcn's envelope 404);
	//   - any other error: don't know. Among them ErrAmbiguous (inside a
	//     *TransientError) for an answer that does not tell: a success
	//     without the list or the order, or entries none of which is ours.
	// A provider's search index may lag its writes: ErrNotFound right after
	// a create whose outcome is unknown is not proof that no order exists.
	Lookup(ctx context.Context, outOrderID string) (*Placement, error)
	// Details fetches one provider order's status.
	Details(ctx context.Context, orderID string) (*OrderStatus, error)
	// Trace fetches the parcel of a shipped order; it returns ErrNotFound
	// while the carrier has nothing yet (poll later).
	Trace(ctx context.Context, orderID string, ref *ParcelRef) (*Parcel, error)
	// Cancel asks the provider to cancel an unpaid order.
	Cancel(ctx context.Context, orderID, reason string) error
}

// Address is the delivery address of an order request.
type Address struct {
	FullName     string `json:"fullName"`
	Phone        string `json:"phone"`
	Mobile       string `json:"mobile"`
	Country      string `json:"country"`
	Province     string `json:"province"`
	City         string `json:"city"`
	District     string `json:"district"`
	Town         string `json:"town"`
	Address      string `json:"address"`
	PostCode     string `json:"postCode"`
	DistrictCode string `json:"districtCode"`
}

// Item is one cart line: the provider's product (offer) id, its sku (spec)
// id, and a quantity of at least 1.
type Item struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Quantity  int    `json:"quantity"`
}

// Options are provider-specific extras passed through to the provider.
type Options struct {
	Flow         string `json:"flow,omitempty"`
	AliID        string `json:"aliId,omitempty"`
	SellerOpenID string `json:"sellerOpenId,omitempty"`
}

// OrderRequest is an upstream's order, as docs/interface.md ("An order
// (JSON)") defines its JSON.
// Check it with Validate before use.
type OrderRequest struct {
	Provider    string  `json:"provider"`
	OutOrderID  string  `json:"outOrderId"`
	Address     Address `json:"address"`
	Items       []Item  `json:"items"`
	MaxTotal    string  `json:"maxTotal,omitempty"`
	CallbackURL string  `json:"callbackUrl,omitempty"`
	Options     Options `json:"options"`
}

// Quote is a priced cart. Amounts are fen.
type Quote struct {
	Goods   int64 `json:"goods"`
	Freight int64 `json:"freight"`
	Service int64 `json:"service"`
	Total   int64 `json:"total"`
	// Lines are the per-line prices, in cart order where the provider says.
	Lines []QuoteLine `json:"lines,omitempty"`
	// PreviewID is Depal's previewId, needed to submit the order.
	PreviewID string `json:"previewId,omitempty"`
	// TradeType is the Xportcn trade type to create with (one the preview
	// marked opSupport).
	TradeType string `json:"tradeType,omitempty"`
}

// QuoteLine is the price of one cart line, in fen.
type QuoteLine struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
	Amount    int64  `json:"amount"`
}

// Placement is the result of a create, or of a lookup by outOrderId: one
// provider order id, or several when the provider split the order.
type Placement struct {
	OrderIDs []string `json:"orderIds"`
	// Total is what the provider says the order(s) cost, in fen, where known.
	Total int64 `json:"total,omitempty"`
	// Rejected are the cart lines the provider refused while it made the
	// order(s) for the others (a partial create). Empty when every line was
	// ordered, and always empty from Lookup (list answers do not say). What
	// to do about them is the caller's decision.
	Rejected []RejectedItem `json:"rejected,omitempty"`
}

// RejectedItem is one cart line a partial create refused: the line's
// product (offer) and sku (spec) ids as in Item, and the provider's own
// refusal code and message (e.g. 1688's "500_004", out of stock).
type RejectedItem struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// OrderStatus is one provider order's status, mapped to orderflow's states.
type OrderStatus struct {
	OrderID string `json:"orderId"`
	// State is the mapped state; StateUnknown when Raw is not understood.
	State State `json:"state"`
	// Raw is the provider's own status word, kept as it came.
	Raw   string `json:"raw"`
	Total int64  `json:"total,omitempty"`
	// Parcel names the parcel once the order has shipped, else nil.
	Parcel *ParcelRef `json:"parcel,omitempty"`
	// Lines are the product lines of this provider order as the provider
	// reports them (for a split create: this part's lines only; for a
	// partial create: without the refused lines), in the provider's order.
	// Nil when the provider did not say (no list, or an empty one): then
	// nothing can be concluded about which lines the order holds.
	Lines []OrderLine `json:"lines,omitempty"`
}

// OrderLine is one product line of a provider order: the product (offer)
// and sku (spec) ids and the quantity, as in Item.
type OrderLine struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Quantity  int    `json:"quantity"`
}

// ParcelRef names a parcel: carrier and bill number (Depal channelCode and
// logisticNo; Xportcn logisticsCompanyName and logisticsBillNo).
type ParcelRef struct {
	Carrier string `json:"carrier"`
	BillNo  string `json:"billNo"`
}

// Parcel is a parcel's trace. Status is the latest 1688 parcel word
// (WAITACCEPT, ACCEPT, TRANSPORT, SIGN, NOGET, UNSIGN, CANCEL).
type Parcel struct {
	ParcelRef
	Status string      `json:"status"`
	Steps  []TraceStep `json:"steps,omitempty"`
}

// Delivered reports whether the parcel was signed for.
func (p *Parcel) Delivered() bool { return p.Status == ParcelSigned }

// Failed reports whether the parcel ended on a failure branch.
func (p *Parcel) Failed() bool {
	switch p.Status {
	case "NOGET", "UNSIGN", "CANCEL":
		return true
	}
	return false
}

// ParcelSigned is 1688's parcel word for "signed for" (delivered).
const ParcelSigned = "SIGN"

// TraceStep is one event of a parcel trace.
type TraceStep struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"`
	Memo  string    `json:"memo,omitempty"`
}
