package xportcn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orderflow/internal/redact"
	"orderflow/providers"
	"orderflow/providers/internal/wirejson"
)

// The codes of the permanent errors this client makes up itself (the
// provider's own codes are passed through as given).
const (
	// CodeNoTradeType: the preview offers no trade type with opSupport
	// true (common to every seller's part), or create got a quote without
	// one.
	CodeNoTradeType = "NO_TRADE_TYPE"
	// CodePreviewFailed: a preview result with status false and no
	// resultCode of its own.
	CodePreviewFailed = "PREVIEW_FAILED"
	// CodeEmptyPreview: a preview answer with no result at all.
	CodeEmptyPreview = "EMPTY_PREVIEW"
	// CodeCreateFailed: a failed offer without an errorCode.
	CodeCreateFailed = "CREATE_FAILED"
	// CodeCancelRefused: cancel answered success with data false.
	CodeCancelRefused = "CANCEL_REFUSED"
)

// Lookup paging: the list call asks for this many orders a page, and reads
// at most this many pages.
const (
	listPageSize = 50
	listMaxPages = 20
)

// shanghai is Asia/Shanghai (UTC+8, no daylight saving since 1991), fixed so
// the client does not depend on the host's tz database.
var shanghai = time.FixedZone("Asia/Shanghai", 8*60*60)

// traceTimeLayout is the layout of a trace step's acceptTime.
const traceTimeLayout = "2006-01-02 15:04:05"

// previewBody builds the preview body from an order request.
func previewBody(req *providers.OrderRequest) previewRequest {
	a := req.Address
	body := previewRequest{
		AliID:      req.Options.AliID,
		Flow:       req.Options.Flow,
		OutOrderID: req.OutOrderID,
		AddressParam: addressParam{
			FullName:     a.FullName,
			Mobile:       a.Mobile,
			Phone:        a.Phone,
			PostCode:     a.PostCode,
			CityText:     a.City,
			ProvinceText: a.Province,
			AreaText:     a.District,
			TownText:     a.Town,
			Address:      a.Address,
			DistrictCode: a.DistrictCode,
		},
		CargoParamList: make([]cargoParam, 0, len(req.Items)),
	}
	for _, it := range req.Items {
		body.CargoParamList = append(body.CargoParamList, cargoParam{
			SellerOpenID: req.Options.SellerOpenID,
			OfferID:      it.ProductID,
			SpecID:       it.SkuID,
			Quantity:     it.Quantity,
		})
	}
	return body
}

// Preview prices the cart. Goods, Freight and Service are the sums over the
// preview's results of sumPaymentNoCarriage, sumCarriage and additionalFee.
// Total is the sum of each result's sumPayment (what 1688 charges, after
// discounts), taking goods + freight + service for a result whose sumPayment
// is 0 (a provider that leaves it out). Lines come from the cargo lists, with
// the quantity of the matching request item. TradeType is the first trade
// type with opSupport true that every result supports.
//
// A result with status false or a cargo line with a resultCode is a
// *providers.PermanentError carrying that resultCode ("500_004") and message;
// no common supported trade type is CodeNoTradeType. A negative amount (or
// sums beyond maxFen) is a malformed answer: a *providers.TransientError.
func (c *Client) Preview(ctx context.Context, req *providers.OrderRequest) (*providers.Quote, error) {
	var data previewData
	if _, err := c.call(ctx, opPreview, c.cfg.Paths.Preview, previewBody(req), &data); err != nil {
		return nil, err
	}
	return quoteOf(req, &data)
}

