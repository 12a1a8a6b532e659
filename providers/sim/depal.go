package sim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"orderflow/providers"
)

// Depal methods (the last path element of /openapi/1/{appKey}/<method>).
const (
	DepalMethodPreview = "1688.order.create.preview"
	DepalMethodSubmit  = "1688.order.create.order"
	DepalMethodDetail  = "1688.order.detail"
	DepalMethodCancel  = "1688.order.cancel"
	DepalMethodTrace   = "logistics.tracking"
	// DepalMethodToken is served at GET /openapi/auth/{appKey}/system.token.get.
	DepalMethodToken = "system.token.get"
)

// Depal envelope codes the simulator answers.
const (
	dCodeOK           = "200"
	dCodeTokenExpired = "510"
	dCodeThrottled    = "600"
	dCodeBadSignature = "610"
	dCodeBadHeader    = "620"
	dCodeBadParam     = "630"
	dCodeEmpty        = "640"
	dCodePreviewFail  = "1000"
	dCodeCreateFail   = "1010"
)

// DepalSign is the Depal signature: UPPER(hex(HMAC-SHA1(key=appSecret,
// msg=urlPath + timestamp + accessToken + body))), urlPath starting at
// "/openapi/".
func DepalSign(appSecret, urlPath, timestamp, accessToken string, body []byte) string {
	m := hmac.New(sha1.New, []byte(appSecret))
	m.Write([]byte(urlPath))
	m.Write([]byte(timestamp))
	m.Write([]byte(accessToken))
	m.Write(body)
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// tokens is Depal's token: the same one until it expires (wall time).
type tokens struct {
	ttl     time.Duration
	mu      sync.Mutex
	current string
	expires time.Time
}

func newTokens(ttl time.Duration) *tokens { return &tokens{ttl: ttl} }

// get returns the current token, issuing a new one when there is none or
// it has expired.
func (t *tokens) get() (string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.current == "" || !now.Before(t.expires) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		t.current = "tok-" + hex.EncodeToString(b[:])
		t.expires = now.Add(t.ttl)
	}
	return t.current, t.expires
}

// valid reports whether tok is the current, unexpired token.
func (t *tokens) valid(tok string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current != "" && tok == t.current && time.Now().Before(t.expires)
}

func (t *tokens) expireAll() {
	t.mu.Lock()
	t.current = ""
	t.mu.Unlock()
}

type dEnvelope struct {
	Code      string `json:"code"`
	Msg       string `json:"msg"`
	Data      any    `json:"data"`
	RequestID string `json:"requestId"`
}

func (s *Sim) dWrite(w http.ResponseWriter, code, msg string, data any) {
	writeJSON(w, http.StatusOK, dEnvelope{Code: code, Msg: msg, Data: data, RequestID: s.requestID("d")})
}

func (s *Sim) dThrottled(w http.ResponseWriter) {
	s.dWrite(w, dCodeThrottled, "rate limited", nil)
}

