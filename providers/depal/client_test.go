package depal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/providers"
)

// previewAnswer is a preview data matching testOrder.
const previewAnswer = `{"previewId":"pv-1","productTotalAmount":"2.48","freightTotalAmount":"10","serviceTotalAmount":"0.05",
 "cargoList":[{"productId":623456789012,"skuId":"sku-a","quantity":2,"price":"1.00","amount":"2.00","productName":"x","skuAttributeNames":["red"]},
              {"productId":7,"skuId":"sku-b","quantity":1,"price":"0.48","amount":"0.48"}]}`

func TestPreview(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodPreview, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", previewAnswer) })
	q, err := c.Preview(context.Background(), testOrder())
	if err != nil {
		t.Fatalf("Preview: %v", err)
	}
	want := &providers.Quote{
		PreviewID: "pv-1", Goods: 248, Freight: 1000, Service: 5, Total: 1253,
		Lines: []providers.QuoteLine{
			{ProductID: 623456789012, SkuID: "sku-a", Quantity: 2, UnitPrice: 100, Amount: 200},
			{ProductID: 7, SkuID: "sku-b", Quantity: 1, UnitPrice: 48, Amount: 48},
		},
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("quote\n got %+v\nwant %+v", q, want)
	}

	var body map[string]any
	if err := json.Unmarshal(f.lastReq(methodPreview).Body, &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{
		"outOrderId": "UP-1",
		"address": map[string]any{
			"userName": "Li Lei", "phone": "13800138000", "country": "CN", "province": "Zhejiang",
			"city": "Hangzhou", "address": "Xihu 1 Example Road", "postCode": "310000",
		},
		"cargoList": []any{
			map[string]any{"productId": 623456789012.0, "skuId": "sku-a", "quantity": 2.0},
			map[string]any{"productId": 7.0, "skuId": "sku-b", "quantity": 1.0},
		},
	}
	if !reflect.DeepEqual(body, wantBody) {
		t.Errorf("preview body\n got %v\nwant %v", body, wantBody)
	}
}

func TestPreviewBodyPhoneAndAddress(t *testing.T) {
	tests := []struct {
		name      string
		addr      providers.Address
		wantPhone string
		wantAddr  string
	}{
		{"mobile wins", providers.Address{Phone: "p", Mobile: "m", Address: "a"}, "m", "a"},
		{"phone when no mobile", providers.Address{Phone: "p", Address: "a"}, "p", "a"},
		{"district town address", providers.Address{Mobile: "m", District: "d", Town: "t", Address: "a"}, "m", "d t a"},
		{"blank parts skipped", providers.Address{Mobile: "m", District: " ", Town: "t", Address: "a"}, "m", "t a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testOrder()
			r.Address = tt.addr
			b := previewBodyOf(r)
			if b.Address.Phone != tt.wantPhone || b.Address.Address != tt.wantAddr {
				t.Errorf("phone %q address %q, want %q %q", b.Address.Phone, b.Address.Address, tt.wantPhone, tt.wantAddr)
			}
		})
	}
}