// quoteOf turns a preview answer into a Quote, or a permanent error.
func quoteOf(req *providers.OrderRequest, data *previewData) (*providers.Quote, error) {
	results := data.OrderPreviewResuslt
	if len(results) == 0 {
		return nil, &providers.PermanentError{Op: opPreview, Code: CodeEmptyPreview, Message: "preview answered no result"}
	}
	q := &providers.Quote{}
	for _, r := range results {
		for _, line := range r.CargoList {
			if line.ResultCode != "" {
				return nil, &providers.PermanentError{Op: opPreview, Code: string(line.ResultCode),
					Message: fmt.Sprintf("offer %s spec %s: %s", line.OfferID, line.SpecID, line.Message)}
			}
		}
		if !r.Status {
			code := string(r.ResultCode)
			if code == "" {
				code = CodePreviewFailed
			}
			return nil, &providers.PermanentError{Op: opPreview, Code: code, Message: r.Message}
		}
		goods, freight, service := int64(r.SumPaymentNoCarriage), int64(r.SumCarriage), int64(r.AdditionalFee)
		if goods < 0 || freight < 0 || service < 0 || r.SumPayment < 0 {
			return nil, badAmount("a negative amount in a preview result")
		}
		q.Goods += goods
		q.Freight += freight
		q.Service += service
		if r.SumPayment != 0 {
			q.Total += int64(r.SumPayment)
		} else {
			q.Total += goods + freight + service
		}
		// Each amount is at most maxFen: checking the sums after every
		// result keeps them from overflowing, however many results come.
		if q.Goods > maxFen || q.Freight > maxFen || q.Service > maxFen || q.Total > maxFen {
			return nil, badAmount("preview amounts out of range")
		}
		for _, line := range r.CargoList {
			if line.FinalUnitPrice < 0 || line.Amount < 0 {
				return nil, badAmount(fmt.Sprintf("a negative amount in cargo line offer %s spec %s", line.OfferID, line.SpecID))
			}
			offer, _ := strconv.ParseInt(string(line.OfferID), 10, 64)
			q.Lines = append(q.Lines, providers.QuoteLine{
				ProductID: offer,
				SkuID:     string(line.SpecID),
				Quantity:  quantityOf(req, offer, string(line.SpecID)),
				UnitPrice: int64(line.FinalUnitPrice),
				Amount:    int64(line.Amount),
			})
		}
	}
	q.TradeType = commonTradeType(results)
	if q.TradeType == "" {
		return nil, &providers.PermanentError{Op: opPreview, Code: CodeNoTradeType,
			Message: "no trade type with opSupport true is offered for this cart"}
	}
	return q, nil
}

// badAmount is a preview answer whose amounts cannot be right (negative,
// or out of range): a malformed answer, transient like any other (the
// provider may fix it; a broken provider trips the breaker instead of
// failing orders for good), never a quote.
func badAmount(what string) error {
	return &providers.TransientError{Op: opPreview, Err: fmt.Errorf("malformed answer: %s", what)}
}

// quantityOf is the quantity of the request item with this offer and spec
// (0 when none matches).
func quantityOf(req *providers.OrderRequest, offer int64, spec string) int {
	for _, it := range req.Items {
		if it.ProductID == offer && it.SkuID == spec {
			return it.Quantity
		}
	}
	return 0
}

// commonTradeType returns the first trade type of the first result that has
// opSupport true there and in every other result, or "".
func commonTradeType(results []previewResult) string {
	supported := func(r previewResult, tt string) bool {
		for _, m := range r.TradeModelList {
			if m.OpSupport && m.TradeType == tt {
				return true
			}
		}
		return false
	}
	for _, m := range results[0].TradeModelList {
		if !m.OpSupport || m.TradeType == "" {
			continue
		}
		all := true
		for _, r := range results[1:] {
			if !supported(r, m.TradeType) {
				all = false
				break
			}
		}
		if all {
			return m.TradeType
		}
	}
	return ""
}

