package depal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"orderflow/providers/internal/wirejson"
	"strings"

	"orderflow/providers"
)

// The envelope codes of Depal's Open API (docs/providers.md, "Depal:
// envelope and codes").
const (
	codeOK            = "200"
	codeSystemError   = "500"
	codeTokenExpired  = "510"
	codeRateLimited   = "600"
	codeBadSignature  = "610"
	codeBadHeader     = "620"
	codeBadParameter  = "630"
	codeEmptyData     = "640"
	codePreviewFailed = "1000"
	codeCreateFailed  = "1010"
)

// The methods of the order calls.
const (
	methodPreview   = "1688.order.create.preview"
	methodSubmit    = "1688.order.create.order"
	methodDetail    = "1688.order.detail"
	methodLogistics = "logistics.tracking"
	// DefaultCancelMethod is the cancel method used when Config.CancelMethod
	// is empty (inferred: Depal does not document it).
	DefaultCancelMethod = "1688.order.cancel"
)

// envelope is every Depal answer: {code, msg, data, requestId}.
type envelope struct {
	Code      flexString      `json:"code"`
	Msg       string          `json:"msg"`
	Data      json.RawMessage `json:"data"`
	RequestID string          `json:"requestId"`
}

// hasData reports whether the envelope carries a non-null data value.
func (e *envelope) hasData() bool {
	d := bytes.TrimSpace(e.Data)
	return len(d) > 0 && !bytes.Equal(d, []byte("null"))
}

// flexString is a string on the wire that may arrive as a number or a
// boolean, kept as its exact text.
type flexString = wirejson.Text

// yuan is an amount in yuan as Depal sends it: a decimal string ("2.48").
// A bare JSON number is accepted too and kept as its exact text.
type yuan = flexString

// wireAddress is Depal's AddressDTO.
type wireAddress struct {
	UserName string `json:"userName"`
	Phone    string `json:"phone"`
	Country  string `json:"country"`
	Province string `json:"province"`
	City     string `json:"city"`
	Address  string `json:"address"`
	PostCode string `json:"postCode"`
}

// wireCargo is one cart line of a preview or submit body.
type wireCargo struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Quantity  int    `json:"quantity"`
}

// previewBody is the body of 1688.order.create.preview.
type previewBody struct {
	OutOrderID string      `json:"outOrderId"`
	Address    wireAddress `json:"address"`
	CargoList  []wireCargo `json:"cargoList"`
}

// submitBody is the body of 1688.order.create.order: the preview body plus
// previewId.
type submitBody struct {
	previewBody
	PreviewID string `json:"previewId"`
}

// previewData is the data of a preview answer.
type previewData struct {
	PreviewID          string `json:"previewId"`
	ProductTotalAmount yuan   `json:"productTotalAmount"`
	FreightTotalAmount yuan   `json:"freightTotalAmount"`
	ServiceTotalAmount yuan   `json:"serviceTotalAmount"`
	CargoList          []struct {
		ProductID flexString `json:"productId"`
		SkuID     string     `json:"skuId"`
		Quantity  int        `json:"quantity"`
		Price     yuan       `json:"price"`
		Amount    yuan       `json:"amount"`
	} `json:"cargoList"`
}

// submitData is the data of a submit answer, and of a 1010 answer naming
// the order a previewId already produced. OrderIDs is an extension for a
// split create (not documented; accepted when present). FailedOfferList is
// not documented by Depal either: the client and the simulator agree on
// 1688's own shape (the failedOfferList of 1688's create answer, the one
// Xportcn passes through) for the lines refused beside a created order.
type submitData struct {
	OrderID         flexString    `json:"orderId"`
	OrderIDs        []flexString  `json:"orderIds"`
	FailedOfferList []failedOffer `json:"failedOfferList"`
}

// failedOffer is a cart line a submit refused while it made the order for
// the others (1688's failedOfferList entry; offerId and specId are Depal's
// productId and skuId).
type failedOffer struct {
	OfferID      flexString `json:"offerId"`
	SpecID       flexString `json:"specId"`
	ErrorCode    flexString `json:"errorCode"`
	ErrorMessage string     `json:"errorMessage"`
}