// TestQuoteAmounts is the amount mapping of a preview answer: yuan strings
// (or bare numbers) to fen, exactly, and malformed amounts refused naming
// the field.
func TestQuoteAmounts(t *testing.T) {
	tests := []struct {
		name      string
		goods     string // JSON value of productTotalAmount
		freight   string
		service   string
		price     string
		wantTotal int64
		wantPrice int64
		badField  string // the AmountError's field, "" for success
	}{
		{"decimal strings", `"2.48"`, `"10"`, `"0.5"`, `"1.10"`, 248 + 1000 + 50, 110, ""},
		{"one decimal", `"0.1"`, `"0"`, `"0.01"`, `"0.1"`, 10 + 0 + 1, 10, ""},
		{"bare numbers kept exact", `2.48`, `10.1`, `0.07`, `0.29`, 248 + 1010 + 7, 29, ""},
		{"absent freight and service are 0", `"5"`, `null`, `""`, `"5"`, 500, 500, ""},
		{"three decimals", `"2.485"`, `"0"`, `"0"`, `"1"`, 0, 0, "productTotalAmount"},
		{"words", `"2.48"`, `"ten"`, `"0"`, `"1"`, 0, 0, "freightTotalAmount"},
		{"thousands separator", `"2.48"`, `"0"`, `"1,000.00"`, `"1"`, 0, 0, "serviceTotalAmount"},
		{"negative", `"2.48"`, `"-1.00"`, `"0"`, `"1"`, 0, 0, "freightTotalAmount"},
		{"missing goods", `""`, `"0"`, `"0"`, `"1"`, 0, 0, "productTotalAmount"},
		{"malformed line price", `"2.48"`, `"0"`, `"0"`, `"1.2.3"`, 0, 0, "cargoList[0].price"},
		{"exponent", `2e2`, `"0"`, `"0"`, `"1"`, 0, 0, "productTotalAmount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fmt.Sprintf(`{"previewId":"pv","productTotalAmount":%s,"freightTotalAmount":%s,"serviceTotalAmount":%s,
				"cargoList":[{"productId":"7","skuId":"s","quantity":1,"price":%s,"amount":"1"}]}`,
				tt.goods, tt.freight, tt.service, tt.price)
			var d previewData
			if err := json.Unmarshal([]byte(raw), &d); err != nil {
				t.Fatalf("decode: %v", err)
			}
			q, err := quoteOf(&d)
			if tt.badField != "" {
				var ae *AmountError
				if !errors.As(err, &ae) || ae.Field != tt.badField {
					t.Fatalf("err = %v, want an AmountError for %s", err, tt.badField)
				}
				if !strings.Contains(err.Error(), tt.badField) {
					t.Errorf("error %q does not name the field", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("quoteOf: %v", err)
			}
			if q.Total != tt.wantTotal || q.Lines[0].UnitPrice != tt.wantPrice || q.Lines[0].ProductID != 7 {
				t.Errorf("total %d unit price %d product %d, want %d %d 7", q.Total, q.Lines[0].UnitPrice, q.Lines[0].ProductID, tt.wantTotal, tt.wantPrice)
			}
		})
	}
}

func TestPreviewMalformedAmountIsTransient(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodPreview, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		replyRaw(w, "200", `{"previewId":"pv","productTotalAmount":"2.4.8","cargoList":[]}`)
	})
	_, err := c.Preview(context.Background(), testOrder())
	var ae *AmountError
	if !errors.As(err, &ae) || ae.Value != "2.4.8" {
		t.Fatalf("err = %v, want an AmountError for 2.4.8", err)
	}
	if providers.ClassOf(err) != providers.ClassTransient {
		t.Errorf("class %v, want transient", providers.ClassOf(err))
	}
	var te *providers.TransientError
	if !errors.As(err, &te) {
		t.Errorf("err %T is not a *providers.TransientError", err)
	}
}

func TestCreate(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodSubmit, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		replyRaw(w, "200", `{"orderId":"3456789012345678901"}`)
	})
	p, err := c.Create(context.Background(), testOrder(), &providers.Quote{PreviewID: "pv-1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !reflect.DeepEqual(p.OrderIDs, []string{"3456789012345678901"}) {
		t.Errorf("OrderIDs = %v", p.OrderIDs)
	}
	// The submit body is the preview body plus previewId.
	var got, want map[string]any
	if err := json.Unmarshal(f.lastReq(methodSubmit).Body, &got); err != nil {
		t.Fatal(err)
	}
	pb, _ := json.Marshal(previewBodyOf(testOrder()))
	if err := json.Unmarshal(pb, &want); err != nil {
		t.Fatal(err)
	}
	want["previewId"] = "pv-1"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("submit body\n got %v\nwant %v", got, want)
	}
}

// A partial create: the order is made for some lines, the others come back
// in 1688's failedOfferList and become the Placement's Rejected.
func TestCreatePartial(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodSubmit, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		replyRaw(w, "200", `{"orderId":"O1","failedOfferList":[{"offerId":7,"specId":"sku-b","errorCode":"R500_004","errorMessage":"out of stock"},
			{"offerId":"8","specId":"sku-c","errorMessage":"refused"}]}`)
	})
	p, err := c.Create(context.Background(), testOrder(), &providers.Quote{PreviewID: "pv-1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := &providers.Placement{OrderIDs: []string{"O1"}, Rejected: []providers.RejectedItem{
		{ProductID: 7, SkuID: "sku-b", Code: "R500_004", Message: "out of stock"},
		{ProductID: 8, SkuID: "sku-c", Code: codeCreateFailed, Message: "refused"},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Create = %+v, want %+v", p, want)
	}
}

// A success that names no order may still have made one: an unknown
// outcome, never a Placement without ids.
func TestCreateSuccessWithoutOrderID(t *testing.T) {
	for name, data := range map[string]string{
		"empty data":         `{}`,
		"null data":          `null`,
		"empty orderId":      `{"orderId":""}`,
		"only empty ids":     `{"orderId":"","orderIds":["",""]}`,
		"data not an object": `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(methodSubmit, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", data) })
			p, err := c.Create(context.Background(), testOrder(), &providers.Quote{PreviewID: "pv-1"})
			var uo *providers.UnknownOutcomeError
			if p != nil || !errors.As(err, &uo) {
				t.Fatalf("Create = %+v, %v; want *providers.UnknownOutcomeError", p, err)
			}
		})
	}
}

