package xportcn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"orderflow/providers"
)

// bytesTransport answers every request with the same status, Retry-After
// and body, without a network: the fuzz loop runs thousands of calls a
// second.
type bytesTransport struct {
	status     int
	retryAfter string
	body       []byte
}

func (b *bytesTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if b.retryAfter != "" {
		h.Set("Retry-After", b.retryAfter)
	}
	return &http.Response{
		StatusCode: b.status, Status: http.StatusText(b.status), Header: h,
		Body: io.NopCloser(bytes.NewReader(b.body)), ContentLength: int64(len(b.body)), Request: r,
	}, nil
}

// The operations FuzzResponses calls, picked by the fuzzed op byte.
const (
	fuzzPreview = iota
	fuzzCreate
	fuzzLookup
	fuzzDetails
	fuzzTrace
	fuzzTraceRef
	fuzzCancel
	fuzzOps
)

// fuzzStatus maps a fuzzed number to an HTTP status: 0 and anything out of
// 100..599 is 200, so most inputs exercise the body.
func fuzzStatus(n uint16) int {
	if n < 100 || n > 599 {
		return http.StatusOK
	}
	return int(n)
}

// checkClassified fails unless err is of a class the worker steers by:
// one of the typed errors of package providers, or ErrNotFound where the
// operation may answer it. A bare error would be retried blindly as
// "transient" by ClassOf; this asserts the client classified it itself.
func checkClassified(t *testing.T, op int, err error) {
	t.Helper()
	var (
		te *providers.TransientError
		th *providers.DeferError
		au *providers.AuthError
		pe *providers.PermanentError
		uo *providers.UnknownOutcomeError
	)
	switch {
	case errors.Is(err, providers.ErrNotFound):
		if op == fuzzPreview || op == fuzzCreate {
			t.Fatalf("op %d answered ErrNotFound, which only lookups may: %v", op, err)
		}
	case errors.As(err, &te), errors.As(err, &th), errors.As(err, &au), errors.As(err, &pe), errors.As(err, &uo):
	default:
		t.Fatalf("op %d: error of no known class (%T): %v", op, err, err)
	}
	if err.Error() == "" {
		t.Fatalf("op %d: empty error text", op)
	}
	if bytes.Contains([]byte(err.Error()), []byte(testSecret)) {
		t.Fatalf("op %d: error names the secret: %v", op, err)
	}
	// The answer came back: whatever it held, a create must not be retried
	// blindly as transient (it may have made the order).
	if op == fuzzCreate && providers.ClassOf(err) == providers.ClassTransient {
		t.Fatalf("create answered transient after the provider answered: %v", err)
	}
}