// serveDepal routes a Depal call.
func (s *Sim) serveDepal(w http.ResponseWriter, r *http.Request) {
	// The signed path starts at /openapi/, whatever prefix is in front.
	i := strings.Index(r.URL.EscapedPath(), "/openapi/")
	if i < 0 {
		s.counters.request(providers.Depal, "unknown")
		http.Error(w, "sim: no such Depal API path", http.StatusNotFound)
		return
	}
	signedPath := r.URL.EscapedPath()[i:]
	parts := strings.Split(strings.TrimPrefix(signedPath, "/openapi/"), "/")
	if len(parts) == 3 && parts[0] == "auth" && parts[2] == DepalMethodToken {
		s.dToken(w, r, parts[1])
		return
	}
	if len(parts) != 3 || parts[0] != "1" {
		s.counters.request(providers.Depal, "unknown")
		http.Error(w, "sim: no such Depal API path", http.StatusNotFound)
		return
	}
	appKey, method := parts[1], parts[2]
	var op string
	switch method {
	case DepalMethodPreview:
		op = "preview"
	case DepalMethodSubmit:
		op = "submit"
	case DepalMethodDetail:
		op = "detail"
	case DepalMethodCancel:
		op = "cancel"
	case DepalMethodTrace:
		op = "trace"
	default:
		s.counters.request(providers.Depal, "unknown")
		s.dWrite(w, dCodeBadParam, "unknown method "+method, nil)
		return
	}
	if r.Method != http.MethodPost {
		s.counters.request(providers.Depal, op)
		http.Error(w, "sim: Depal order calls are POST", http.StatusMethodNotAllowed)
		return
	}
	arrived := time.Now()
	kind := kindOther
	switch op {
	case "submit":
		kind = kindCreate
	case "detail":
		kind = kindLookup // its lookup faults apply only when by outOrderId
	}
	p, ok := s.admit(w, providers.Depal, op, kind, s.dThrottled)
	if !ok {
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.dWrite(w, dCodeBadParam, "cannot read body", nil)
		return
	}
	if code, msg := s.dAuth(r, signedPath, appKey, body); code != "" {
		if code == dCodeTokenExpired {
			s.counters.tokenExpired()
		} else {
			s.counters.signatureFailure(providers.Depal)
		}
		s.dWrite(w, code, msg, nil)
		return
	}
	var (
		code, msg = dCodeOK, "success"
		data      any
		made      bool
		lookup    bool // a details call by outOrderId
	)
	switch op {
	case "preview":
		code, msg, data = s.dPreview(body)
	case "submit":
		var commit func() any
		code, msg, data, commit = s.dSubmit(body, p.partial)
		if commit != nil && p.late > 0 {
			s.lateCommit(w, r, providers.Depal, op, arrived, p.late, func() { commit() })
			return
		}
		if commit != nil {
			data = commit()
			made = data != nil
			if !made { // the previewId was used meanwhile: answer as a re-submit
				code, msg, data, _ = s.dSubmit(body, false)
			}
		}
	case "detail":
		code, msg, data, lookup = s.dDetail(body, p.unfiltered)
	case "cancel":
		code, msg, data = s.dCancel(body)
	case "trace":
		code, msg, data = s.dTrace(body)
	}
	if !s.finish(w, r, providers.Depal, op, p, made) {
		return
	}
	switch {
	case made && p.gateway != 0:
		s.gatewayAnswer(w, providers.Depal, op, p.gateway)
		return
	case p.empty && (made || lookup && (code == dCodeOK || code == dCodeEmpty)):
		s.counters.fault(FaultEmptySuccess)
		s.cfg.Logger.Debug("sim: injected empty success", "provider", providers.Depal, "op", op)
		code, msg, data = dCodeOK, "success", map[string]any{}
	case made && p.hostile:
		s.counters.fault(FaultHostileID)
		code, msg, data = dCodeOK, "success", map[string]any{"orderId": HostileOrderID}
	}
	s.dWrite(w, code, msg, data)
}

// dAuth checks a Depal order call: headers (620), token (510), signature
// (610).
func (s *Sim) dAuth(r *http.Request, signedPath, appKey string, body []byte) (string, string) {
	h := r.Header
	ts, tok, sig := h.Get("x-depal-timestamp"), h.Get("x-depal-access-token"), h.Get("x-depal-signature")
	for _, f := range []struct{ name, v string }{{"x-depal-timestamp", ts}, {"x-depal-access-token", tok}, {"x-depal-signature", sig}} {
		if f.v == "" {
			return dCodeBadHeader, "missing header " + f.name
		}
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return dCodeBadHeader, "x-depal-timestamp must be epoch milliseconds"
	}
	if appKey != s.cfg.Depal.AppKey {
		return dCodeBadSignature, "unknown appKey"
	}
	if !s.tokens.valid(tok) {
		return dCodeTokenExpired, "access token expired or unknown"
	}
	want := DepalSign(s.cfg.Depal.AppSecret, signedPath, ts, tok, body)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return dCodeBadSignature, "signature mismatch"
	}
	return "", ""
}