func TestCreateNeedsPreviewID(t *testing.T) {
	c, f, _ := setup(t)
	for _, q := range []*providers.Quote{nil, {}} {
		_, err := c.Create(context.Background(), testOrder(), q)
		if providers.ClassOf(err) != providers.ClassPermanent {
			t.Errorf("Create(%v): err = %v, want permanent", q, err)
		}
	}
	if gets, calls, _ := f.counts(); gets != 0 || len(calls) != 0 {
		t.Errorf("requests were sent: token.get %d, calls %v", gets, calls)
	}
}

func TestCreate1010ExistingOrder(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodSubmit, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"code":"1010","msg":"previewId already used","data":{"orderId":123456789},"requestId":"r"}`)
	})
	p, err := c.Create(context.Background(), testOrder(), &providers.Quote{PreviewID: "pv-1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !reflect.DeepEqual(p.OrderIDs, []string{"123456789"}) {
		t.Errorf("OrderIDs = %v, want the existing order", p.OrderIDs)
	}
}

func TestLookup(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var b map[string]string
		_ = json.Unmarshal(body, &b)
		if b["outOrderId"] != "UP-1" || b["orderId"] != "" {
			reply(w, "640", nil, "no such order")
			return
		}
		replyRaw(w, "200", `{"orderId":"O1","outOrderId":"UP-1","status":"waitbuyerpay","productTotalAmount":"2.48","freightTotalAmount":"10.00","serviceTotalAmount":"0.05"}`)
	})
	p, err := c.Lookup(context.Background(), "UP-1")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if want := (&providers.Placement{OrderIDs: []string{"O1"}, Total: 1253}); !reflect.DeepEqual(p, want) {
		t.Errorf("Lookup = %+v, want %+v", p, want)
	}
	_, err = c.Lookup(context.Background(), "UP-none")
	if !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Lookup of an unknown outOrderId: err = %v, want ErrNotFound", err)
	}
}

// A lookup answer that does not tell whether the order exists is "don't
// know" (ErrAmbiguous in a *providers.TransientError), never ErrNotFound,
// and another outOrderId's order is never adopted.
func TestLookupAmbiguous(t *testing.T) {
	for name, data := range map[string]string{
		"empty data":                   `{}`,
		"null data":                    `null`,
		"no orderId":                   `{"outOrderId":"UP-1","status":"waitbuyerpay"}`,
		"empty orderId":                `{"orderId":"","outOrderId":"UP-1"}`,
		"another outOrderId":           `{"orderId":"O9","outOrderId":"UP-2","status":"waitbuyerpay","productTotalAmount":"1.00"}`,
		"no outOrderId":                `{"orderId":"O9","status":"waitbuyerpay","productTotalAmount":"1.00"}`,
		"outOrderId differing in case": `{"orderId":"O9","outOrderId":"up-1"}`,
	} {
		t.Run(name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", data) })
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
		name string
		data string
		want providers.OrderStatus
	}{
		{"unpaid", `{"orderId":"O1","status":"waitbuyerpay","productTotalAmount":"1.00"}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay", Total: 100}},
		{"shipped with a parcel", `{"orderId":"O1","status":"waitbuyerreceive","logistics":{"channelCode":"YTO","logisticNo":"YT123"}}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StateShipped, Raw: "waitbuyerreceive", Parcel: &providers.ParcelRef{Carrier: "YTO", BillNo: "YT123"}}},
		{"unknown status word", `{"orderId":"O1","status":"waitlogisticstakein"}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StateUnknown, Raw: "waitlogisticstakein"}},
		{"empty logistics is no parcel", `{"orderId":"O1","status":"waitsellersend","logistics":{"channelCode":"","logisticNo":""}}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StatePaid, Raw: "waitsellersend"}},
		{"order items, numbers or strings", `{"orderId":"O1","status":"waitbuyerpay","orderItemList":[
			{"productId":623456789012,"skuId":"5012345678901","quantity":2,"productName":"cup","price":"9.48"},
			{"productId":"623456789013","skuId":5012345678902,"quantity":"1"},
			{"productId":623456789014,"quantity":3}]}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay", Lines: []providers.OrderLine{
				{ProductID: 623456789012, SkuID: "5012345678901", Quantity: 2},
				{ProductID: 623456789013, SkuID: "5012345678902", Quantity: 1},
				{ProductID: 623456789014, Quantity: 3},
			}}},
		{"empty order items say nothing", `{"orderId":"O1","status":"waitbuyerpay","orderItemList":[]}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay"}},
		{"null order items say nothing", `{"orderId":"O1","status":"waitbuyerpay","orderItemList":null}`,
			providers.OrderStatus{OrderID: "O1", State: providers.StateAwaitingPayment, Raw: "waitbuyerpay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", tt.data) })
			st, err := c.Details(context.Background(), "O1")
			if err != nil {
				t.Fatalf("Details: %v", err)
			}
			if !reflect.DeepEqual(*st, tt.want) {
				t.Errorf("Details\n got %+v\nwant %+v", *st, tt.want)
			}
			if body := string(f.lastReq(methodDetail).Body); body != `{"orderId":"O1"}` {
				t.Errorf("details body %s", body)
			}
		})
	}
}

// An order item that cannot be read is a malformed answer, as a malformed
// amount is: transient, never a status without it.
func TestDetailsMalformedItemIsTransient(t *testing.T) {
	for name, items := range map[string]string{
		"productId not a number": `[{"productId":"x","skuId":"s","quantity":1}]`,
		"productId zero":         `[{"productId":0,"skuId":"s","quantity":1}]`,
		"productId missing":      `[{"skuId":"s","quantity":1}]`,
		"quantity zero":          `[{"productId":1,"skuId":"s","quantity":0}]`,
		"quantity negative":      `[{"productId":1,"skuId":"s","quantity":-2}]`,
		"quantity fractional":    `[{"productId":1,"skuId":"s","quantity":1.5}]`,
		"quantity missing":       `[{"productId":1,"skuId":"s"}]`,
		"quantity too large":     `[{"productId":1,"skuId":"s","quantity":4294967296}]`,
		"a null item":            `[{"productId":1,"skuId":"s","quantity":1},null]`,
		"an item not an object":  `["x"]`,
		"skuId an object":        `[{"productId":1,"skuId":{},"quantity":1}]`,
		"items not a list":       `{"productId":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				replyRaw(w, "200", `{"orderId":"O1","status":"waitbuyerpay","orderItemList":`+items+`}`)
			})
			st, err := c.Details(context.Background(), "O1")
			var te *providers.TransientError
			if st != nil || !errors.As(err, &te) {
				t.Fatalf("Details = %+v, %v; want a *providers.TransientError", st, err)
			}
		})
	}
}