// Create places the order previewed in q with q.TradeType and an empty
// message. OrderIDs are the split orders' ids when the answer lists them,
// else its orderId; Total is totalSuccessAmount. Offers of failedOfferList
// that failed beside a created order are the Placement's Rejected (a
// partial create); a failedOfferList with no order created is a
// *providers.PermanentError with the first errorCode. A success naming no
// order and no failure (empty or null data, an empty orderId) is an
// unknown outcome: the order may exist, look it up.
func (c *Client) Create(ctx context.Context, req *providers.OrderRequest, q *providers.Quote) (*providers.Placement, error) {
	if q == nil || q.TradeType == "" {
		return nil, &providers.PermanentError{Op: opCreate, Code: CodeNoTradeType, Message: "create needs a quote with a trade type (preview first)"}
	}
	body := createRequest{previewRequest: previewBody(req), TradeType: q.TradeType}
	var data createData
	if _, err := c.call(ctx, opCreate, c.cfg.Paths.Create, body, &data); err != nil {
		return nil, err
	}
	p := &providers.Placement{Total: int64(data.TotalSuccessAmount)}
	seen := map[string]bool{}
	for _, o := range data.OrderList {
		if id := string(o.OrderID); id != "" && !seen[id] {
			seen[id] = true
			p.OrderIDs = append(p.OrderIDs, id)
		}
	}
	if len(p.OrderIDs) == 0 && data.OrderID != "" {
		p.OrderIDs = []string{string(data.OrderID)}
	}
	if err := providers.CheckProviderOrderIDs(p.OrderIDs...); err != nil {
		// the order may exist under an id we will not store: look it up
		return nil, &providers.UnknownOutcomeError{Op: opCreate, Err: err}
	}
	if len(p.OrderIDs) > 0 {
		for _, f := range data.FailedOfferList {
			p.Rejected = append(p.Rejected, c.rejected(f))
		}
		return p, nil
	}
	if len(data.FailedOfferList) > 0 {
		r := c.rejected(data.FailedOfferList[0])
		return nil, &providers.PermanentError{Op: opCreate, Code: r.Code,
			Message: fmt.Sprintf("offer %s spec %s: %s", data.FailedOfferList[0].OfferID, r.SkuID, r.Message)}
	}
	return nil, &providers.UnknownOutcomeError{Op: opCreate, Err: errors.New("success names no order and no failed offer")}
}

// rejected maps a failed offer to a RejectedItem: an offerId that is not
// an integer is product 0, a missing errorCode is CodeCreateFailed.
func (c *Client) rejected(f failedOffer) providers.RejectedItem {
	pid, _ := strconv.ParseInt(strings.TrimSpace(string(f.OfferID)), 10, 64)
	code := string(f.ErrorCode)
	if code == "" {
		code = CodeCreateFailed
	}
	return providers.RejectedItem{ProductID: pid, SkuID: string(f.SpecID), Code: code, Message: redact.ProviderText(c.scrubString(f.ErrorMessage))}
}

