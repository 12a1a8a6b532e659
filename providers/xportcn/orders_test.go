package xportcn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/providers"
)

// The request body preview and create must send for sampleOrder.
const samplePreviewBody = `{"aliId":"ali-1","flow":"general","outOrderId":"UP-2026-000123",
 "addressParam":{"fullName":"Li Lei","mobile":"13800138000","phone":"+86 138 0013 8000","postCode":"310000",
   "cityText":"Hangzhou","provinceText":"Zhejiang","areaText":"Xihu","townText":"Lingyin",
   "address":"1 Example Road","districtCode":"330106"},
 "cargoParamList":[
   {"sellerOpenId":"seller-x","offerId":623456789012,"specId":"b5f2c0e1d8a9","quantity":2},
   {"sellerOpenId":"seller-x","offerId":623456789013,"specId":"c0ffee","quantity":1}]`

// A preview answer in the seed's shape (with its typo) for sampleOrder.
const samplePreviewAnswer = `{"requestId":"r1","code":200,"developId":0,"msg":"","data":{
 "postFeeByDescOfferList":[],"consignOfferList":[],"unsupportedCrossBorderPayOfferList":[],
 "orderPreviewResuslt":[{"discountFee":0,"tradeModeNameList":["担保交易"],"status":true,"sumPayment":2996,
   "message":"","sumCarriage":600,"resultCode":"","sumPaymentNoCarriage":2296,"additionalFee":100,"flowFlag":"general",
   "cargoList":[
     {"amount":1896,"message":"","finalUnitPrice":948,"specId":"b5f2c0e1d8a9","skuId":5012345678901,"resultCode":"","offerId":623456789012,"cargoPromotionList":[]},
     {"amount":400.0,"message":"","finalUnitPrice":400.0,"specId":"c0ffee","skuId":0,"resultCode":"","offerId":623456789013}],
   "shopPromotionList":[],
   "tradeModelList":[
     {"tradeWay":"fx","name":"分销","tradeType":"fxassure","description":"","opSupport":false},
     {"tradeWay":"assure","name":"担保交易","tradeType":"assureTrade","description":"","opSupport":true},
     {"tradeWay":"period","name":"账期","tradeType":"period","description":"","opSupport":true}],
   "payChannelList":[{"channel":"alipay","avaliable":true}]}]}}`