const traceAnswer = `[{"date":"2026-01-02 03:04:05","event":"ACCEPT","memo":"picked up"},
                      {"date":"2026-01-02 20:00:00","event":"TRANSPORT","memo":"on the way"}]`

func TestTrace(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		replyRaw(w, "200", `{"orderId":"O1","status":"waitbuyerreceive","logistics":{"channelCode":"YTO","logisticNo":"YT123"}}`)
	})
	f.handle(methodLogistics, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		if string(body) != `{"channelCode":"YTO","logisticNo":"YT123"}` {
			reply(w, "630", nil, "bad body "+string(body))
			return
		}
		replyRaw(w, "200", traceAnswer)
	})
	want := &providers.Parcel{
		ParcelRef: providers.ParcelRef{Carrier: "YTO", BillNo: "YT123"},
		Status:    "TRANSPORT",
		Steps: []providers.TraceStep{
			{At: time.Date(2026, 1, 1, 19, 4, 5, 0, time.UTC), Event: "ACCEPT", Memo: "picked up"},
			{At: time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC), Event: "TRANSPORT", Memo: "on the way"},
		},
	}
	check := func(t *testing.T, p *providers.Parcel) {
		t.Helper()
		if p.ParcelRef != want.ParcelRef || p.Status != want.Status || len(p.Steps) != 2 {
			t.Fatalf("parcel %+v, want %+v", p, want)
		}
		for i, s := range p.Steps {
			w := want.Steps[i]
			if !s.At.Equal(w.At) || s.Event != w.Event || s.Memo != w.Memo {
				t.Errorf("step %d = %+v (%s), want %+v", i, s, s.At.UTC(), w)
			}
		}
	}
	t.Run("with a ref", func(t *testing.T) {
		p, err := c.Trace(context.Background(), "O1", &providers.ParcelRef{Carrier: "YTO", BillNo: "YT123"})
		if err != nil {
			t.Fatalf("Trace: %v", err)
		}
		check(t, p)
		if _, calls, _ := f.counts(); calls[methodDetail] != 0 {
			t.Errorf("details called although the ref was given")
		}
	})
	t.Run("without a ref reads details first", func(t *testing.T) {
		p, err := c.Trace(context.Background(), "O1", nil)
		if err != nil {
			t.Fatalf("Trace: %v", err)
		}
		check(t, p)
		if _, calls, _ := f.counts(); calls[methodDetail] != 1 {
			t.Errorf("details called %d times, want 1", calls[methodDetail])
		}
	})
}