// dToken serves GET /openapi/auth/{appKey}/system.token.get?appSecret=...
// An unknown appKey or a wrong appSecret answers 610.
func (s *Sim) dToken(w http.ResponseWriter, r *http.Request, appKey string) {
	p, ok := s.admit(w, providers.Depal, "token", kindOther, s.dThrottled)
	if !ok {
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "sim: system.token.get is GET", http.StatusMethodNotAllowed)
		return
	}
	secret := r.URL.Query().Get("appSecret")
	if appKey != s.cfg.Depal.AppKey || subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.Depal.AppSecret)) != 1 {
		s.counters.signatureFailure(providers.Depal)
		s.dWrite(w, dCodeBadSignature, "unknown appKey or wrong appSecret", nil)
		return
	}
	tok, exp := s.tokens.get()
	if !s.finish(w, r, providers.Depal, "token", p, false) {
		return
	}
	s.dWrite(w, dCodeOK, "success", map[string]any{"accessToken": tok, "expiresAt": exp.UnixMilli()})
}

type dAddress struct {
	UserName string `json:"userName"`
	Phone    string `json:"phone"`
	Country  string `json:"country"`
	Province string `json:"province"`
	City     string `json:"city"`
	Address  string `json:"address"`
	PostCode string `json:"postCode"`
}

type dCargo struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Quantity  int    `json:"quantity"`
}

type dOrderReq struct {
	OutOrderID string   `json:"outOrderId"`
	Address    dAddress `json:"address"`
	CargoList  []dCargo `json:"cargoList"`
	PreviewID  string   `json:"previewId"`
}

func (q *dOrderReq) items() ([]providers.Item, string) {
	if q.OutOrderID == "" {
		return nil, "outOrderId is required"
	}
	if len(q.CargoList) == 0 {
		return nil, "cargoList is empty"
	}
	items := make([]providers.Item, len(q.CargoList))
	for i, c := range q.CargoList {
		if c.ProductID <= 0 || c.Quantity < 1 {
			return nil, "cargoList[" + strconv.Itoa(i) + "]: productId and quantity must be positive"
		}
		items[i] = providers.Item{ProductID: c.ProductID, SkuID: c.SkuID, Quantity: c.Quantity}
	}
	return items, ""
}

type dCargoResult struct {
	ProductID         int64    `json:"productId"`
	SkuID             string   `json:"skuId"`
	Quantity          int      `json:"quantity"`
	Price             string   `json:"price"`
	Amount            string   `json:"amount"`
	ProductName       string   `json:"productName"`
	SkuAttributeNames []string `json:"skuAttributeNames"`
}

// dPreview answers a preview. Planned error N answers, for odd N, envelope
// code "R500_00N"; for even N, code "1000" with msg "R500_00N: <text>".
func (s *Sim) dPreview(body []byte) (string, string, any) {
	var req dOrderReq
	if err := json.Unmarshal(body, &req); err != nil {
		return dCodeBadParam, "malformed body: " + err.Error(), nil
	}
	items, bad := req.items()
	if bad != "" {
		return dCodeBadParam, bad, nil
	}
	if n, pid, ok := firstPlannedError(items); ok {
		if n%2 == 1 {
			return PlannedErrorCode(n), plannedErrorText(n, pid), nil
		}
		return dCodePreviewFail, PlannedErrorCode(n) + ": " + plannedErrorText(n, pid), nil
	}
	q := PlannedQuote(providers.Depal, items)
	lines := make([]dCargoResult, len(items))
	for i, it := range items {
		up := UnitPrice(it.ProductID)
		lines[i] = dCargoResult{
			ProductID: it.ProductID, SkuID: it.SkuID, Quantity: it.Quantity,
			Price: providers.FormatYuan(up), Amount: providers.FormatYuan(up * int64(it.Quantity)),
			ProductName: "sim product " + strconv.FormatInt(it.ProductID, 10), SkuAttributeNames: []string{},
		}
	}
	return dCodeOK, "success", map[string]any{
		"previewId":          s.store.newPreview(req.OutOrderID, items),
		"productTotalAmount": providers.FormatYuan(q.Goods),
		"freightTotalAmount": providers.FormatYuan(q.Freight),
		"serviceTotalAmount": providers.FormatYuan(q.Service),
		"cargoList":          lines,
	}
}