// FuzzResponses serves fuzzed bytes (with a fuzzed HTTP status and
// Retry-After) as the answer to each operation of the client. Whatever the
// provider answers, the client must not panic, must return a value or an
// error of a known class (never both, never neither), must never quote a
// successful preview with a negative amount, and a successful create must
// name at least one order.
func FuzzResponses(f *testing.F) {
	seeds := []struct {
		op     int
		status uint16
		ra     string
		body   string
	}{
		{fuzzPreview, 200, "", samplePreviewAnswer},
		{fuzzPreview, 200, "", `{"code":200,"data":{"orderPreviewResuslt":[{"status":true,"sumPayment":-1,"sumCarriage":-600,"sumPaymentNoCarriage":5,"tradeModelList":[{"tradeType":"t","opSupport":true}]}]}}`},
		{fuzzPreview, 200, "", `{"code":200,"data":{"orderPreviewResuslt":[{"status":true,"sumPayment":"12.5","tradeModelList":[{"tradeType":"t","opSupport":true}],"cargoList":[{"amount":-3,"offerId":"x"}]}]}}`},
		{fuzzPreview, 200, "", `{"code":200,"data":{"orderPreviewResuslt":[{"status":false,"resultCode":"500_004","message":"out of stock"}]}}`},
		{fuzzPreview, 200, "", `{"code":200,"data":{"orderPreviewResuslt":[]}}`},
		{fuzzPreview, 200, "", `{"code":200,"data":null}`},
		{fuzzPreview, 200, "", `{"code":"0","data":{"orderPreviewResuslt":[{"status":true,"sumPayment":1125899906842624}]}}`},
		{fuzzPreview, 429, "3", ``},
		{fuzzPreview, 200, "", `{"code":429,"msg":"gw.QosAppFrequencyLimit"}`},
		{fuzzPreview, 400, "", `{"code":400,"msg":"500_004: out of stock"}`},
		{fuzzCreate, 200, "", `{"code":200,"data":{"orderId":"3391234567890123456","totalSuccessAmount":2996,"postFee":600,"failedOfferList":[]}}`},
		{fuzzCreate, 200, "", `{"code":0,"data":{"orderId":3391234567890123457,"orderList":[{"orderId":"A"},{"orderId":""},{"orderId":"A"}]}}`},
		{fuzzCreate, 200, "", `{"code":200,"data":{"orderId":"","failedOfferList":[{"offerId":1,"specId":"s","errorCode":"500_004","errorMessage":"x"}]}}`},
		{fuzzCreate, 200, "", `{"code":200,"data":{}}`},
		{fuzzCreate, 200, "", `{"code":200}`},
		{fuzzCreate, 502, "", `<html>bad gateway</html>`},
		{fuzzCreate, 200, "", `{"code":500,"msg":"busy"}`},
		{fuzzCreate, 404, "", `{"code":404,"msg":"no"}`},
		{fuzzCreate, 200, "", `{"code":200,"data":{"orderId":{}}}`},
		{fuzzLookup, 200, "", `{"code":200,"data":{"total":3,"list":[{"orderId":"1","outOrderId":"UP-2026-000123"},{"orderId":2},{"orderId":"3","outOrderId":"other"}]}}`},
		{fuzzLookup, 200, "", `{"code":200,"data":{"total":0}}`},
		{fuzzLookup, 200, "", `{"code":404,"msg":"not found"}`},
		{fuzzLookup, 200, "", `{"code":200,"data":{"total":"x"}}`},
		{fuzzLookup, 200, "", `{"code":200,"data":{"total":0,"list":[]}}`},
		{fuzzLookup, 200, "", `{"code":200,"data":{}}`},
		{fuzzLookup, 200, "", `{"code":200,"data":null}`},
		{fuzzLookup, 200, "", `{"code":200,"data":{"total":2,"list":[{"orderId":"X","outOrderId":"other"},{"orderId":"Y"}]}}`},
		{fuzzLookup, 499, "", `<html><body><h1>504 Gateway Time-out</h1></body></html>`},
		{fuzzLookup, 404, "", `Not Found`},
		{fuzzCreate, 499, "", `<html><body><h1>504 Gateway Time-out</h1></body></html>`},
		{fuzzCreate, 408, "", `<html><body><h1>408 Request Timeout</h1></body></html>`},
		{fuzzCreate, 400, "", `<html><body>bad request</body></html>`},
		{fuzzCreate, 401, "", `unauthorized`},
		{fuzzCreate, 200, "", `{"code":200,"data":{"orderId":"A","failedOfferList":[{"offerId":"x","specId":1,"errorCode":7}]}}`},
		{fuzzDetails, 403, "", `<html>forbidden</html>`},
		{fuzzDetails, 200, "", `{"code":200,"data":{"baseInfo":{"id":"9","outOrderId":"UP-1","status":"waitbuyerpay","totalAmount":2996,"shippingFee":600}}}`},
		{fuzzDetails, 200, "", `{"code":200,"data":{"baseInfo":{"status":"waitsellersend","totalAmount":-5},"nativeLogistics":{"logisticsItems":[{}]}}}`},
		{fuzzDetails, 401, "", `{"code":401,"msg":"bad signature"}`},
		{fuzzDetails, 200, "", `{"code":200,"data":[]}`},
		{fuzzDetails, 200, "", `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":[{"productID":623456789012,"skuID":"s1","quantity":2},{"productID":"7","skuID":8,"quantity":"1"}]}}`},
		{fuzzDetails, 200, "", `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":[]}}`},
		{fuzzDetails, 200, "", `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":[{"productID":0,"quantity":1},null]}}`},
		{fuzzDetails, 200, "", `{"code":200,"data":{"baseInfo":{"status":"waitbuyerpay"},"productItems":[{"productID":1,"quantity":1.5}]}}`},
		{fuzzTrace, 200, "", traceAnswer},
		{fuzzTrace, 200, "", `{"code":200,"data":{"baseInfo":{"status":"waitsellersend"}}}`},
		{fuzzTraceRef, 200, "", traceAnswer},
		{fuzzTraceRef, 200, "", `{"code":200,"data":{"logisticsTrace":[{"logisticsBillNo":"SF9","logisticsSteps":[{"acceptTime":12}]}]}}`},
		{fuzzCancel, 200, "", `{"code":200,"data":true}`},
		{fuzzCancel, 200, "", `{"code":200,"data":false}`},
		{fuzzCancel, 200, "", `{"code":200}`},
		{fuzzCancel, 200, "", `{"code":400,"msg":"CLOSE_ORDER_TOO_FAST"}`},
		{fuzzCancel, 503, "Wed, 21 Oct 2015 07:28:00 GMT", ``},
		{fuzzCancel, 200, "", `{"code":9223372036854775807,"msg":"` + testSecret + `"}`},
		{fuzzCancel, 200, "", `null`},
		{fuzzCancel, 200, "", `{"code":null}`},
		{fuzzCancel, 200, "", `{"code":1e3}`},
	}
	for _, s := range seeds {
		f.Add(uint8(s.op), s.status, s.ra, []byte(s.body))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, opByte uint8, status uint16, retryAfter string, body []byte) {
		op := int(opByte) % fuzzOps
		st := fuzzStatus(status)
		c, err := New(Config{
			BaseURL: "https://xportcn.invalid/api", AccessKey: "k", AccessSecret: testSecret,
			HTTPClient: &http.Client{Transport: &bytesTransport{status: st, retryAfter: retryAfter, body: body}},
		})
		if err != nil {
			t.Fatal(err)
		}
		req := sampleOrder()
		var got any
		switch op {
		case fuzzPreview:
			q, err := c.Preview(ctx, req)
			if err == nil {
				if q == nil {
					t.Fatal("Preview returned neither a quote nor an error")
				}
				if q.Goods < 0 || q.Freight < 0 || q.Service < 0 || q.Total < 0 {
					t.Fatalf("successful preview with a negative amount: %+v from %q", q, body)
				}
				for i, l := range q.Lines {
					if l.UnitPrice < 0 || l.Amount < 0 {
						t.Fatalf("successful preview line %d with a negative amount: %+v from %q", i, l, body)
					}
				}
				if q.TradeType == "" {
					t.Fatalf("successful preview without a trade type: %+v", q)
				}
			} else if q != nil {
				got = q
			}
			checkResult(t, op, got, err)
		case fuzzCreate:
			pl, err := c.Create(ctx, req, &providers.Quote{TradeType: "assureTrade"})
			if err == nil {
				if pl == nil || len(pl.OrderIDs) == 0 {
					t.Fatalf("successful create names no order: %+v from %q", pl, body)
				}
				for _, id := range pl.OrderIDs {
					if id == "" {
						t.Fatalf("successful create names an empty order id: %+v", pl)
					}
				}
			} else if pl != nil {
				got = pl
			}
			checkResult(t, op, got, err)
		case fuzzLookup:
			pl, err := c.Lookup(ctx, req.OutOrderID)
			if err == nil {
				if pl == nil || len(pl.OrderIDs) == 0 {
					t.Fatalf("successful lookup names no order: %+v", pl)
				}
				seen := map[string]bool{}
				for _, id := range pl.OrderIDs {
					if id == "" || seen[id] {
						t.Fatalf("lookup ids empty or repeated: %q", pl.OrderIDs)
					}
					seen[id] = true
				}
				// Only exact matches are adopted: every id is listed with
				// our outOrderId.
				var d struct {
					Data listData `json:"data"`
				}
				_ = json.Unmarshal(body, &d)
				ours := map[string]bool{}
				if d.Data.List != nil {
					for _, e := range *d.Data.List {
						if string(e.OutOrderID) == req.OutOrderID {
							ours[string(e.OrderID)] = true
						}
					}
				}
				for _, id := range pl.OrderIDs {
					if !ours[id] {
						t.Fatalf("lookup adopted %q, which is not listed with outOrderId %q: %q", id, req.OutOrderID, body)
					}
				}
			} else if pl != nil {
				got = pl
			}
			checkResult(t, op, got, err)
			if errors.Is(err, providers.ErrNotFound) && !explicitNone(st, body) {
				t.Fatalf("lookup answered ErrNotFound to HTTP %d %q, which does not say so explicitly", st, body)
			}
		case fuzzDetails:
			st, err := c.Details(ctx, "3391234567890123456")
			if err == nil {
				if st == nil || st.OrderID == "" {
					t.Fatalf("successful details without an order id: %+v", st)
				}
				if st.Parcel != nil && st.Parcel.BillNo == "" && st.Parcel.Carrier == "" {
					t.Fatalf("details names an empty parcel: %+v", st)
				}
				checkLines(t, st, body)
			} else if st != nil {
				got = st
			}
			checkResult(t, op, got, err)
		case fuzzTrace, fuzzTraceRef:
			var ref *providers.ParcelRef
			if op == fuzzTraceRef {
				ref = &providers.ParcelRef{Carrier: "SF", BillNo: "SF9"}
			}
			p, err := c.Trace(ctx, "3391234567890123456", ref)
			if err == nil {
				if p == nil {
					t.Fatal("Trace returned neither a parcel nor an error")
				}
				if ref != nil && p.BillNo != ref.BillNo {
					t.Fatalf("trace of bill %q answered bill %q", ref.BillNo, p.BillNo)
				}
			} else if p != nil {
				got = p
			}
			checkResult(t, op, got, err)
		case fuzzCancel:
			err = c.Cancel(ctx, "3391234567890123456", "buyer asked")
			checkResult(t, op, nil, err)
		}
		// Only the provider's envelope refuses: an answer without one (or
		// under a gateway status) is never permanent, for any operation.
		var pe *providers.PermanentError
		if errors.As(err, &pe) && !refusalEnvelope(st, body) {
			t.Fatalf("op %d: permanent error %v from HTTP %d %q, which is no provider refusal", op, err, st, body)
		}
	})
}