func TestTraceNotFound(t *testing.T) {
	tests := []struct {
		name   string
		detail string // details data when ref is nil
		answer func(w http.ResponseWriter)
	}{
		{"640 before shipment", "", func(w http.ResponseWriter) { reply(w, "640", nil, "empty data") }},
		{"empty trace", "", func(w http.ResponseWriter) { replyRaw(w, "200", `[]`) }},
		{"not shipped yet (no parcel in details)", `{"orderId":"O1","status":"waitsellersend"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(methodLogistics, func(w http.ResponseWriter, _ *http.Request, _ []byte) { tt.answer(w) })
			f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", tt.detail) })
			var ref *providers.ParcelRef
			if tt.detail == "" {
				ref = &providers.ParcelRef{Carrier: "YTO", BillNo: "YT1"}
			}
			_, err := c.Trace(context.Background(), "O1", ref)
			if !errors.Is(err, providers.ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	c, f, _ := setup(t, func(cfg *Config) { cfg.CancelMethod = "1688.order.close" })
	f.handle("1688.order.close", func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var b map[string]string
		_ = json.Unmarshal(body, &b)
		switch b["orderId"] {
		case "O1":
			replyRaw(w, "200", `true`)
		default:
			replyRaw(w, "200", `false`)
		}
	})
	if err := c.Cancel(context.Background(), "O1", "customer asked"); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if body := string(f.lastReq("1688.order.close").Body); body != `{"orderId":"O1","cancelReason":"customer asked"}` {
		t.Errorf("cancel body %s", body)
	}
	if err := c.Cancel(context.Background(), "O2", "x"); providers.ClassOf(err) != providers.ClassPermanent {
		t.Errorf("refused cancel: err = %v, want permanent", err)
	}
}

// op is one client operation, called for the error-class table.
type op struct {
	name   string
	method string
	call   func(c *Client) error
}

var ops = []op{
	{"preview", methodPreview, func(c *Client) error { _, err := c.Preview(context.Background(), testOrder()); return err }},
	{"create", methodSubmit, func(c *Client) error {
		_, err := c.Create(context.Background(), testOrder(), &providers.Quote{PreviewID: "pv-1"})
		return err
	}},
	{"lookup", methodDetail, func(c *Client) error { _, err := c.Lookup(context.Background(), "UP-1"); return err }},
	{"details", methodDetail, func(c *Client) error { _, err := c.Details(context.Background(), "O1"); return err }},
	{"trace", methodLogistics, func(c *Client) error {
		_, err := c.Trace(context.Background(), "O1", &providers.ParcelRef{Carrier: "YTO", BillNo: "YT1"})
		return err
	}},
	{"cancel", DefaultCancelMethod, func(c *Client) error { return c.Cancel(context.Background(), "O1", "r") }},
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name       string
		answer     handlerFunc
		want       providers.Class
		wantCreate providers.Class // for create, when it differs
		code       string          // the Code of a permanent/auth/throttled error
		wait       time.Duration   // the Wait of a throttled error
	}{
		{name: "envelope 500", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "500", nil, "system error") },
			want: providers.ClassTransient, wantCreate: providers.ClassUnknownOutcome},
		{name: "HTTP 503", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		},
			want: providers.ClassTransient, wantCreate: providers.ClassUnknownOutcome},
		{name: "not an envelope", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { fmt.Fprint(w, "<html>oops</html>") },
			want: providers.ClassTransient, wantCreate: providers.ClassUnknownOutcome},
		{name: "600 without Retry-After", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "600", nil, "too many") },
			want: providers.ClassThrottled, code: "600", wait: time.Second},
		{name: "600 with Retry-After", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.Header().Set("Retry-After", "3")
			reply(w, "600", nil, "too many")
		}, want: providers.ClassThrottled, code: "600", wait: 3 * time.Second},
		{name: "HTTP 429", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
		}, want: providers.ClassThrottled, code: "HTTP_429", wait: 2 * time.Second},
		{name: "R500 as the code", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "R500_004", nil, "out of stock") },
			want: providers.ClassPermanent, code: "R500_004"},
		{name: "R500 inside msg under 1000", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			reply(w, "1000", nil, "R500_005: 商品[7]的购买数量不满足起批量限制")
		}, want: providers.ClassPermanent, code: "R500_005"},
		{name: "R500 inside msg under 1010", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			reply(w, "1010", nil, "create failed: R500_008 price 0")
		}, want: providers.ClassPermanent, code: "R500_008"},
		{name: "1000 without a word", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "1000", nil, "failed") },
			want: providers.ClassPermanent, code: "1000"},
		{name: "610", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "610", nil, "bad signature") },
			want: providers.ClassAuth, code: "610"},
		{name: "620", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "620", nil, "bad header") },
			want: providers.ClassPermanent, code: "620"},
		{name: "630", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "630", nil, "bad parameter") },
			want: providers.ClassPermanent, code: "630"},
		{name: "code as a JSON number", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			fmt.Fprint(w, `{"code":630,"msg":"bad parameter","data":null}`)
		}, want: providers.ClassPermanent, code: "630"},
		{name: "a refusal envelope under HTTP 400 keeps its class", answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"630","msg":"bad parameter","data":null}`)
		}, want: providers.ClassPermanent, code: "630"},
	}
	// Only Depal's own envelope refuses: a gateway's answer (HTML, a bare
	// status, JSON without a code, a success envelope under an error
	// status) is transient, and for a create an unknown outcome, whatever
	// the status. 408 and 499 are a gateway's even with an envelope.
	for _, st := range []int{200, 400, 401, 403, 404, 408, 499, 502, 504} {
		tests = append(tests, struct {
			name       string
			answer     handlerFunc
			want       providers.Class
			wantCreate providers.Class
			code       string
			wait       time.Duration
		}{name: fmt.Sprintf("gateway HTML under HTTP %d", st), answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(st)
			fmt.Fprint(w, "<html><body><h1>504 Gateway Time-out</h1></body></html>")
		}, want: providers.ClassTransient, wantCreate: providers.ClassUnknownOutcome})
	}
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"JSON without a code", 200, `{"msg":"ok","data":{"orderId":"O1"}}`},
		{"JSON with an empty code", 200, `{"code":"","data":{"orderId":"O1"}}`},
		{"a success envelope under HTTP 400", 400, `{"code":"200","data":{"orderId":"O1"}}`},
		{"a refusal envelope under HTTP 499", 499, `{"code":"630","msg":"bad parameter"}`},
		{"a refusal envelope under HTTP 408", 408, `{"code":"1010","msg":"R500_004"}`},
	} {
		tests = append(tests, struct {
			name       string
			answer     handlerFunc
			want       providers.Class
			wantCreate providers.Class
			code       string
			wait       time.Duration
		}{name: tt.name, answer: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tt.status)
			fmt.Fprint(w, tt.body)
		}, want: providers.ClassTransient, wantCreate: providers.ClassUnknownOutcome})
	}
	for _, tt := range tests {
		for _, o := range ops {
			t.Run(tt.name+"/"+o.name, func(t *testing.T) {
				c, f, _ := setup(t)
				f.handle(o.method, tt.answer)
				err := o.call(c)
				want := tt.want
				if o.name == "create" && tt.wantCreate != providers.ClassNone {
					want = tt.wantCreate
				}
				if got := providers.ClassOf(err); got != want {
					t.Fatalf("class %v (err %v), want %v", got, err, want)
				}
				switch want {
				case providers.ClassPermanent:
					var pe *providers.PermanentError
					if !errors.As(err, &pe) || pe.Code != tt.code {
						t.Errorf("err = %v, want *providers.PermanentError code %s", err, tt.code)
					}
				case providers.ClassAuth:
					var ae *providers.AuthError
					if !errors.As(err, &ae) || ae.Code != tt.code {
						t.Errorf("err = %v, want *providers.AuthError code %s", err, tt.code)
					}
				case providers.ClassThrottled:
					var te *providers.DeferError
					if !errors.As(err, &te) || te.Code != tt.code || te.Wait != tt.wait {
						t.Errorf("err = %#v, want *providers.DeferError code %s wait %s", err, tt.code, tt.wait)
					}
				case providers.ClassTransient:
					var te *providers.TransientError
					if !errors.As(err, &te) {
						t.Errorf("err %T %v is not a *providers.TransientError", err, err)
					}
				case providers.ClassUnknownOutcome:
					var ue *providers.UnknownOutcomeError
					if !errors.As(err, &ue) {
						t.Errorf("err %T %v is not a *providers.UnknownOutcomeError", err, err)
					}
				}
				if _, calls, _ := f.counts(); calls[o.method] != 1 {
					t.Errorf("%s called %d times, want 1 (no retry inside the client)", o.method, calls[o.method])
				}
			})
		}
	}
}