// dSubmit checks a submit: the previewId must be known and of the same
// outOrderId; a previewId that already made an order answers 1010 with it.
// A refusal returns its code, message and data and a nil commit; otherwise
// commit makes the order (with partial, of all the preview's lines but the
// last, which is refused) and returns the answer's data, or nil when the
// previewId made an order meanwhile. The caller decides when to commit
// (Faults.LateCommit).
func (s *Sim) dSubmit(body []byte, partial bool) (string, string, any, func() any) {
	var req dOrderReq
	if err := json.Unmarshal(body, &req); err != nil {
		return dCodeBadParam, "malformed body: " + err.Error(), nil, nil
	}
	items, bad := req.items()
	if bad != "" {
		return dCodeBadParam, bad, nil, nil
	}
	if req.PreviewID == "" {
		return dCodeBadParam, "previewId is required", nil, nil
	}
	if n, pid, ok := firstPlannedError(items); ok {
		return dCodeCreateFail, PlannedErrorCode(n) + ": " + plannedErrorText(n, pid), nil, nil
	}
	switch res := s.store.checkSubmit(req.PreviewID, req.OutOrderID); {
	case res.bad != "":
		return dCodeBadParam, res.bad, nil, nil
	case res.existing != "":
		return dCodeCreateFail, "an order was already created for previewId " + req.PreviewID, map[string]any{"orderId": res.existing}, nil
	}
	return dCodeOK, "success", nil, func() any {
		res := s.store.submit(req.PreviewID, req.OutOrderID, s.cfg.Clock.Now(), partial)
		if len(res.made) == 0 {
			return nil
		}
		s.countCreate(providers.Depal, req.OutOrderID, res.made, res.dup)
		d := map[string]any{"orderId": res.made[0].id}
		if res.rejected != nil {
			s.counters.fault(FaultPartialCreate)
			s.cfg.Logger.Debug("sim: injected partial create", "provider", providers.Depal, "outOrderId", req.OutOrderID)
			// Depal documents no failed lines: 1688's failedOfferList,
			// agreed with the client.
			d["failedOfferList"] = []xFailedOffer{{OfferID: res.rejected.ProductID, SpecID: res.rejected.SkuID,
				ErrorCode: "R" + PartialCreateCode, ErrorMessage: partialCreateText(res.rejected.ProductID)}}
		}
		return d
	}
}

type dLogistics struct {
	ChannelCode string `json:"channelCode"`
	LogisticNo  string `json:"logisticNo"`
}

type dDetailData struct {
	OrderID            string      `json:"orderId"`
	OutOrderID         string      `json:"outOrderId"`
	Status             string      `json:"status"`
	CancelType         string      `json:"cancelType,omitempty"`
	CancelMemo         string      `json:"cancelMemo,omitempty"`
	ProductTotalAmount string      `json:"productTotalAmount"`
	FreightTotalAmount string      `json:"freightTotalAmount"`
	ServiceTotalAmount string      `json:"serviceTotalAmount"`
	Logistics          *dLogistics `json:"logistics,omitempty"`
	CreateTime         string      `json:"createTime"`
	PayTime            string      `json:"payTime,omitempty"`
	// OrderItemList are the lines this order holds (a partial create's
	// without the refused line).
	OrderItemList []dOrderItem `json:"orderItemList"`
}

// dOrderItem is one product line of a details answer (Depal documents
// orderItemList; the fields are the inferred shape the client reads).
type dOrderItem struct {
	ProductID int64  `json:"productId"`
	SkuID     string `json:"skuId"`
	Quantity  int    `json:"quantity"`
}