// ids returns the order ids of d, without empties or repeats.
func (d *submitData) ids() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s flexString) {
		if s != "" && !seen[string(s)] {
			seen[string(s)] = true
			out = append(out, string(s))
		}
	}
	add(d.OrderID)
	for _, id := range d.OrderIDs {
		add(id)
	}
	return out
}

// detailBody is the body of 1688.order.detail: one of the two ids.
type detailBody struct {
	OrderID    string `json:"orderId,omitempty"`
	OutOrderID string `json:"outOrderId,omitempty"`
}

// detailData is the data of a details answer.
type detailData struct {
	OrderID            flexString `json:"orderId"`
	OutOrderID         string     `json:"outOrderId"`
	Status             string     `json:"status"`
	ProductTotalAmount yuan       `json:"productTotalAmount"`
	FreightTotalAmount yuan       `json:"freightTotalAmount"`
	ServiceTotalAmount yuan       `json:"serviceTotalAmount"`
	Logistics          *struct {
		ChannelCode string `json:"channelCode"`
		LogisticNo  string `json:"logisticNo"`
	} `json:"logistics"`
	OrderItemList []orderItem `json:"orderItemList"`
}

// orderItem is one product line of the order (orderItemList). Depal
// documents the list but PROVIDERS.md gives no fields: the shape
// {productId, skuId, quantity} is inferred (the names of its cargo lines,
// as 1688's order items carry them), agreed with the simulator. Each field
// may come as a JSON number or a string.
type orderItem struct {
	ProductID flexString `json:"productId"`
	SkuID     flexString `json:"skuId"`
	Quantity  flexString `json:"quantity"`
}

// cancelBody is the body of the cancel call.
type cancelBody struct {
	OrderID      string `json:"orderId"`
	CancelReason string `json:"cancelReason"`
}

// logisticsBody is the body of logistics.tracking.
type logisticsBody struct {
	ChannelCode string `json:"channelCode"`
	LogisticNo  string `json:"logisticNo"`
}

// traceEvent is one element of a logistics.tracking answer.
type traceEvent struct {
	Date  string `json:"date"`
	Event string `json:"event"`
	Memo  string `json:"memo"`
}

// tokenData is the data of system.token.get.
type tokenData struct {
	AccessToken string     `json:"accessToken"`
	ExpiresAt   flexString `json:"expiresAt"` // epoch milliseconds
}

// AmountError is an amount in a Depal answer that is not a decimal yuan
// string of at most two decimals, or is negative, or is missing where it is
// required. It is a breach of the provider's contract, not a property of the
// order, so the client returns it inside a *providers.TransientError: the
// call is worth retrying (the provider may fix its answer), and a broken
// provider trips the circuit breaker instead of failing orders for good.
type AmountError struct {
	Field string // the JSON path of the amount, e.g. "cargoList[1].price"
	Value string // the amount as received
	Err   error  // the parse error, nil for a missing or negative amount
}

func (e *AmountError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("depal: amount %s: %v", e.Field, e.Err)
	case e.Value == "":
		return fmt.Sprintf("depal: amount %s: missing", e.Field)
	}
	return fmt.Sprintf("depal: amount %s: negative amount %q", e.Field, e.Value)
}

func (e *AmountError) Unwrap() error { return e.Err }

// parseAmount converts a yuan amount to fen. An empty amount is 0 unless
// required.
func parseAmount(field string, v yuan, required bool) (int64, error) {
	s := strings.TrimSpace(string(v))
	if s == "" {
		if required {
			return 0, &AmountError{Field: field}
		}
		return 0, nil
	}
	fen, err := providers.ParseYuan(s)
	if err != nil {
		return 0, &AmountError{Field: field, Value: string(v), Err: err}
	}
	if fen < 0 {
		return 0, &AmountError{Field: field, Value: string(v)}
	}
	return fen, nil
}