// 640 is "not found" for lookup and trace only; for the other calls it is
// a permanent refusal.
func TestCode640(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(o.method, func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, "640", nil, "empty data") })
			err := o.call(c)
			switch o.name {
			case "lookup", "trace":
				if !errors.Is(err, providers.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			default:
				var pe *providers.PermanentError
				if !errors.As(err, &pe) || pe.Code != "640" || errors.Is(err, providers.ErrNotFound) {
					t.Errorf("err = %v, want a permanent 640", err)
				}
			}
		})
	}
}

// hijackClose reads the request (the fake already has) and drops the
// connection without an answer.
func hijackClose(t testing.TB) handlerFunc {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}
}

func TestDroppedConnection(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(o.method, hijackClose(t))
			err := o.call(c)
			want := providers.ClassTransient
			if o.name == "create" {
				want = providers.ClassUnknownOutcome
			}
			if got := providers.ClassOf(err); got != want {
				t.Fatalf("class %v (err %v), want %v", got, err, want)
			}
			if o.name == "create" {
				var ue *providers.UnknownOutcomeError
				if !errors.As(err, &ue) {
					t.Errorf("err %T is not a *providers.UnknownOutcomeError", err)
				}
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			c, f, _ := setup(t)
			f.handle(o.method, func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
			c.cfg.Timeout = 50 * time.Millisecond // after setup: token.get keeps its 5s
			err := o.call(c)
			want := providers.ClassTransient
			if o.name == "create" {
				want = providers.ClassUnknownOutcome
			}
			if got := providers.ClassOf(err); got != want {
				t.Fatalf("class %v (err %v), want %v", got, err, want)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("a timeout looks like a cancellation: %v", err)
			}
		})
	}
}

