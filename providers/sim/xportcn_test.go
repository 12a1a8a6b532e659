package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"orderflow/providers"
)

func TestXportcnSignature(t *testing.T) {
	s := start(t, Config{})
	sec := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
	ms := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10) }
	resign := func(ts string) func(http.Header) {
		return func(h http.Header) {
			n := xHeaders(ts)
			for k := range n {
				h.Set(k, n.Get(k))
			}
		}
	}
	tests := []struct {
		name string
		edit func(http.Header)
		code int
	}{
		{"seconds accepted", nil, 200},
		{"milliseconds accepted", resign(ms(0)), 200},
		{"skew 590 s accepted", resign(sec(-590 * time.Second)), 200},
		{"seconds 700 s old refused", resign(sec(-700 * time.Second)), 403},
		{"milliseconds 700 s ahead refused", resign(ms(700 * time.Second)), 403},
		{"bad secret", func(h http.Header) {
			h.Set("signature", XportcnSign("sim-ak", h.Get("timestamp"), h.Get("nonce-str"), "wrong"))
		}, 401},
		{"lower-case signature", func(h http.Header) { h.Set("signature", strings.ToLower(h.Get("signature"))) }, 401},
		{"nonce not what was signed", func(h http.Header) { h.Set("nonce-str", "other") }, 401},
		{"unknown access key", func(h http.Header) { h.Set("access-key", "nobody") }, 401},
		{"missing signature", func(h http.Header) { h.Del("signature") }, 401},
		{"foreign user-id", func(h http.Header) { h.Set("user-id", "someone-else") }, 403},
		{"absent user-id accepted", func(h http.Header) { h.Del("user-id") }, 200},
	}
	var refused int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env, err := xPost(t, s, XportcnPathPreview, xCart("sig-1", [2]int64{1, 1}), tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || env.Code != tt.code {
				t.Fatalf("HTTP %d code %d (%s), want code %d", resp.StatusCode, env.Code, env.Msg, tt.code)
			}
			if tt.code != 200 {
				refused++
			}
			if got := s.Counters().SignatureFailures[providers.Xportcn]; got != refused {
				t.Errorf("SignatureFailures = %d, want %d", got, refused)
			}
		})
	}
}

func TestXportcnPreviewAndCreate(t *testing.T) {
	s := start(t, Config{})
	var pv struct {
		OrderPreviewResuslt []struct {
			Status               bool   `json:"status"`
			SumPayment           int64  `json:"sumPayment"`
			SumCarriage          int64  `json:"sumCarriage"`
			SumPaymentNoCarriage int64  `json:"sumPaymentNoCarriage"`
			ResultCode           string `json:"resultCode"`
			CargoList            []struct {
				Amount         int64 `json:"amount"`
				FinalUnitPrice int64 `json:"finalUnitPrice"`
			} `json:"cargoList"`
			TradeModelList []struct {
				TradeType string `json:"tradeType"`
				OpSupport bool   `json:"opSupport"`
			} `json:"tradeModelList"`
		} `json:"orderPreviewResuslt"`
	}
	xOK(t, s, XportcnPathPreview, xCart("pc-1", [2]int64{7, 3}, [2]int64{10012, 1}), &pv)
	r := pv.OrderPreviewResuslt[0]
	q := PlannedQuote(providers.Xportcn, []providers.Item{{ProductID: 7, Quantity: 3}, {ProductID: 10012, Quantity: 1}})
	if !r.Status || r.SumPayment != q.Total || r.SumCarriage != Freight || r.SumPaymentNoCarriage != 3*107+112 {
		t.Errorf("preview %+v, want total %d", r, q.Total)
	}
	if r.CargoList[0].FinalUnitPrice != 107 || r.CargoList[0].Amount != 321 {
		t.Errorf("line 0 %+v", r.CargoList[0])
	}
	if len(r.TradeModelList) == 0 || !r.TradeModelList[0].OpSupport || r.TradeModelList[0].TradeType != XportcnTradeType {
		t.Errorf("trade models %+v", r.TradeModelList)
	}

	c := xCreate(t, s, "pc-1", [2]int64{7, 3}, [2]int64{10012, 1})
	if c.OrderID == "" || c.TotalSuccessAmount != q.Total || c.PostFee != Freight || len(c.OrderList) != 0 {
		t.Errorf("create %+v", c)
	}
	var d xDetail
	xOK(t, s, XportcnPathDetail, map[string]any{"orderId": c.OrderID}, &d)
	if d.BaseInfo.ID != c.OrderID || d.BaseInfo.Status != "waitbuyerpay" || d.BaseInfo.TotalAmount != q.Total || d.BaseInfo.OutOrderID != "pc-1" {
		t.Errorf("detail %+v", d.BaseInfo)
	}

	bad := xCart("pc-2", [2]int64{7, 1})
	bad["tradeType"] = "period"
	_, env, _ := xPost(t, s, XportcnPathCreate, bad, nil)
	if env.Code != 400 {
		t.Errorf("unsupported trade type: code %d, want 400", env.Code)
	}
	_, env, _ = xPost(t, s, XportcnPathDetail, map[string]any{"orderId": "1"}, nil)
	if env.Code != 404 {
		t.Errorf("detail of a missing order: code %d, want 404", env.Code)
	}
	_, env, _ = xPost(t, s, XportcnPathList, map[string]any{"outOrderId": "nope", "page": 1, "pageSize": 20}, nil)
	if env.Code != 404 {
		t.Errorf("list with no match: code %d, want 404", env.Code)
	}
}