// Lookup finds the provider orders of outOrderID with the list call
// ({outOrderId, page, pageSize: 50}, reading further pages, at most 20,
// while pages come full and total, when given, says there are more).
//
// Only entries whose outOrderId is exactly outOrderID are adopted. It
// answers:
//   - the Placement of those entries, when there are any and the listing
//     was read to its end (or honoured its filter);
//   - providers.ErrNotFound for envelope code 404, or a success whose first
//     page is an empty list (and total, when given, 0);
//   - providers.ErrAmbiguous inside a *providers.TransientError for a
//     success without a list (data null, {} or no "list"), a list whose
//     entries are none of them ours (the filter was ignored: ours may be on
//     another page), an empty first page with a total above 0, or ours
//     found in a filter-ignoring listing that was not read to its end.
func (c *Client) Lookup(ctx context.Context, outOrderID string) (*providers.Placement, error) {
	p := &providers.Placement{}
	seen := map[string]bool{}
	var entries, foreign int
	complete := false
	for page := 1; page <= listMaxPages; page++ {
		if page > 1 && c.cfg.Admit != nil {
			if err := c.cfg.Admit(ctx); err != nil {
				return nil, err
			}
		}
		env, err := c.call(ctx, opList, c.cfg.Paths.List, listRequest{OutOrderID: outOrderID, Page: page, PageSize: listPageSize}, nil)
		if err != nil {
			return nil, err
		}
		var data listData
		if !env.hasData() {
			return nil, ambiguous(outOrderID, "success without data")
		}
		if err := json.Unmarshal(env.Data, &data); err != nil {
			return nil, c.malformed(opList, false, fmt.Errorf("decode data: %w", err))
		}
		if data.List == nil {
			return nil, ambiguous(outOrderID, "success without a list")
		}
		list := *data.List
		if page == 1 && len(list) == 0 {
			if data.Total > 0 {
				return nil, ambiguous(outOrderID, fmt.Sprintf("an empty list with total %d", data.Total))
			}
			return nil, fmt.Errorf("%s %q: empty list: %w", opList, outOrderID, providers.ErrNotFound)
		}
		fresh := false
		for _, e := range list {
			id := string(e.OrderID)
			if id == "" || seen[id] {
				continue
			}
			seen[id], fresh = true, true
			entries++
			if string(e.OutOrderID) != outOrderID {
				foreign++
				continue
			}
			if err := providers.CheckProviderOrderIDs(id); err != nil {
				return nil, ambiguous(outOrderID, err.Error())
			}
			p.OrderIDs = append(p.OrderIDs, id)
		}
		// Stop at a short page or at the total when one is given: the
		// listing is read to its end. A page that brings nothing new is a
		// server that ignores page: it stops too, but is not complete.
		if len(list) < listPageSize || (data.Total > 0 && int64(page*listPageSize) >= int64(data.Total)) {
			complete = true
			break
		}
		if !fresh {
			break
		}
	}
	switch {
	case len(p.OrderIDs) == 0 && entries == 0:
		// Only entries without an order id: nothing that can be read.
		return nil, ambiguous(outOrderID, "entries without an order id")
	case len(p.OrderIDs) == 0:
		return nil, ambiguous(outOrderID, fmt.Sprintf("%d entries, none with outOrderId %q (the filter was ignored?)", entries, outOrderID))
	case foreign > 0 && !complete:
		return nil, ambiguous(outOrderID, fmt.Sprintf("%d of %d entries are other orders and the listing was not read to its end", foreign, entries))
	}
	return p, nil
}

// ambiguous is a lookup answer that does not tell whether the order
// exists: providers.ErrAmbiguous inside a *providers.TransientError.
func ambiguous(outOrderID, why string) error {
	return &providers.TransientError{Op: opList, Err: fmt.Errorf("outOrderId %q: %s: %w", outOrderID, why, providers.ErrAmbiguous)}
}

// details fetches one order's TradeInfo.
func (c *Client) details(ctx context.Context, op, orderID string) (*detailData, error) {
	var data detailData
	if _, err := c.call(ctx, op, c.cfg.Paths.Detail, orderIDRequest{OrderID: orderID}, &data); err != nil {
		return nil, err
	}
	return &data, nil
}

// Details fetches an order's status: baseInfo.status mapped with
// providers.MapStatus (a word it does not know gives StateUnknown with Raw
// kept, not an error), Total from baseInfo.totalAmount, and the Parcel from
// the first nativeLogistics item once it names a bill number, Lines from
// productItems (nil when the answer has none). Envelope code 404 is
// providers.ErrNotFound. A product item without a positive integer
// productID or an integer quantity of at least 1 is a malformed answer: a
// *providers.TransientError.
func (c *Client) Details(ctx context.Context, orderID string) (*providers.OrderStatus, error) {
	data, err := c.details(ctx, opDetail, orderID)
	if err != nil {
		return nil, err
	}
	lines, err := linesOf(data.ProductItems)
	if err != nil {
		return nil, c.malformed(opDetail, false, err)
	}
	st, _ := providers.MapStatus(data.BaseInfo.Status)
	s := &providers.OrderStatus{
		OrderID: orderID,
		State:   st,
		Raw:     data.BaseInfo.Status,
		Total:   int64(data.BaseInfo.TotalAmount),
		Lines:   lines,
	}
	if items := data.NativeLogistics.LogisticsItems; len(items) > 0 && (items[0].LogisticsBillNo != "" || items[0].LogisticsCompanyName != "") {
		s.Parcel = &providers.ParcelRef{Carrier: items[0].LogisticsCompanyName, BillNo: string(items[0].LogisticsBillNo)}
	}
	return s, nil
}