func TestCallerCancellation(t *testing.T) {
	c, f, _ := setup(t)
	entered := make(chan struct{}, 2)
	block := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		entered <- struct{}{}
		<-r.Context().Done()
	}
	f.handle(methodDetail, block)
	f.handle(methodSubmit, block)
	run := func(call func(ctx context.Context) error) error {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- call(ctx) }()
		select {
		case <-entered:
		case err := <-errc:
			t.Fatalf("the call ended before the server saw it: %v", err)
		}
		cancel()
		return <-errc
	}
	err := run(func(ctx context.Context) error { _, err := c.Details(ctx, "O1"); return err })
	var te *providers.TransientError
	if !errors.Is(err, context.Canceled) || errors.As(err, &te) {
		t.Errorf("details: err = %v, want the context error, not reclassified", err)
	}
	// A create cancelled after its request left may have made the order:
	// it stays an unknown outcome, still matching context.Canceled.
	err = run(func(ctx context.Context) error {
		_, err := c.Create(ctx, testOrder(), &providers.Quote{PreviewID: "pv"})
		return err
	})
	if !errors.Is(err, context.Canceled) || providers.ClassOf(err) != providers.ClassUnknownOutcome {
		t.Errorf("create: err = %v, want an unknown outcome wrapping context.Canceled", err)
	}
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A create whose connection is refused never left: transient, not unknown.
func TestCreateDialRefusedIsTransient(t *testing.T) {
	dead := refusedAddr(t)
	var refuse atomic.Bool
	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if refuse.Load() {
				addr = dead
			}
			return d.DialContext(ctx, network, addr)
		},
	}}
	c, f, _ := setup(t, func(cfg *Config) { cfg.HTTPClient = hc })
	f.handle(methodDetail, detailOK)
	if _, err := c.Details(context.Background(), "O1"); err != nil { // caches a token
		t.Fatal(err)
	}
	refuse.Store(true)
	_, err := c.Create(context.Background(), testOrder(), &providers.Quote{PreviewID: "pv"})
	var te *providers.TransientError
	if !errors.As(err, &te) || providers.ClassOf(err) != providers.ClassTransient {
		t.Fatalf("err = %v (class %v), want *providers.TransientError", err, providers.ClassOf(err))
	}
	var ne *net.OpError
	if !errors.As(err, &ne) {
		t.Errorf("the dial error is not kept in the chain: %v", err)
	}
}

