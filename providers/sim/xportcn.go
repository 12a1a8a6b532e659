package sim

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"orderflow/providers"
)

// Xportcn paths, after XportcnPrefix.
const (
	XportcnPathPreview = "/alibaba/majorClient/order/create/preview"
	XportcnPathCreate  = "/alibaba/majorClient/order/create"
	XportcnPathDetail  = "/alibaba/majorClient/order/detail"
	XportcnPathList    = "/alibaba/majorClient/order/list"
	XportcnPathCancel  = "/alibaba/majorClient/order/cancel"
)

// XportcnTradeType is the one trade type the simulator's previews offer with
// opSupport true; a create must name it.
const XportcnTradeType = "fxassure"

// MaxSkew is the largest difference between an Xportcn timestamp and the
// wall clock that is accepted.
const MaxSkew = 600 * time.Second

// Xportcn envelope codes the simulator answers.
const (
	xCodeOK        = 200
	xCodeBadParam  = 400
	xCodeAuth      = 401
	xCodeForbidden = 403
	xCodeNotFound  = 404
	xCodeThrottled = 429
)

// XportcnSign is the Xportcn signature: UPPER(hex(MD5(accessKey + timestamp
// + nonceStr + accessSecret))).
func XportcnSign(accessKey, timestamp, nonce, accessSecret string) string {
	sum := md5.Sum([]byte(accessKey + timestamp + nonce + accessSecret))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

type xEnvelope struct {
	RequestID string `json:"requestId"`
	Code      int    `json:"code"`
	DevelopID int    `json:"developId"`
	Msg       string `json:"msg"`
	Data      any    `json:"data"`
}

func (s *Sim) xWrite(w http.ResponseWriter, code int, msg string, data any) {
	writeJSON(w, http.StatusOK, xEnvelope{RequestID: s.requestID("x"), Code: code, Msg: msg, Data: data})
}

func (s *Sim) xThrottled(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusTooManyRequests, xEnvelope{
		RequestID: s.requestID("x"), Code: xCodeThrottled, Msg: "gw.QosAppFrequencyLimit: too many requests",
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// xAuth checks the Xportcn headers as the real provider does. It returns
// the envelope code and message of a refusal, or 0.
func (s *Sim) xAuth(r *http.Request) (int, string) {
	h := r.Header
	ak, ts, nonce, sig := h.Get("access-key"), h.Get("timestamp"), h.Get("nonce-str"), h.Get("signature")
	for _, f := range []struct{ name, v string }{{"access-key", ak}, {"timestamp", ts}, {"nonce-str", nonce}, {"signature", sig}} {
		if f.v == "" {
			return xCodeAuth, "missing header " + f.name
		}
	}
	if ak != s.cfg.Xportcn.AccessKey {
		return xCodeAuth, "unknown access-key"
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || n <= 0 {
		return xCodeAuth, "malformed timestamp"
	}
	var at time.Time
	if n >= 1e11 { // milliseconds (seconds would be after year 5000)
		at = time.UnixMilli(n)
	} else {
		at = time.Unix(n, 0)
	}
	if d := time.Since(at); d > MaxSkew || d < -MaxSkew {
		return xCodeForbidden, "timestamp is more than 600 s away from the server clock"
	}
	want := XportcnSign(ak, ts, nonce, s.cfg.Xportcn.AccessSecret)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return xCodeAuth, "signature mismatch"
	}
	if u := h.Get("user-id"); u != "" && u != s.cfg.Xportcn.UserID {
		return xCodeForbidden, "user-id is not a sub-account of this access-key"
	}
	return 0, ""
}

// Xportcn request bodies.
type xAddress struct {
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

type xCargo struct {
	SellerOpenID string `json:"sellerOpenId"`
	OfferID      int64  `json:"offerId"`
	SpecID       string `json:"specId"`
	Quantity     int    `json:"quantity"`
	ProductNo    string `json:"productNo"`
	Container    string `json:"container"`
}

type xOrderReq struct {
	AliID          string   `json:"aliId"`
	Flow           string   `json:"flow"`
	OutOrderID     string   `json:"outOrderId"`
	AddressParam   xAddress `json:"addressParam"`
	CargoParamList []xCargo `json:"cargoParamList"`
	TradeType      string   `json:"tradeType"`
	Message        string   `json:"message"`
}

// items checks the cart and returns it, or a refusal message.
func (q *xOrderReq) items() ([]providers.Item, string) {
	if q.OutOrderID == "" {
		return nil, "outOrderId is required"
	}
	if q.AddressParam.FullName == "" || q.AddressParam.Address == "" {
		return nil, "addressParam.fullName and addressParam.address are required"
	}
	if len(q.CargoParamList) == 0 {
		return nil, "cargoParamList is empty"
	}
	items := make([]providers.Item, len(q.CargoParamList))
	for i, c := range q.CargoParamList {
		if c.OfferID <= 0 || c.Quantity < 1 {
			return nil, "cargoParamList[" + strconv.Itoa(i) + "]: offerId and quantity must be positive"
		}
		items[i] = providers.Item{ProductID: c.OfferID, SkuID: c.SpecID, Quantity: c.Quantity}
	}
	return items, ""
}

// flexID is an order id sent as a JSON string or number.
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexID(n.String())
	return nil
}

// serveXportcn routes an Xportcn call.
func (s *Sim) serveXportcn(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, XportcnPrefix)
	var op string
	switch path {
	case XportcnPathPreview:
		op = "preview"
	case XportcnPathCreate:
		op = "create"
	case XportcnPathDetail:
		op = "detail"
	case XportcnPathList:
		op = "list"
	case XportcnPathCancel:
		op = "cancel"
	default:
		s.counters.request(providers.Xportcn, "unknown")
		http.Error(w, "sim: no such Xportcn API path "+path, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		s.counters.request(providers.Xportcn, op)
		http.Error(w, "sim: Xportcn calls are POST", http.StatusMethodNotAllowed)
		return
	}
	arrived := time.Now()
	kind := kindOther
	switch op {
	case "create":
		kind = kindCreate
	case "list":
		kind = kindLookup
	}
	p, ok := s.admit(w, providers.Xportcn, op, kind, s.xThrottled)
	if !ok {
		return
	}
	if code, msg := s.xAuth(r); code != 0 {
		s.counters.signatureFailure(providers.Xportcn)
		s.xWrite(w, code, msg, nil)
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.xWrite(w, xCodeBadParam, "cannot read body", nil)
		return
	}
	var (
		code = xCodeOK
		msg  = "success"
		data any
		made bool
	)
	switch op {
	case "preview":
		code, msg, data = s.xPreview(body)
	case "create":
		var commit func() any
		code, msg, commit = s.xCreate(body, p.partial)
		if commit != nil && p.late > 0 {
			s.lateCommit(w, r, providers.Xportcn, op, arrived, p.late, func() { commit() })
			return
		}
		if commit != nil {
			data, made = commit(), true
		}
	case "detail":
		code, msg, data = s.xDetail(body)
	case "list":
		code, msg, data = s.xList(body, p.unfiltered)
	case "cancel":
		code, msg, data = s.xCancel(body)
	}
	if !s.finish(w, r, providers.Xportcn, op, p, made) {
		return
	}
	switch {
	case made && p.gateway != 0:
		s.gatewayAnswer(w, providers.Xportcn, op, p.gateway)
		return
	case p.empty && (made || op == "list" && (code == xCodeOK || code == xCodeNotFound)):
		s.counters.fault(FaultEmptySuccess)
		s.cfg.Logger.Debug("sim: injected empty success", "provider", providers.Xportcn, "op", op)
		code, msg, data = xCodeOK, "success", map[string]any{}
		if p.emptyNull {
			data = nil
		}
	case made && p.hostile:
		s.counters.fault(FaultHostileID)
		code, msg, data = xCodeOK, "success", map[string]any{"orderId": HostileOrderID}
	}
	s.xWrite(w, code, msg, data)
}

type xTradeModel struct {
	TradeWay    string `json:"tradeWay"`
	Name        string `json:"name"`
	TradeType   string `json:"tradeType"`
	Description string `json:"description"`
	OpSupport   bool   `json:"opSupport"`
}

type xCargoResult struct {
	Amount             int64  `json:"amount"`
	FinalUnitPrice     int64  `json:"finalUnitPrice"`
	SpecID             string `json:"specId"`
	SkuID              int64  `json:"skuId"`
	OfferID            int64  `json:"offerId"`
	ResultCode         string `json:"resultCode"`
	Message            string `json:"message"`
	CargoPromotionList []any  `json:"cargoPromotionList"`
}

type xPreviewResult struct {
	DiscountFee          int64          `json:"discountFee"`
	Status               bool           `json:"status"`
	SumPayment           int64          `json:"sumPayment"`
	SumCarriage          int64          `json:"sumCarriage"`
	SumPaymentNoCarriage int64          `json:"sumPaymentNoCarriage"`
	AdditionalFee        int64          `json:"additionalFee"`
	Message              string         `json:"message"`
	ResultCode           string         `json:"resultCode"`
	FlowFlag             string         `json:"flowFlag"`
	CargoList            []xCargoResult `json:"cargoList"`
	TradeModelList       []xTradeModel  `json:"tradeModelList"`
	PayChannelList       []any          `json:"payChannelList"`
	ShopPromotionList    []any          `json:"shopPromotionList"`
}

type xPreviewData struct {
	PostFeeByDescOfferList             []int64          `json:"postFeeByDescOfferList"`
	ConsignOfferList                   []int64          `json:"consignOfferList"`
	UnsupportedCrossBorderPayOfferList []int64          `json:"unsupportedCrossBorderPayOfferList"`
	OrderPreviewResuslt                []xPreviewResult `json:"orderPreviewResuslt"`
}

var xTradeModels = []xTradeModel{
	{TradeWay: "assureTrade", Name: "担保交易", TradeType: XportcnTradeType, Description: "escrow trade", OpSupport: true},
	{TradeWay: "period", Name: "账期交易", TradeType: "period", Description: "credit period trade", OpSupport: false},
}

func (s *Sim) xPreview(body []byte) (int, string, any) {
	var req xOrderReq
	if err := json.Unmarshal(body, &req); err != nil {
		return xCodeBadParam, "malformed body: " + err.Error(), nil
	}
	items, bad := req.items()
	if bad != "" {
		return xCodeBadParam, bad, nil
	}
	res := xPreviewResult{Status: true, TradeModelList: xTradeModels, PayChannelList: []any{}, ShopPromotionList: []any{}}
	for _, it := range items {
		up := UnitPrice(it.ProductID)
		line := xCargoResult{
			Amount: up * int64(it.Quantity), FinalUnitPrice: up, SpecID: it.SkuID,
			OfferID: it.ProductID, CargoPromotionList: []any{},
		}
		if n, ok := PlannedError(it.ProductID); ok {
			line.ResultCode = PlannedErrorCode(n)[1:]
			line.Message = plannedErrorText(n, it.ProductID)
			if res.Status {
				res.Status, res.ResultCode, res.Message = false, line.ResultCode, line.Message
			}
		}
		res.CargoList = append(res.CargoList, line)
	}
	q := PlannedQuote(providers.Xportcn, items)
	if res.Status {
		res.SumPaymentNoCarriage, res.SumCarriage, res.SumPayment = q.Goods, q.Freight, q.Total
	} else {
		res.TradeModelList = []xTradeModel{}
	}
	return xCodeOK, "success", xPreviewData{
		PostFeeByDescOfferList: []int64{}, ConsignOfferList: []int64{}, UnsupportedCrossBorderPayOfferList: []int64{},
		OrderPreviewResuslt: []xPreviewResult{res},
	}
}

type xOrderRef struct {
	OrderID string `json:"orderId"`
}

type xCreateData struct {
	OrderID            string         `json:"orderId"`
	TotalSuccessAmount int64          `json:"totalSuccessAmount"`
	PostFee            int64          `json:"postFee"`
	OrderList          []xOrderRef    `json:"orderList,omitempty"`
	FailedOfferList    []xFailedOffer `json:"failedOfferList"`
}

// xFailedOffer is one line of 1688's failedOfferList: a cart line the
// create refused (beside the order made for the others, a partial create).
type xFailedOffer struct {
	OfferID      int64  `json:"offerId"`
	SpecID       string `json:"specId"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// xCreate checks a create. A refusal returns its code and message and a
// nil commit; otherwise commit makes the orders (with partial, of all the
// lines but the last, which is refused) and returns the answer's data. The
// caller decides when to commit (Faults.LateCommit).
func (s *Sim) xCreate(body []byte, partial bool) (int, string, func() any) {
	var req xOrderReq
	if err := json.Unmarshal(body, &req); err != nil {
		return xCodeBadParam, "malformed body: " + err.Error(), nil
	}
	items, bad := req.items()
	if bad != "" {
		return xCodeBadParam, bad, nil
	}
	if req.TradeType != XportcnTradeType {
		return xCodeBadParam, "tradeType " + strconv.Quote(req.TradeType) + " is not supported for this cart", nil
	}
	if n, pid, ok := firstPlannedError(items); ok {
		return xCodeBadParam, PlannedErrorCode(n)[1:] + ": " + plannedErrorText(n, pid), nil
	}
	return xCodeOK, "success", func() any {
		ordered, rejected := splitPartial(items, partial)
		made := s.createOrders(providers.Xportcn, req.OutOrderID, "", ordered)
		d := xCreateData{OrderID: made[0].id, FailedOfferList: []xFailedOffer{}}
		if rejected != nil {
			s.counters.fault(FaultPartialCreate)
			s.cfg.Logger.Debug("sim: injected partial create", "provider", providers.Xportcn, "outOrderId", req.OutOrderID)
			d.FailedOfferList = append(d.FailedOfferList, xFailedOffer{OfferID: rejected.ProductID, SpecID: rejected.SkuID,
				ErrorCode: PartialCreateCode, ErrorMessage: partialCreateText(rejected.ProductID)})
		}
		for _, o := range made {
			d.TotalSuccessAmount += o.totalAt(s.tl, o.created)
			d.PostFee += o.freight
		}
		if len(made) > 1 {
			for _, o := range made {
				d.OrderList = append(d.OrderList, xOrderRef{OrderID: o.id})
			}
		}
		return d
	}
}

// lookupOrders is what a lookup by outOrderID sees at provider: with
// unfiltered (Faults.UnfilteredList) every order of the provider, and
// only those committed Faults.SearchLag ago or earlier. Each fault is
// counted when it took effect.
func (s *Sim) lookupOrders(provider, outOrderID string, unfiltered bool) []order {
	lag := s.faults.cfg.Load().SearchLag
	os, hidden := s.store.lookup(provider, outOrderID, unfiltered, lag)
	if hidden > 0 {
		s.counters.fault(FaultSearchLag)
		s.cfg.Logger.Debug("sim: lookup behind its index", "provider", provider, "outOrderId", outOrderID, "hidden", hidden)
	}
	if unfiltered {
		s.counters.fault(FaultUnfilteredList)
		s.cfg.Logger.Debug("sim: injected unfiltered list", "provider", provider, "outOrderId", outOrderID)
	}
	return os
}

// createOrders creates and counts the orders of one create call.
func (s *Sim) createOrders(provider, outOrderID, previewID string, items []providers.Item) []*order {
	made, dup := s.store.create(provider, outOrderID, previewID, items, s.cfg.Clock.Now())
	s.countCreate(provider, outOrderID, made, dup)
	return made
}

// countCreate counts the orders of one create call.
func (s *Sim) countCreate(provider, outOrderID string, made []*order, dup bool) {
	s.counters.created(provider, len(made))
	if dup {
		s.counters.duplicate()
		s.cfg.Logger.Warn("sim: duplicate create", "provider", provider, "outOrderId", outOrderID)
	}
}

type xBaseInfo struct {
	ID          string `json:"id"`
	OutOrderID  string `json:"outOrderId"`
	Status      string `json:"status"`
	TotalAmount int64  `json:"totalAmount"`
	ShippingFee int64  `json:"shippingFee"`
	CreateTime  string `json:"createTime"`
	PayTime     string `json:"payTime,omitempty"`
}

type xLogisticsItem struct {
	LogisticsCompanyName string `json:"logisticsCompanyName"`
	LogisticsBillNo      string `json:"logisticsBillNo"`
	Status               string `json:"status"`
}

type xLogisticsStep struct {
	AcceptTime string `json:"acceptTime"`
	Remark     string `json:"remark"`
}

type xLogisticsTrace struct {
	LogisticsBillNo string           `json:"logisticsBillNo"`
	Status          string           `json:"status"`
	LogisticsSteps  []xLogisticsStep `json:"logisticsSteps"`
}

// xProductItem is one product line of a details answer: 1688's
// productItems entry, with the fields the client reads (inferred shape,
// see providers/xportcn: skuID carries the cart line's specId).
type xProductItem struct {
	ProductID int64  `json:"productID"`
	SkuID     string `json:"skuID"`
	Quantity  int    `json:"quantity"`
}

type xDetailData struct {
	BaseInfo        xBaseInfo `json:"baseInfo"`
	NativeLogistics struct {
		LogisticsItems []xLogisticsItem `json:"logisticsItems"`
	} `json:"nativeLogistics"`
	LogisticsTrace []xLogisticsTrace `json:"logisticsTrace"`
	// ProductItems are the lines this order holds: a split create's part
	// its own, a partial create's without the refused line.
	ProductItems []xProductItem `json:"productItems"`
}

func (s *Sim) xDetail(body []byte) (int, string, any) {
	var req struct {
		OrderID flexID `json:"orderId"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.OrderID == "" {
		return xCodeBadParam, "orderId is required", nil
	}
	o, ok := s.store.get(providers.Xportcn, string(req.OrderID))
	if !ok {
		return xCodeNotFound, "order " + string(req.OrderID) + " not found", nil
	}
	now := s.cfg.Clock.Now()
	d := xDetailData{BaseInfo: xBaseInfo{
		ID: o.id, OutOrderID: o.outOrderID, Status: o.statusAt(s.tl, now), TotalAmount: o.totalAt(s.tl, now),
		ShippingFee: o.freight, CreateTime: formatTime(o.created), PayTime: formatTime(o.payTime(s.tl, now)),
	}}
	d.ProductItems = make([]xProductItem, 0, len(o.lines))
	for _, l := range o.lines {
		d.ProductItems = append(d.ProductItems, xProductItem{ProductID: l.ProductID, SkuID: l.SkuID, Quantity: l.Quantity})
	}
	d.NativeLogistics.LogisticsItems = []xLogisticsItem{}
	d.LogisticsTrace = []xLogisticsTrace{}
	if steps := o.parcelAt(s.tl, now); len(steps) > 0 {
		last := steps[len(steps)-1].status
		d.NativeLogistics.LogisticsItems = []xLogisticsItem{{LogisticsCompanyName: Carrier, LogisticsBillNo: o.billNo, Status: last}}
		tr := xLogisticsTrace{LogisticsBillNo: o.billNo, Status: last}
		for _, st := range steps {
			tr.LogisticsSteps = append(tr.LogisticsSteps, xLogisticsStep{AcceptTime: formatTime(st.at), Remark: st.memo})
		}
		d.LogisticsTrace = []xLogisticsTrace{tr}
	}
	return xCodeOK, "success", d
}

type xListItem struct {
	OrderID    string `json:"orderId"`
	OutOrderID string `json:"outOrderId"`
	Status     string `json:"status"`
}

// xList answers the list by outOrderId (with unfiltered, every order of
// the provider), as far as Faults.SearchLag lets it see.
func (s *Sim) xList(body []byte, unfiltered bool) (int, string, any) {
	var req struct {
		OutOrderID string `json:"outOrderId"`
		Page       int    `json:"page"`
		PageSize   int    `json:"pageSize"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.OutOrderID == "" {
		return xCodeBadParam, "outOrderId is required", nil
	}
	if req.Page < 1 {
		req.Page = 1
	}
	if req.PageSize < 1 {
		req.PageSize = 20
	}
	os := s.lookupOrders(providers.Xportcn, req.OutOrderID, unfiltered)
	if len(os) == 0 {
		return xCodeNotFound, "no order for outOrderId " + req.OutOrderID, nil
	}
	now := s.cfg.Clock.Now()
	list := []xListItem{}
	for i := (req.Page - 1) * req.PageSize; i < len(os) && i < req.Page*req.PageSize; i++ {
		list = append(list, xListItem{OrderID: os[i].id, OutOrderID: os[i].outOrderID, Status: os[i].statusAt(s.tl, now)})
	}
	return xCodeOK, "success", map[string]any{"total": len(os), "list": list}
}

func (s *Sim) xCancel(body []byte) (int, string, any) {
	var req struct {
		OrderID      flexID `json:"orderId"`
		CancelReason string `json:"cancelReason"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.OrderID == "" {
		return xCodeBadParam, "orderId is required", nil
	}
	_, found, err := s.store.cancel(providers.Xportcn, string(req.OrderID), req.CancelReason, s.tl, s.cfg.Clock.Now())
	switch {
	case !found:
		return xCodeNotFound, "order " + string(req.OrderID) + " not found", nil
	case err != nil:
		return xCodeBadParam, err.Error(), nil
	}
	return xCodeOK, "success", true
}

// Time layout of every simulated time stamp, in China time (UTC+8).
const timeLayout = "2006-01-02 15:04:05"

var chinaTime = time.FixedZone("CST", 8*3600)

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(chinaTime).Format(timeLayout)
}