func TestPreview(t *testing.T) {
	c, f := setup(t)
	f.on(DefaultPreviewPath, answer(samplePreviewAnswer))
	q, err := c.Preview(context.Background(), sampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	want := &providers.Quote{
		Goods: 2296, Freight: 600, Service: 100, Total: 2996, TradeType: "assureTrade",
		Lines: []providers.QuoteLine{
			{ProductID: 623456789012, SkuID: "b5f2c0e1d8a9", Quantity: 2, UnitPrice: 948, Amount: 1896},
			{ProductID: 623456789013, SkuID: "c0ffee", Quantity: 1, UnitPrice: 400, Amount: 400},
		},
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("Quote =\n%+v\nwant\n%+v", q, want)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Path != testPrefix+DefaultPreviewPath || !reqs[0].SigOK {
		t.Fatalf("requests = %+v", reqs)
	}
	assertJSON(t, reqs[0].Body, samplePreviewBody+`}`)
}

func TestPreviewOmitsEmptyOptions(t *testing.T) {
	c, f := setup(t)
	f.on(DefaultPreviewPath, answer(samplePreviewAnswer))
	req := sampleOrder()
	req.Options = providers.Options{}
	req.Items = req.Items[:1]
	if _, err := c.Preview(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	body := string(f.requests()[0].Body)
	for _, key := range []string{`"aliId"`, `"flow"`, `"sellerOpenId"`} {
		if strings.Contains(body, key) {
			t.Errorf("empty option %s sent: %s", key, body)
		}
	}
}

// result builds one orderPreviewResuslt entry for quoteOf tests.
func result(status bool, payment, carriage, goods, fee int64, code string, lines []cargoLine, models ...tradeModel) previewResult {
	return previewResult{Status: status, SumPayment: fen(payment), SumCarriage: fen(carriage),
		SumPaymentNoCarriage: fen(goods), AdditionalFee: fen(fee), ResultCode: flexString(code),
		Message: "result message", CargoList: lines, TradeModelList: models}
}

func TestQuoteOf(t *testing.T) {
	assure := tradeModel{TradeType: "assureTrade", OpSupport: true}
	period := tradeModel{TradeType: "period", OpSupport: true}
	fxOff := tradeModel{TradeType: "fxassure", OpSupport: false}
	okLine := cargoLine{OfferID: "623456789012", SpecID: "b5f2c0e1d8a9", Amount: 100, FinalUnitPrice: 50}
	badLine := cargoLine{OfferID: "623456789013", SpecID: "c0ffee", ResultCode: "500_004", Message: "库存不足"}
	tests := []struct {
		name      string
		results   []previewResult
		want      *providers.Quote // compared without Lines
		wantCode  string
		wantInMsg string
	}{
		{
			name:    "two sellers summed, common trade type",
			results: []previewResult{result(true, 1000, 200, 750, 50, "", nil, assure, period), result(true, 500, 100, 400, 0, "", nil, period)},
			want:    &providers.Quote{Goods: 1150, Freight: 300, Service: 50, Total: 1500, TradeType: "period"},
		},
		{
			name:    "sumPayment 0 takes the sum of parts",
			results: []previewResult{result(true, 0, 200, 750, 50, "", nil, assure), result(true, 500, 100, 400, 0, "", nil, assure)},
			want:    &providers.Quote{Goods: 1150, Freight: 300, Service: 50, Total: 1500, TradeType: "assureTrade"},
		},
		{
			name:    "sumPayment after a discount is kept",
			results: []previewResult{result(true, 900, 200, 750, 50, "", nil, fxOff, assure)},
			want:    &providers.Quote{Goods: 750, Freight: 200, Service: 50, Total: 900, TradeType: "assureTrade"},
		},
		{
			name:      "cargo line with a resultCode",
			results:   []previewResult{result(true, 1000, 200, 800, 0, "", []cargoLine{okLine, badLine}, assure)},
			wantCode:  "500_004",
			wantInMsg: "库存不足",
		},
		{
			name:      "status false carries its resultCode",
			results:   []previewResult{result(true, 1, 0, 1, 0, "", nil, assure), result(false, 0, 0, 0, 0, "500_007", nil, assure)},
			wantCode:  "500_007",
			wantInMsg: "result message",
		},
		{
			name:     "status false without a code",
			results:  []previewResult{result(false, 0, 0, 0, 0, "", nil, assure)},
			wantCode: CodePreviewFailed,
		},
		{
			name:     "no trade type with opSupport",
			results:  []previewResult{result(true, 1000, 200, 800, 0, "", nil, fxOff)},
			wantCode: CodeNoTradeType,
		},
		{
			name:     "no trade type common to both sellers",
			results:  []previewResult{result(true, 1, 0, 1, 0, "", nil, assure), result(true, 1, 0, 1, 0, "", nil, period)},
			wantCode: CodeNoTradeType,
		},
		{
			name:     "no result",
			wantCode: CodeEmptyPreview,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := quoteOf(sampleOrder(), &previewData{OrderPreviewResuslt: tt.results})
			if tt.wantCode != "" {
				var pe *providers.PermanentError
				if !errors.As(err, &pe) || pe.Code != tt.wantCode || !strings.Contains(pe.Message, tt.wantInMsg) {
					t.Fatalf("quoteOf error = %v, want permanent %s containing %q", err, tt.wantCode, tt.wantInMsg)
				}
				if providers.ClassOf(err) != providers.ClassPermanent {
					t.Errorf("ClassOf = %v", providers.ClassOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q.Lines = nil
			if !reflect.DeepEqual(q, tt.want) {
				t.Errorf("quote = %+v, want %+v", q, tt.want)
			}
		})
	}
}

func TestPreviewPermanentLineOverHTTP(t *testing.T) {
	c, f := setup(t)
	f.on(DefaultPreviewPath, answer(`{"code":200,"msg":"","data":{"orderPreviewResuslt":[{"status":false,"resultCode":"","message":"",
		"cargoList":[{"offerId":623456789013,"specId":"c0ffee","resultCode":"500_004","message":"out of stock"}],
		"tradeModelList":[{"tradeType":"assureTrade","opSupport":true}]}]}}`))
	_, err := c.Preview(context.Background(), sampleOrder())
	var pe *providers.PermanentError
	if !errors.As(err, &pe) || pe.Code != "500_004" || !strings.Contains(pe.Message, "out of stock") {
		t.Fatalf("Preview error = %v, want permanent 500_004", err)
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   *providers.Placement
	}{
		{
			name:   "one order",
			answer: `{"code":200,"data":{"orderId":"3391234567890123456","totalSuccessAmount":2996,"postFee":600,"failedOfferList":[]}}`,
			want:   &providers.Placement{OrderIDs: []string{"3391234567890123456"}, Total: 2996},
		},
		{
			name:   "numeric order id",
			answer: `{"code":0,"data":{"orderId":3391234567890123457,"totalSuccessAmount":10}}`,
			want:   &providers.Placement{OrderIDs: []string{"3391234567890123457"}, Total: 10},
		},
		{
			name: "split order",
			answer: `{"code":200,"data":{"orderId":"A","totalSuccessAmount":2996,"postFee":600,
				"orderList":[{"orderId":"A"},{"orderId":"B"}]}}`,
			want: &providers.Placement{OrderIDs: []string{"A", "B"}, Total: 2996},
		},
		{
			name: "partly failed: the created order is returned",
			answer: `{"code":200,"data":{"orderId":"A","totalSuccessAmount":948,
				"failedOfferList":[{"offerId":623456789013,"specId":"c0ffee","errorCode":"500_004","errorMessage":"out of stock"}]}}`,
			want: &providers.Placement{OrderIDs: []string{"A"}, Total: 948, Rejected: []providers.RejectedItem{
				{ProductID: 623456789013, SkuID: "c0ffee", Code: "500_004", Message: "out of stock"},
			}},
		},
		{
			name: "partly failed, split, a failed offer without a code",
			answer: `{"code":200,"data":{"orderId":"A","totalSuccessAmount":948,"orderList":[{"orderId":"A"},{"orderId":"B"}],
				"failedOfferList":[{"offerId":"623456789013","specId":"c0ffee","errorMessage":"seller refused"}]}}`,
			want: &providers.Placement{OrderIDs: []string{"A", "B"}, Total: 948, Rejected: []providers.RejectedItem{
				{ProductID: 623456789013, SkuID: "c0ffee", Code: CodeCreateFailed, Message: "seller refused"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultCreatePath, answer(tt.answer))
			p, err := c.Create(context.Background(), sampleOrder(), &providers.Quote{TradeType: "assureTrade"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Errorf("Placement = %+v, want %+v", p, tt.want)
			}
			assertJSON(t, f.requests()[0].Body, samplePreviewBody+`,"tradeType":"assureTrade","message":""}`)
		})
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Run("all offers failed", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultCreatePath, answer(`{"code":200,"data":{"orderId":"","failedOfferList":[
			{"offerId":623456789013,"specId":"c0ffee","errorCode":"500_005","errorMessage":"below minimum"},
			{"offerId":623456789012,"specId":"b5f2c0e1d8a9","errorCode":"500_004","errorMessage":"out of stock"}]}}`))
		_, err := c.Create(context.Background(), sampleOrder(), &providers.Quote{TradeType: "assureTrade"})
		var pe *providers.PermanentError
		if !errors.As(err, &pe) || pe.Code != "500_005" || !strings.Contains(pe.Message, "below minimum") {
			t.Fatalf("Create error = %v, want permanent 500_005", err)
		}
	})
	// A success that names no order may still have made one: never a
	// Placement with no ids, never permanent.
	for name, body := range map[string]string{
		"empty data":                 `{"code":200,"data":{}}`,
		"null data":                  `{"code":200,"data":null}`,
		"no data":                    `{"code":0,"msg":"success"}`,
		"empty order id":             `{"code":200,"data":{"orderId":"","totalSuccessAmount":948,"failedOfferList":[]}}`,
		"order list of empty ids":    `{"code":200,"data":{"orderId":"","orderList":[{"orderId":""}]}}`,
		"null order id and no lists": `{"code":200,"data":{"orderId":null,"failedOfferList":null}}`,
	} {
		t.Run("success without an order id is an unknown outcome/"+name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultCreatePath, answer(body))
			p, err := c.Create(context.Background(), sampleOrder(), &providers.Quote{TradeType: "assureTrade"})
			var uo *providers.UnknownOutcomeError
			if p != nil || !errors.As(err, &uo) {
				t.Fatalf("Create = %+v, %v (%v), want *providers.UnknownOutcomeError", p, err, providers.ClassOf(err))
			}
		})
	}
	t.Run("quote without trade type is refused before sending", func(t *testing.T) {
		c, f := setup(t)
		for _, q := range []*providers.Quote{nil, {}} {
			_, err := c.Create(context.Background(), sampleOrder(), q)
			var pe *providers.PermanentError
			if !errors.As(err, &pe) || pe.Code != CodeNoTradeType {
				t.Errorf("Create(%v) error = %v, want permanent %s", q, err, CodeNoTradeType)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("server saw %d requests, want 0", n)
		}
	})
}

func TestLookup(t *testing.T) {
	t.Run("found", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultListPath, answer(`{"code":200,"data":{"total":3,"list":[
			{"orderId":"A","outOrderId":"UP-1","status":"waitbuyerpay"},
			{"orderId":"X","outOrderId":"UP-10","status":"waitbuyerpay"},
			{"orderId":3391234567890123456,"outOrderId":"UP-1","status":"waitbuyerpay"}]}}`))
		p, err := c.Lookup(context.Background(), "UP-1")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"A", "3391234567890123456"}; !reflect.DeepEqual(p.OrderIDs, want) {
			t.Errorf("OrderIDs = %v, want %v", p.OrderIDs, want)
		}
		assertJSON(t, f.requests()[0].Body, `{"outOrderId":"UP-1","page":1,"pageSize":50}`)
	})
	t.Run("paged", func(t *testing.T) {
		var admitted atomic.Int32
		c, f := setup(t, func(cfg *Config) {
			cfg.Admit = func(context.Context) error { admitted.Add(1); return nil }
		})
		f.on(DefaultListPath, func(w http.ResponseWriter, _ *http.Request, body []byte) {
			page := 1
			if strings.Contains(string(body), `"page":2`) {
				page = 2
			}
			n := 50
			if page == 2 {
				n = 5
			}
			list := make([]map[string]any, n)
			for i := range list {
				list[i] = map[string]any{"orderId": fmt.Sprintf("p%d-%d", page, i), "outOrderId": "UP-1"}
			}
			writeEnv(w, 200, "", map[string]any{"total": 55, "list": list})
		})
		p, err := c.Lookup(context.Background(), "UP-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(p.OrderIDs) != 55 || p.OrderIDs[54] != "p2-4" {
			t.Errorf("got %d ids, last %q", len(p.OrderIDs), p.OrderIDs[len(p.OrderIDs)-1])
		}
		if n := len(f.requests()); n != 2 {
			t.Errorf("server saw %d requests, want 2", n)
		}
		if n := admitted.Load(); n != 1 {
			t.Errorf("Admit asked %d times, want 1 (the second page: the first is the gate's)", n)
		}
	})
	t.Run("server ignoring page", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultListPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			list := make([]map[string]any, 50)
			for i := range list {
				list[i] = map[string]any{"orderId": fmt.Sprint(i), "outOrderId": "UP-1"}
			}
			writeEnv(w, 200, "", map[string]any{"list": list})
		})
		p, err := c.Lookup(context.Background(), "UP-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(p.OrderIDs) != 50 || len(f.requests()) != 2 {
			t.Errorf("got %d ids in %d requests, want 50 in 2", len(p.OrderIDs), len(f.requests()))
		}
	})
	t.Run("filter ignored, ours on the second page", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultListPath, func(w http.ResponseWriter, _ *http.Request, body []byte) {
			list := make([]map[string]any, 50)
			for i := range list {
				list[i] = map[string]any{"orderId": fmt.Sprint("other-", i), "outOrderId": fmt.Sprint("UP-", 100+i)}
			}
			if strings.Contains(string(body), `"page":2`) {
				list = []map[string]any{{"orderId": "ours", "outOrderId": "UP-1"}, {"orderId": "x", "outOrderId": "UP-1 "}}
			}
			writeEnv(w, 200, "", map[string]any{"total": 52, "list": list})
		})
		p, err := c.Lookup(context.Background(), "UP-1")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"ours"}; !reflect.DeepEqual(p.OrderIDs, want) {
			t.Errorf("OrderIDs = %v, want %v (exact matches only)", p.OrderIDs, want)
		}
	})
	for name, body := range map[string]string{
		"empty list":           `{"code":200,"data":{"total":0,"list":[]}}`,
		"envelope 404":         `{"code":404,"msg":"no such order","data":null}`,
		"empty list, no total": `{"code":0,"data":{"list":[]}}`,
	} {
		t.Run("not found/"+name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultListPath, answer(body))
			_, err := c.Lookup(context.Background(), "UP-1")
			if !errors.Is(err, providers.ErrNotFound) || errors.Is(err, providers.ErrAmbiguous) {
				t.Fatalf("Lookup error = %v, want ErrNotFound", err)
			}
		})
	}
	// Answers that do not tell: never ErrNotFound, never an order adopted.
	for name, h := range map[string]handlerFunc{
		"only other orders":               answer(`{"code":200,"data":{"total":1,"list":[{"orderId":"X","outOrderId":"UP-10"}]}}`),
		"entries without an outOrderId":   answer(`{"code":200,"data":{"total":2,"list":[{"orderId":"X"},{"orderId":"Y","outOrderId":""}]}}`),
		"an outOrderId differing in case": answer(`{"code":200,"data":{"total":1,"list":[{"orderId":"X","outOrderId":"up-1"}]}}`),
		"entries without an order id":     answer(`{"code":200,"data":{"total":1,"list":[{"outOrderId":"UP-1"}]}}`),
		"list without orders":             answer(`{"code":200,"data":{"total":0}}`),
		"null list":                       answer(`{"code":200,"data":{"total":0,"list":null}}`),
		"empty data":                      answer(`{"code":200,"data":{}}`),
		"null data":                       answer(`{"code":200,"data":null}`),
		"no data":                         answer(`{"code":200,"msg":"success"}`),
		"empty list with a total":         answer(`{"code":200,"data":{"total":3,"list":[]}}`),
		"filter ignored on every page, ours among them, not read to the end": func(w http.ResponseWriter, _ *http.Request, body []byte) {
			var req listRequest
			_ = json.Unmarshal(body, &req)
			list := make([]map[string]any, 50)
			for i := range list {
				list[i] = map[string]any{"orderId": fmt.Sprint(req.Page, "-", i), "outOrderId": fmt.Sprint("UP-", 100+i)}
			}
			list[0]["outOrderId"] = "UP-1"
			writeEnv(w, 200, "", map[string]any{"total": 100000, "list": list})
		},
	} {
		t.Run("ambiguous/"+name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultListPath, h)
			p, err := c.Lookup(context.Background(), "UP-1")
			var te *providers.TransientError
			if p != nil || !errors.Is(err, providers.ErrAmbiguous) || !errors.As(err, &te) || errors.Is(err, providers.ErrNotFound) {
				t.Fatalf("Lookup = %+v, %v; want ErrAmbiguous in a *providers.TransientError", p, err)
			}
		})
	}
}