// linesOf reads a details answer's productItems: nil for none (no list,
// null or empty: the provider did not say), else every item in order.
func linesOf(items []productItem) ([]providers.OrderLine, error) {
	if len(items) == 0 {
		return nil, nil
	}
	lines := make([]providers.OrderLine, 0, len(items))
	for i, it := range items {
		l, err := wirejson.OrderLine(fmt.Sprintf("productItems[%d]", i), it.ProductID, it.SkuID, it.Quantity)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// Trace fetches the order's details again and returns the logisticsTrace
// entry of ref.BillNo (the first entry when ref is nil or names no bill):
// Status is the entry's 1688 parcel word, Steps its logisticsSteps in the
// order given, acceptTime read as "2006-01-02 15:04:05" in Asia/Shanghai
// (a step whose time cannot be read keeps a zero At). No trace yet, or none
// for that bill, is providers.ErrNotFound (poll later).
func (c *Client) Trace(ctx context.Context, orderID string, ref *providers.ParcelRef) (*providers.Parcel, error) {
	data, err := c.details(ctx, opTrace, orderID)
	if err != nil {
		return nil, err
	}
	var entry *traceEntry
	for i := range data.LogisticsTrace {
		e := &data.LogisticsTrace[i]
		if ref == nil || ref.BillNo == "" || string(e.LogisticsBillNo) == ref.BillNo {
			entry = e
			break
		}
	}
	if entry == nil {
		return nil, fmt.Errorf("%s %s: no parcel trace yet: %w", opTrace, orderID, providers.ErrNotFound)
	}
	p := &providers.Parcel{ParcelRef: providers.ParcelRef{BillNo: string(entry.LogisticsBillNo)}, Status: entry.Status}
	if ref != nil {
		p.Carrier = ref.Carrier
	}
	for _, it := range data.NativeLogistics.LogisticsItems {
		if string(it.LogisticsBillNo) == p.BillNo && it.LogisticsCompanyName != "" {
			p.Carrier = it.LogisticsCompanyName
			break
		}
	}
	for _, s := range entry.LogisticsSteps {
		p.Steps = append(p.Steps, providers.TraceStep{At: parseTraceTime(string(s.AcceptTime)), Event: s.Action, Memo: s.Remark})
	}
	return p, nil
}

// parseTraceTime reads an acceptTime: "2006-01-02 15:04:05" in
// Asia/Shanghai, or RFC 3339; anything else is the zero time.
func parseTraceTime(s string) time.Time {
	if t, err := time.ParseInLocation(traceTimeLayout, s, shanghai); err == nil {
		return t
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	return time.Time{}
}

// Cancel asks the provider to cancel an unpaid order ({orderId,
// cancelReason} → data true; a success without data is accepted, data false
// is CodeCancelRefused). A refusal (too soon after creation, already
// paid) is the provider's envelope code 400: permanent. Code 404 is
// providers.ErrNotFound.
func (c *Client) Cancel(ctx context.Context, orderID, reason string) error {
	env, err := c.call(ctx, opCancel, c.cfg.Paths.Cancel, cancelRequest{OrderID: orderID, CancelReason: reason}, nil)
	if err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(env.Data), []byte("false")) {
		return &providers.PermanentError{Op: opCancel, Code: CodeCancelRefused, Message: "the provider answered false"}
	}
	return nil
}