// The token URL carries appSecret: a transport error of token.get must not
// show it, escaped or not, anywhere in the chain's text.
func TestTokenErrorHidesSecret(t *testing.T) {
	c, err := New(Config{BaseURL: "http://" + refusedAddr(t) + "/depal", AppKey: testAppKey, AppSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Details(context.Background(), "O1")
	if providers.ClassOf(err) != providers.ClassTransient {
		t.Fatalf("err = %v, want transient", err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		assertNoSecret(t, fmt.Sprintf("%v|%+v|%#v", e, e, e))
	}
	var ue interface{ Unwrap() error }
	if !errors.As(err, &ue) {
		t.Fatal("the error chain was flattened")
	}
	if !strings.Contains(err.Error(), "appSecret=REDACTED") {
		t.Errorf("err = %v, want the URL with appSecret=REDACTED", err)
	}
}

func TestScrub(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", AppKey: testAppKey, AppSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	tests := []error{
		&net.OpError{Op: "dial", Err: errors.New("refused")},
		fmt.Errorf("wrapped: %w", errors.New("secret is "+testSecret)),
		errors.New("escaped secret s3cr3t%2F%2B%26%3Dvalue"),
	}
	for _, e := range tests {
		got := c.scrub(e)
		assertNoSecret(t, got.Error())
	}
	assertNoSecret(t, c.scrubText("msg "+testSecret))
}

func assertNoSecret(t testing.TB, s string) {
	t.Helper()
	for _, v := range []string{testSecret, "s3cr3t%2F%2B%26%3Dvalue", "s3cr3t"} {
		if strings.Contains(s, v) {
			t.Errorf("secret %q leaked in %q", v, s)
		}
	}
}

func TestConfigNeverShowsSecret(t *testing.T) {
	cfg := Config{BaseURL: "https://openapi.example", AppKey: "k", AppSecret: testSecret, Timeout: time.Second}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("start", "depal", cfg)
	logger.Info("start", slog.Any("cfg", &cfg))
	text := buf.String() + fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg)
	assertNoSecret(t, text)
	if !strings.Contains(buf.String(), `"app_secret":"REDACTED"`) || !strings.Contains(buf.String(), `"app_key":"k"`) {
		t.Errorf("log = %s, want the key and a redacted secret", buf.String())
	}
}

func TestNewValidates(t *testing.T) {
	good := Config{BaseURL: "https://openapi.example/prefix/", AppKey: "k", AppSecret: "s"}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "BaseURL"},
		{"relative base URL", func(c *Config) { c.BaseURL = "/openapi" }, "BaseURL"},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://x" }, "BaseURL"},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://x/?a=b" }, "BaseURL"},
		{"no app key", func(c *Config) { c.AppKey = "" }, "AppKey"},
		{"app key with a slash", func(c *Config) { c.AppKey = "a/b" }, "AppKey"},
		{"no secret", func(c *Config) { c.AppSecret = "" }, "AppSecret"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout"},
		{"negative margin", func(c *Config) { c.TokenMargin = -1 }, "TokenMargin"},
		{"cancel method with a slash", func(c *Config) { c.CancelMethod = "a/b" }, "CancelMethod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.AppSecret = testSecret
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), "Config."+tt.field) {
				t.Fatalf("err = %v, want one naming Config.%s", err, tt.field)
			}
			assertNoSecret(t, err.Error())
		})
	}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Timeout != 10*time.Second || c.cfg.TokenMargin != 60*time.Second || c.cfg.CancelMethod != "1688.order.cancel" ||
		c.base != "https://openapi.example/prefix" || c.http == nil || c.Name() != providers.Depal {
		t.Errorf("defaults not applied: %+v base %q", c.cfg, c.base)
	}
}

// The signed path starts at /openapi/ whatever prefix the base URL has;
// the fake verifies every signature with its own HMAC (setup fails the
// test on any refusal), and here the exact bytes are checked too.
func TestSignedPathAndBody(t *testing.T) {
	for _, prefix := range []string{"", "/depal", "/gw/v2/depal"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			f := newFakeDepal(t, clock, prefix)
			f.handle(methodPreview, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", previewAnswer) })
			c, err := New(Config{BaseURL: f.URL() + "/", AppKey: testAppKey, AppSecret: testSecret})
			if err != nil {
				t.Fatal(err)
			}
			c.now = clock.Now
			if _, err := c.Preview(context.Background(), testOrder()); err != nil {
				t.Fatalf("Preview: %v", err)
			}
			if _, _, bad := f.counts(); bad != 0 {
				t.Fatalf("the fake refused %d signatures", bad)
			}
			r := f.lastReq(methodPreview)
			if want := prefix + "/openapi/1/" + testAppKey + "/" + methodPreview; r.Path != want {
				t.Errorf("request path %s, want %s", r.Path, want)
			}
			wantBody, _ := json.Marshal(previewBodyOf(testOrder()))
			if !bytes.Equal(r.Body, wantBody) {
				t.Errorf("body %s, want %s", r.Body, wantBody)
			}
		})
	}
}