func TestDetails(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   *providers.OrderStatus
	}{
		{
			name:   "awaiting payment",
			answer: `{"code":200,"data":{"baseInfo":{"id":"9","outOrderId":"UP-1","status":"waitbuyerpay","totalAmount":2996,"shippingFee":600}}}`,
			want:   &providers.OrderStatus{OrderID: "9", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay", Total: 2996},
		},
		{
			name: "shipped with a parcel",
			answer: `{"code":200,"data":{"baseInfo":{"id":9,"status":"waitbuyerreceive","totalAmount":2996},
				"nativeLogistics":{"logisticsItems":[{"logisticsCompanyName":"YTO","logisticsBillNo":"YT123","status":"TRANSPORT"},{"logisticsCompanyName":"SF","logisticsBillNo":"SF9"}]}}}`,
			want: &providers.OrderStatus{OrderID: "9", State: providers.StateShipped, Raw: "waitbuyerreceive", Total: 2996,
				Parcel: &providers.ParcelRef{Carrier: "YTO", BillNo: "YT123"}},
		},
		{
			name:   "empty logistics item is no parcel",
			answer: `{"code":200,"data":{"baseInfo":{"status":"waitsellersend"},"nativeLogistics":{"logisticsItems":[{}]}}}`,
			want:   &providers.OrderStatus{OrderID: "9", State: providers.StatePaid, Raw: "waitsellersend"},
		},
		{
			name:   "unknown status word",
			answer: `{"code":200,"data":{"baseInfo":{"status":"waitlogisticstakein","totalAmount":5}}}`,
			want:   &providers.OrderStatus{OrderID: "9", State: providers.StateUnknown, Raw: "waitlogisticstakein", Total: 5},
		},
		{
			name: "product lines, numbers or strings",
			answer: `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":[
				{"productID":623456789012,"skuID":"b5f2c0e1d8a9","quantity":2,"name":"cup","price":948},
				{"productID":"623456789013","skuID":5012345678901,"quantity":"1"},
				{"productID":623456789014,"quantity":3}]}}`,
			want: &providers.OrderStatus{OrderID: "9", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay",
				Lines: []providers.OrderLine{
					{ProductID: 623456789012, SkuID: "b5f2c0e1d8a9", Quantity: 2},
					{ProductID: 623456789013, SkuID: "5012345678901", Quantity: 1},
					{ProductID: 623456789014, Quantity: 3},
				}},
		},
		{
			name:   "empty product items say nothing",
			answer: `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":[]}}`,
			want:   &providers.OrderStatus{OrderID: "9", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay"},
		},
		{
			name:   "null product items say nothing",
			answer: `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":null}}`,
			want:   &providers.OrderStatus{OrderID: "9", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultDetailPath, answer(tt.answer))
			st, err := c.Details(context.Background(), "9")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(st, tt.want) {
				t.Errorf("OrderStatus = %+v, want %+v", st, tt.want)
			}
			assertJSON(t, f.requests()[0].Body, `{"orderId":"9"}`)
		})
	}
	// A product line that cannot be read is a malformed answer, as a
	// malformed amount is: transient, never a status without it.
	for name, items := range map[string]string{
		"productID not a number": `[{"productID":"x","skuID":"s","quantity":1}]`,
		"productID zero":         `[{"productID":0,"skuID":"s","quantity":1}]`,
		"productID missing":      `[{"skuID":"s","quantity":1}]`,
		"quantity zero":          `[{"productID":1,"skuID":"s","quantity":0}]`,
		"quantity negative":      `[{"productID":1,"skuID":"s","quantity":-2}]`,
		"quantity fractional":    `[{"productID":1,"skuID":"s","quantity":1.5}]`,
		"quantity missing":       `[{"productID":1,"skuID":"s"}]`,
		"quantity too large":     `[{"productID":1,"skuID":"s","quantity":4294967296}]`,
		"a null line":            `[{"productID":1,"skuID":"s","quantity":1},null]`,
		"a line not an object":   `["x"]`,
		"skuID an object":        `[{"productID":1,"skuID":{},"quantity":1}]`,
		"items not a list":       `{"productID":1}`,
	} {
		t.Run("malformed line: "+name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultDetailPath, answer(`{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":`+items+`}}`))
			st, err := c.Details(context.Background(), "9")
			var te *providers.TransientError
			if st != nil || !errors.As(err, &te) {
				t.Fatalf("Details = %+v, %v; want a *providers.TransientError", st, err)
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultDetailPath, answer(`{"code":404,"msg":"order not found","data":null}`))
		_, err := c.Details(context.Background(), "nope")
		if !errors.Is(err, providers.ErrNotFound) {
			t.Fatalf("Details error = %v, want ErrNotFound", err)
		}
	})
}