func TestXportcnPlannedErrors(t *testing.T) {
	s := start(t, Config{})
	for n := 1; n <= 9; n++ {
		t.Run(PlannedErrorCode(n), func(t *testing.T) {
			var pv struct {
				OrderPreviewResuslt []struct {
					Status     bool   `json:"status"`
					ResultCode string `json:"resultCode"`
					CargoList  []struct {
						ResultCode string `json:"resultCode"`
						Message    string `json:"message"`
					} `json:"cargoList"`
				} `json:"orderPreviewResuslt"`
			}
			xOK(t, s, XportcnPathPreview, xCart("pe", [2]int64{5, 1}, [2]int64{PlannedErrorBase + int64(n), 1}), &pv)
			r := pv.OrderPreviewResuslt[0]
			want := "500_00" + strconv.Itoa(n)
			if r.Status || r.ResultCode != want || r.CargoList[1].ResultCode != want || r.CargoList[0].ResultCode != "" || r.CargoList[1].Message == "" {
				t.Errorf("preview %+v, want status false and %s on line 1", r, want)
			}
		})
	}
	if got := s.Counters().OrdersCreated[providers.Xportcn]; got != 0 {
		t.Errorf("OrdersCreated %d after previews only", got)
	}
}

func TestXportcnCancel(t *testing.T) {
	clk := NewManualClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	s := start(t, Config{Clock: clk})
	c := xCreate(t, s, "cx-1", [2]int64{1, 1})
	cancel := func(id string) xEnv {
		_, env, err := xPost(t, s, XportcnPathCancel, map[string]any{"orderId": id, "cancelReason": "buyerCancel"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	if env := cancel(c.OrderID); env.Code != 400 || !strings.Contains(env.Msg, "CLOSE_ORDER_TOO_FAST") {
		t.Fatalf("cancel at once: code %d msg %q, want 400 CLOSE_ORDER_TOO_FAST", env.Code, env.Msg)
	}
	clk.Advance(11 * time.Second)
	if env := cancel(c.OrderID); env.Code != 200 || string(env.Data) != "true" {
		t.Fatalf("cancel: code %d msg %q data %s", env.Code, env.Msg, env.Data)
	}
	if env := cancel(c.OrderID); env.Code != 200 {
		t.Errorf("cancel again: code %d, want 200 (idempotent)", env.Code)
	}
	if v := s.Order(providers.Xportcn, "cx-1"); len(v) != 1 || v[0].Status != "cancel" {
		t.Errorf("views %+v", v)
	}
	clk.Advance(time.Hour) // a cancelled order stays cancelled
	if v := s.Order(providers.Xportcn, "cx-1"); v[0].Status != "cancel" {
		t.Errorf("after an hour: %q", v[0].Status)
	}
	paid := xCreate(t, s, "cx-2", [2]int64{1, 1})
	clk.Advance(3 * time.Minute)
	if env := cancel(paid.OrderID); env.Code != 400 || !strings.Contains(env.Msg, "ORDER_STATUS_NOT_SUPPORT") {
		t.Errorf("cancel of a paid order: code %d msg %q", env.Code, env.Msg)
	}
	if env := cancel("42"); env.Code != 404 {
		t.Errorf("cancel of a missing order: code %d", env.Code)
	}
}

func TestXportcnDuplicatesAndSplit(t *testing.T) {
	s := start(t, Config{})
	split := xCreate(t, s, "dup-split", [2]int64{ProductSplit, 4})
	if len(split.OrderList) != 2 || split.OrderList[0].OrderID != split.OrderID {
		t.Fatalf("split create %+v", split)
	}
	if c := s.Counters(); c.Duplicates != 0 || c.OrdersCreated[providers.Xportcn] != 2 {
		t.Fatalf("after a split: %+v", c)
	}
	var list struct {
		Total int `json:"total"`
		List  []struct {
			OrderID string `json:"orderId"`
		} `json:"list"`
	}
	xOK(t, s, XportcnPathList, map[string]any{"outOrderId": "dup-split", "page": 1, "pageSize": 20}, &list)
	if list.Total != 2 || len(list.List) != 2 || list.List[1].OrderID != split.OrderList[1].OrderID {
		t.Errorf("list %+v", list)
	}
	xCreate(t, s, "dup-1", [2]int64{1, 1})
	if c := s.Counters(); c.Duplicates != 0 {
		t.Fatalf("Duplicates %d after one create", c.Duplicates)
	}
	xCreate(t, s, "dup-1", [2]int64{1, 1})
	xCreate(t, s, "dup-1", [2]int64{1, 1})
	if c := s.Counters(); c.Duplicates != 1 || c.OrdersCreated[providers.Xportcn] != 5 {
		t.Errorf("Duplicates %d (want 1), OrdersCreated %d (want 5)", c.Duplicates, c.OrdersCreated[providers.Xportcn])
	}
	xCreate(t, s, "dup-split", [2]int64{1, 1})
	if c := s.Counters(); c.Duplicates != 2 {
		t.Errorf("re-create after a split: Duplicates %d, want 2", c.Duplicates)
	}
}

func TestXportcnLifecycleOnAcceleratedClock(t *testing.T) {
	s := start(t, Config{Clock: NewAccelClock(200000)}) // the whole life in about 0.1 s
	ids := map[string]string{
		"success":    xCreate(t, s, "lx-ok", [2]int64{1, 1}).OrderID,
		"cancel":     xCreate(t, s, "lx-cancel", [2]int64{ProductCancelled, 1}).OrderID,
		"terminated": xCreate(t, s, "lx-term", [2]int64{ProductTerminated, 1}).OrderID,
	}
	for want, id := range ids {
		var d xDetail
		waitFor(t, 5*time.Second, "order "+id+" "+want, func() bool {
			xOK(t, s, XportcnPathDetail, map[string]any{"orderId": id}, &d)
			return d.BaseInfo.Status == want
		})
		if want == "success" {
			if len(d.LogisticsTrace) != 1 || d.LogisticsTrace[0].Status != "SIGN" || len(d.LogisticsTrace[0].LogisticsSteps) != 4 ||
				d.NativeLogistics.LogisticsItems[0].Status != "SIGN" {
				t.Errorf("parcel of a successful order: %+v", d)
			}
		} else if len(d.LogisticsTrace) != 0 {
			t.Errorf("%s order has a parcel: %+v", want, d.LogisticsTrace)
		}
	}
}

func TestXportcnUnknownStatus(t *testing.T) {
	clk := NewManualClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	s := start(t, Config{Clock: clk})
	id := xCreate(t, s, "unk", [2]int64{ProductUnknownStatus, 1}).OrderID
	clk.Advance(3 * time.Minute)
	var d xDetail
	xOK(t, s, XportcnPathDetail, map[string]any{"orderId": id}, &d)
	if d.BaseInfo.Status != UnknownStatusWord {
		t.Errorf("status %q, want %q", d.BaseInfo.Status, UnknownStatusWord)
	}
	if _, ok := providers.MapStatus(d.BaseInfo.Status); ok {
		t.Errorf("%q should be a word MapStatus does not know", d.BaseInfo.Status)
	}
	clk.Advance(30 * time.Minute)
	xOK(t, s, XportcnPathDetail, map[string]any{"orderId": id}, &d)
	if d.BaseInfo.Status != "waitbuyerreceive" {
		t.Errorf("then %q, want waitbuyerreceive", d.BaseInfo.Status)
	}
}

func TestCountersJSON(t *testing.T) {
	s := start(t, Config{})
	xCreate(t, s, "cj", [2]int64{1, 1})
	resp, err := http.Get("http://" + s.Addr() + CountersPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c Counters
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Requests[providers.Xportcn]["create"] != 1 || c.OrdersCreated[providers.Xportcn] != 1 {
		t.Errorf("counters %+v", c)
	}
}