// dDetail answers details by orderId or, failing that, by outOrderId (the
// oldest order of it, as far as Faults.SearchLag lets the lookup see; with
// unfiltered, the provider's oldest order, whoever's). No such order: 640.
// lookup reports a details call by outOrderId.
func (s *Sim) dDetail(body []byte, unfiltered bool) (code, msg string, data any, lookup bool) {
	var req struct {
		OrderID    flexID `json:"orderId"`
		OutOrderID string `json:"outOrderId"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return dCodeBadParam, "malformed body: " + err.Error(), nil, false
	}
	var (
		o  order
		ok bool
	)
	switch {
	case req.OrderID != "":
		o, ok = s.store.get(providers.Depal, string(req.OrderID))
	case req.OutOrderID != "":
		lookup = true
		if os := s.lookupOrders(providers.Depal, req.OutOrderID, unfiltered); len(os) > 0 {
			o, ok = os[0], true
		}
	default:
		return dCodeBadParam, "orderId or outOrderId is required", nil, false
	}
	if !ok {
		return dCodeEmpty, "no such order", nil, lookup
	}
	now := s.cfg.Clock.Now()
	d := dDetailData{
		OrderID: o.id, OutOrderID: o.outOrderID, Status: o.statusAt(s.tl, now),
		ProductTotalAmount: providers.FormatYuan(o.goodsAt(s.tl, now)), FreightTotalAmount: providers.FormatYuan(o.freight),
		ServiceTotalAmount: providers.FormatYuan(o.service),
		CreateTime:         formatTime(o.created), PayTime: formatTime(o.payTime(s.tl, now)),
		OrderItemList: make([]dOrderItem, 0, len(o.lines)),
	}
	for _, l := range o.lines {
		d.OrderItemList = append(d.OrderItemList, dOrderItem{ProductID: l.ProductID, SkuID: l.SkuID, Quantity: l.Quantity})
	}
	if d.Status == statusCancel {
		if o.cancelledAt.IsZero() {
			d.CancelType, d.CancelMemo = "system", "closed: not paid in time"
		} else {
			d.CancelType, d.CancelMemo = "buyer", o.cancelReason
		}
	}
	if len(o.parcelAt(s.tl, now)) > 0 {
		d.Logistics = &dLogistics{ChannelCode: Carrier, LogisticNo: o.billNo}
	}
	return dCodeOK, "success", d, lookup
}

func (s *Sim) dCancel(body []byte) (string, string, any) {
	var req struct {
		OrderID      flexID `json:"orderId"`
		CancelReason string `json:"cancelReason"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.OrderID == "" {
		return dCodeBadParam, "orderId is required", nil
	}
	_, found, err := s.store.cancel(providers.Depal, string(req.OrderID), req.CancelReason, s.tl, s.cfg.Clock.Now())
	switch {
	case !found:
		return dCodeEmpty, "no such order", nil
	case err != nil:
		return dCodeBadParam, err.Error(), nil
	}
	return dCodeOK, "success", true
}

type dTraceEvent struct {
	Date  string `json:"date"`
	Event string `json:"event"`
	Memo  string `json:"memo"`
}

// dTrace answers logistics.tracking by bill number; before shipment (or for
// an unknown bill) 640.
func (s *Sim) dTrace(body []byte) (string, string, any) {
	var req dLogistics
	if err := json.Unmarshal(body, &req); err != nil || req.LogisticNo == "" {
		return dCodeBadParam, "logisticNo is required", nil
	}
	o, found := s.store.byBill(providers.Depal, req.LogisticNo)
	if !found {
		return dCodeEmpty, "no trace for " + req.LogisticNo, nil
	}
	steps := o.parcelAt(s.tl, s.cfg.Clock.Now())
	if len(steps) == 0 {
		return dCodeEmpty, "no trace yet for " + req.LogisticNo, nil
	}
	ev := make([]dTraceEvent, len(steps))
	for i, st := range steps {
		ev[i] = dTraceEvent{Date: formatTime(st.at), Event: st.status, Memo: st.memo}
	}
	return dCodeOK, "success", ev
}
