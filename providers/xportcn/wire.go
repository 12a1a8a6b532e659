package xportcn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"orderflow/providers/internal/wirejson"
	"strconv"
	"strings"
)

// The envelope codes that mean success: every stored sample shows 200, the
// seed page's example shows 0 (docs/providers.md, "Xportcn: envelope").
const (
	codeOK     = 200
	codeOKZero = 0
)

// The envelope error codes agreed with the simulator (docs/providers.md).
const (
	codeBadParameter = 400
	codeUnauthorized = 401
	codeForbidden    = 403
	codeNotFound     = 404
	codeThrottled    = 429
)

// envelope is every Xportcn answer: {requestId, code, developId, msg, data}.
// Code is a pointer so an answer without one is told apart from code 0.
type envelope struct {
	RequestID flexString      `json:"requestId"`
	Code      *flexInt        `json:"code"`
	DevelopID flexString      `json:"developId"`
	Msg       string          `json:"msg"`
	Data      json.RawMessage `json:"data"`
}

// ok reports whether the envelope's code means success.
func (e *envelope) ok() bool {
	return e.Code != nil && (int64(*e.Code) == codeOK || int64(*e.Code) == codeOKZero)
}

// hasData reports whether the envelope carries a non-null data value.
func (e *envelope) hasData() bool {
	d := bytes.TrimSpace(e.Data)
	return len(d) > 0 && !bytes.Equal(d, []byte("null"))
}

// flexString is a string on the wire that may arrive as a number or a
// boolean, kept as its exact text.
type flexString = wirejson.Text

// flexInt is an integer that may arrive as a JSON number or a numeric
// string (an envelope code, a platform number).
type flexInt int64

// UnmarshalJSON accepts an integral JSON number, a string holding one, or
// null (zero).
func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
	if err != nil {
		return fmt.Errorf("xportcn: want an integer, got %.40q", string(s))
	}
	*f = flexInt(n)
	return nil
}

// fen is an amount in fen. Every Xportcn amount is integer fen
// (docs/providers.md, "Xportcn: amounts"); the seed's sample shows some
// as 0.0, so a JSON number with a fraction (or a numeric string) is
// accepted too and rounded half away from zero to whole fen. It is never
// read as yuan.
type fen int64

// maxFen bounds amounts so that sums of up to thousands of them cannot
// overflow int64.
const maxFen = 1 << 50

// UnmarshalJSON accepts a JSON number, a string holding one, or null (zero).
func (f *fen) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	v, err := parseFen(string(s))
	if err != nil {
		return err
	}
	*f = fen(v)
	return nil
}

// parseFen parses a decimal amount of fen, rounding a fraction half away
// from zero. The empty string is zero.
func parseFen(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > maxFen || n < -maxFen {
			return 0, fmt.Errorf("xportcn: amount %.40q out of range", s)
		}
		return n, nil
	}
	// Only plain decimals ("12", "12.5", "-0.0"): no exponent, so a hostile
	// "1e99999999" cannot make big.Rat allocate.
	if len(s) > 40 || !plainDecimal(s) {
		return 0, fmt.Errorf("xportcn: malformed amount %.40q", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("xportcn: malformed amount %.40q", s)
	}
	if f, _ := r.Float64(); math.Abs(f) > maxFen {
		return 0, fmt.Errorf("xportcn: amount %.40q out of range", s)
	}
	// Round half away from zero exactly: (2r ± 1) / 2, truncated.
	num := new(big.Int).Mul(r.Num(), big.NewInt(2))
	den := new(big.Int).Mul(r.Denom(), big.NewInt(2))
	if r.Sign() >= 0 {
		num.Add(num, r.Denom())
	} else {
		num.Sub(num, r.Denom())
	}
	return new(big.Int).Quo(num, den).Int64(), nil
}

// plainDecimal reports whether s is an optional minus, digits, and an
// optional dot followed by digits.
func plainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") {
		return false
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// addressParam is the delivery address of preview and create (seed).
type addressParam struct {
	FullName     string `json:"fullName"`
	Mobile       string `json:"mobile"`
	Phone        string `json:"phone"`
	PostCode     string `json:"postCode"`
	CityText     string `json:"cityText"`
	ProvinceText string `json:"provinceText"`
	AreaText     string `json:"areaText"`
	TownText     string `json:"townText"`
	Address      string `json:"address"`
	DistrictCode string `json:"districtCode"`
}

// cargoParam is one cart line of preview and create (seed).
type cargoParam struct {
	SellerOpenID string `json:"sellerOpenId,omitempty"`
	OfferID      int64  `json:"offerId"`
	SpecID       string `json:"specId"`
	Quantity     int    `json:"quantity"`
	ProductNo    string `json:"productNo,omitempty"`
	Container    string `json:"container,omitempty"`
}

// previewRequest is the body of the preview call (seed).
type previewRequest struct {
	AliID          string       `json:"aliId,omitempty"`
	Flow           string       `json:"flow,omitempty"`
	OutOrderID     string       `json:"outOrderId"`
	AddressParam   addressParam `json:"addressParam"`
	CargoParamList []cargoParam `json:"cargoParamList"`
}

// createRequest is the body of the create call: the preview body plus the
// trade type and a message to the seller (docs/providers.md, "Xportcn:
// operations", inferred).
type createRequest struct {
	previewRequest
	TradeType string `json:"tradeType"`
	Message   string `json:"message"`
}