// A details answer with two parcels traced.
const traceAnswer = `{"code":200,"data":{"baseInfo":{"status":"waitbuyerreceive"},
 "nativeLogistics":{"logisticsItems":[{"logisticsCompanyName":"YTO","logisticsBillNo":"YT123"},{"logisticsCompanyName":"SF","logisticsBillNo":"SF9"}]},
 "logisticsTrace":[
   {"logisticsBillNo":"YT123","status":"TRANSPORT","logisticsSteps":[
     {"acceptTime":"2026-01-02 09:00:00","remark":"picked up"},
     {"acceptTime":"2026-01-02 18:30:15","remark":"left Hangzhou hub","action":"TRANSPORT"}]},
   {"logisticsBillNo":"SF9","status":"SIGN","logisticsSteps":[{"acceptTime":"not a time","remark":"signed"}]}]}}`

func TestTrace(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	ytoSteps := []providers.TraceStep{
		{At: time.Date(2026, 1, 2, 9, 0, 0, 0, cst), Memo: "picked up"},
		{At: time.Date(2026, 1, 2, 18, 30, 15, 0, cst), Event: "TRANSPORT", Memo: "left Hangzhou hub"},
	}
	tests := []struct {
		name string
		ref  *providers.ParcelRef
		want *providers.Parcel
	}{
		{"no ref: first trace", nil, &providers.Parcel{ParcelRef: providers.ParcelRef{Carrier: "YTO", BillNo: "YT123"}, Status: "TRANSPORT", Steps: ytoSteps}},
		{"by bill number", &providers.ParcelRef{Carrier: "顺丰", BillNo: "SF9"},
			&providers.Parcel{ParcelRef: providers.ParcelRef{Carrier: "SF", BillNo: "SF9"}, Status: "SIGN", Steps: []providers.TraceStep{{Memo: "signed"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultDetailPath, answer(traceAnswer))
			p, err := c.Trace(context.Background(), "9", tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != tt.want.Status || p.ParcelRef != tt.want.ParcelRef || len(p.Steps) != len(tt.want.Steps) {
				t.Fatalf("Parcel = %+v, want %+v", p, tt.want)
			}
			for i, s := range p.Steps {
				w := tt.want.Steps[i]
				if !s.At.Equal(w.At) || s.Event != w.Event || s.Memo != w.Memo {
					t.Errorf("step %d = %+v, want %+v", i, s, w)
				}
			}
		})
	}
	t.Run("UTC instant", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultDetailPath, answer(traceAnswer))
		p, err := c.Trace(context.Background(), "9", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Steps[0].At.UTC(), time.Date(2026, 1, 2, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
			t.Errorf("09:00 Shanghai = %s UTC, want %s", got, want)
		}
		if p.Delivered() {
			t.Error("TRANSPORT parcel reported delivered")
		}
	})
	for name, tc := range map[string]struct {
		answer string
		ref    *providers.ParcelRef
	}{
		"no trace yet":    {`{"code":200,"data":{"baseInfo":{"status":"waitsellersend"}}}`, nil},
		"other bill":      {traceAnswer, &providers.ParcelRef{BillNo: "ZZ1"}},
		"empty trace":     {`{"code":200,"data":{"baseInfo":{"status":"waitbuyerreceive"},"logisticsTrace":[]}}`, nil},
		"order not found": {`{"code":404,"msg":"no such order"}`, nil},
	} {
		t.Run(name, func(t *testing.T) {
			c, f := setup(t)
			f.on(DefaultDetailPath, answer(tc.answer))
			_, err := c.Trace(context.Background(), "9", tc.ref)
			if !errors.Is(err, providers.ErrNotFound) {
				t.Fatalf("Trace error = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultCancelPath, answer(`{"code":200,"data":true}`))
		if err := c.Cancel(context.Background(), "9", "buyer changed mind"); err != nil {
			t.Fatal(err)
		}
		assertJSON(t, f.requests()[0].Body, `{"orderId":"9","cancelReason":"buyer changed mind"}`)
	})
	t.Run("accepted without data", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultCancelPath, answer(`{"code":0}`))
		if err := c.Cancel(context.Background(), "9", "r"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("data false", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultCancelPath, answer(`{"code":200,"data":false}`))
		err := c.Cancel(context.Background(), "9", "r")
		var pe *providers.PermanentError
		if !errors.As(err, &pe) || pe.Code != CodeCancelRefused {
			t.Fatalf("Cancel error = %v, want permanent %s", err, CodeCancelRefused)
		}
	})
	t.Run("too fast", func(t *testing.T) {
		c, f := setup(t)
		f.on(DefaultCancelPath, answer(`{"code":400,"msg":"CLOSE_ORDER_TOO_FAST: cancel within 10s of creation"}`))
		err := c.Cancel(context.Background(), "9", "r")
		var pe *providers.PermanentError
		if !errors.As(err, &pe) || pe.Code != "400" || !strings.Contains(pe.Message, "CLOSE_ORDER_TOO_FAST") {
			t.Fatalf("Cancel error = %v, want permanent 400 naming CLOSE_ORDER_TOO_FAST", err)
		}
	})
}