// checkLines asserts the lines of a successful details: every one a
// positive product with a quantity of at least 1, one per entry of the
// answer's productItems, and nil (never empty) when that list is empty or
// absent: the provider said nothing.
func checkLines(t *testing.T, st *providers.OrderStatus, body []byte) {
	t.Helper()
	if st.Lines != nil && len(st.Lines) == 0 {
		t.Fatalf("details lines empty but not nil: %+v", st)
	}
	for i, l := range st.Lines {
		if l.ProductID <= 0 || l.Quantity < 1 {
			t.Fatalf("details line %d without a product or a quantity: %+v from %q", i, l, body)
		}
	}
	var env envelope
	var d detailData
	if json.Unmarshal(body, &env) != nil || json.Unmarshal(env.Data, &d) != nil {
		t.Fatalf("details succeeded on an answer the test cannot decode: %q", body)
	}
	if len(st.Lines) != len(d.ProductItems) {
		t.Fatalf("details has %d lines, the answer %d items: %q", len(st.Lines), len(d.ProductItems), body)
	}
}

// refusalEnvelope reports whether an answer is the provider's own refusal
// or success: an envelope with a code, under a status that is not a
// gateway's.
func refusalEnvelope(status int, body []byte) bool {
	if gatewayStatus(status) || status == http.StatusTooManyRequests {
		return false
	}
	var env envelope
	if json.Unmarshal(body, &env) != nil || env.Code == nil {
		return false
	}
	return status >= 200 && status <= 299 || !env.ok()
}

// explicitNone reports whether a list answer says explicitly that there is
// no such order: envelope code 404, or a 2xx success with an empty list.
func explicitNone(status int, body []byte) bool {
	if !refusalEnvelope(status, body) {
		return false
	}
	var env envelope
	_ = json.Unmarshal(body, &env)
	if int64(*env.Code) == codeNotFound {
		return true
	}
	var d listData
	return env.ok() && json.Unmarshal(env.Data, &d) == nil && d.List != nil && len(*d.List) == 0
}

// checkResult asserts the error half of an operation's result: with an
// error, no value came with it, and the error is classified.
func checkResult(t *testing.T, op int, valueWithErr any, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if valueWithErr != nil {
		t.Fatalf("op %d returned a value and an error: %+v, %v", op, valueWithErr, err)
	}
	checkClassified(t, op, err)
}