// The answer structs below hold only the fields the client reads: a
// documented field it does not use (postFeeByDescOfferList, discountFee,
// flowFlag, payChannelList, createTime…) is left out, so a shape that differs
// from the docs there cannot fail a call.

// previewData is the data of the preview answer (seed).
type previewData struct {
	OrderPreviewResuslt []previewResult `json:"orderPreviewResuslt"` // sic: the real field name
}

// previewResult is one seller's part of a preview.
type previewResult struct {
	Status               bool         `json:"status"`
	SumPayment           fen          `json:"sumPayment"`
	SumCarriage          fen          `json:"sumCarriage"`
	SumPaymentNoCarriage fen          `json:"sumPaymentNoCarriage"`
	AdditionalFee        fen          `json:"additionalFee"`
	Message              string       `json:"message"`
	ResultCode           flexString   `json:"resultCode"`
	CargoList            []cargoLine  `json:"cargoList"`
	TradeModelList       []tradeModel `json:"tradeModelList"`
}

// cargoLine is one priced cart line of a preview result.
type cargoLine struct {
	Amount         fen        `json:"amount"`
	FinalUnitPrice fen        `json:"finalUnitPrice"`
	SpecID         flexString `json:"specId"`
	SkuID          flexString `json:"skuId"`
	OfferID        flexString `json:"offerId"`
	ResultCode     flexString `json:"resultCode"`
	Message        string     `json:"message"`
}

// tradeModel is one trade type a preview result offers.
type tradeModel struct {
	TradeType string `json:"tradeType"`
	OpSupport bool   `json:"opSupport"`
}

// createData is the data of the create answer (docs/providers.md,
// "Xportcn: operations", inferred).
type createData struct {
	OrderID            flexString    `json:"orderId"`
	TotalSuccessAmount fen           `json:"totalSuccessAmount"`
	OrderList          []orderRef    `json:"orderList"`
	FailedOfferList    []failedOffer `json:"failedOfferList"`
}

// orderRef is one provider order of a split create.
type orderRef struct {
	OrderID flexString `json:"orderId"`
}

// failedOffer is a cart line the create could not place (1688's
// failedOfferList). Beside a created order it is a partial create.
type failedOffer struct {
	OfferID      flexString `json:"offerId"`
	SpecID       flexString `json:"specId"`
	ErrorCode    flexString `json:"errorCode"`
	ErrorMessage string     `json:"errorMessage"`
}

// listRequest is the body of the list call (docs/providers.md, "Xportcn:
// operations", inferred).
type listRequest struct {
	OutOrderID string `json:"outOrderId"`
	Page       int    `json:"page"`
	PageSize   int    `json:"pageSize"`
}

// listData is the data of the list answer. List is a pointer so a missing
// or null list (don't know) is told apart from an empty one (none).
type listData struct {
	Total flexInt      `json:"total"`
	List  *[]listEntry `json:"list"`
}

// listEntry is one order of the list answer.
type listEntry struct {
	OrderID    flexString `json:"orderId"`
	OutOrderID flexString `json:"outOrderId"`
}

// orderIDRequest is the body of the details call.
type orderIDRequest struct {
	OrderID string `json:"orderId"`
}

// cancelRequest is the body of the cancel call (docs/providers.md).
type cancelRequest struct {
	OrderID      string `json:"orderId"`
	CancelReason string `json:"cancelReason"`
}

// detailData is the data of the details answer: 1688's TradeInfo shape
// (docs/providers.md, "Xportcn: operations", inferred).
type detailData struct {
	BaseInfo        baseInfo        `json:"baseInfo"`
	NativeLogistics nativeLogistics `json:"nativeLogistics"`
	LogisticsTrace  []traceEntry    `json:"logisticsTrace"`
	ProductItems    []productItem   `json:"productItems"`
}

// productItem is one product line of the order (1688's TradeInfo
// productItems). PROVIDERS.md names the list but not its fields: the shape
// {productID, skuID, quantity} is inferred from 1688's own productItems,
// agreed with the simulator, with skuID carrying the spec the cart line
// was created with. Each field may come as a JSON number or a string.
type productItem struct {
	ProductID flexString `json:"productID"`
	SkuID     flexString `json:"skuID"`
	Quantity  flexString `json:"quantity"`
}

// baseInfo is the order part of a details answer.
type baseInfo struct {
	Status      string `json:"status"`
	TotalAmount fen    `json:"totalAmount"`
}

// nativeLogistics is the shipping part of a details answer.
type nativeLogistics struct {
	LogisticsItems []logisticsItem `json:"logisticsItems"`
}

// logisticsItem is one parcel of an order.
type logisticsItem struct {
	LogisticsCompanyName string     `json:"logisticsCompanyName"`
	LogisticsBillNo      flexString `json:"logisticsBillNo"`
}

// traceEntry is the carrier trace of one parcel.
type traceEntry struct {
	LogisticsBillNo flexString  `json:"logisticsBillNo"`
	Status          string      `json:"status"`
	LogisticsSteps  []traceStep `json:"logisticsSteps"`
}

// traceStep is one carrier event. Action is in no provider doc
// (docs/providers.md, "Xportcn: operations"); it is read when present
// (some 1688 traces carry it) and becomes the step's Event.
type traceStep struct {
	AcceptTime flexString `json:"acceptTime"`
	Remark     string     `json:"remark"`
	Action     string     `json:"action"`
}
