package depal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"orderflow/providers"
)

// goodToken is a token.get answer valid until 2100.
const goodToken = `{"code":"200","msg":"","data":{"accessToken":"tok-fuzz","expiresAt":4102444800000},"requestId":"r"}`

// goodDetail is a details answer for the calls made after a fuzzed token.
const goodDetail = `{"code":"200","data":{"orderId":"3391234567890123456","status":"waitbuyerpay","productTotalAmount":"2.48"}}`

// fuzzTransport answers without a network: token.get with tokenBody at
// tokenStatus, every order call with body at status (and Retry-After).
type fuzzTransport struct {
	tokenStatus int
	tokenBody   []byte
	status      int
	retryAfter  string
	body        []byte
}

func (ft *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	status, body := ft.status, ft.body
	if strings.HasSuffix(r.URL.Path, "/system.token.get") {
		status, body = ft.tokenStatus, ft.tokenBody
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if ft.retryAfter != "" {
		h.Set("Retry-After", ft.retryAfter)
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Header: h,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

// The operations FuzzResponses calls, picked by the fuzzed op byte.
// fuzzToken serves the fuzzed bytes as the token.get answer, then makes
// a details call answered goodDetail.
const (
	fuzzPreview = iota
	fuzzCreate
	fuzzLookup
	fuzzDetails
	fuzzTrace
	fuzzTraceRef
	fuzzCancel
	fuzzToken
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

// checkClassified fails unless err is one of the typed errors of package
// providers, or ErrNotFound where the operation may answer it: an error
// of no class would be retried blindly as "transient" by ClassOf.
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
		if op == fuzzPreview || op == fuzzCreate || op == fuzzCancel {
			t.Fatalf("op %d answered ErrNotFound, which only lookups may: %v", op, err)
		}
	case errors.As(err, &te), errors.As(err, &th), errors.As(err, &au), errors.As(err, &pe), errors.As(err, &uo):
	default:
		t.Fatalf("op %d: error of no known class (%T): %v", op, err, err)
	}
	msg := err.Error()
	if msg == "" {
		t.Fatalf("op %d: empty error text", op)
	}
	if strings.Contains(msg, testSecret) || strings.Contains(msg, url.QueryEscape(testSecret)) {
		t.Fatalf("op %d: error names the secret: %v", op, err)
	}
	// A create whose answer came back 2xx but unreadable may have made the
	// order: it must not be retried blindly as transient.
	if op == fuzzCreate && providers.ClassOf(err) == providers.ClassTransient {
		t.Fatalf("create answered transient after the provider answered: %v", err)
	}
}

// FuzzResponses serves fuzzed bytes (with a fuzzed HTTP status and
// Retry-After) as the answer to each operation, token.get included.
// Whatever Depal answers, the client must not panic, must return a value
// or an error of a known class (never both, never neither), must never
// quote a successful preview with a negative amount, and a successful
// create must name at least one order.
func FuzzResponses(f *testing.F) {
	env := func(code, data string) string {
		return `{"code":"` + code + `","msg":"","data":` + data + `,"requestId":"req-1"}`
	}
	seeds := []struct {
		op     int
		status uint16
		ra     string
		body   string
	}{
		{fuzzPreview, 200, "", env("200", previewAnswer)},
		{fuzzPreview, 200, "", env("200", `{"previewId":"p","productTotalAmount":"-0.01"}`)},
		{fuzzPreview, 200, "", env("200", `{"previewId":"p","productTotalAmount":2.485}`)},
		{fuzzPreview, 200, "", env("200", `{"previewId":"p","productTotalAmount":"999999999999999.99","freightTotalAmount":"999999999999999.99","serviceTotalAmount":"999999999999999.99"}`)},
		{fuzzPreview, 200, "", env("200", `{"previewId":"","productTotalAmount":"1"}`)},
		{fuzzPreview, 200, "", env("R500_004", `null`)},
		{fuzzPreview, 200, "", `{"code":"1000","msg":"R500_007 no consignment relation","data":null}`},
		{fuzzPreview, 200, "", `{"code":600,"msg":"rate limited"}`},
		{fuzzPreview, 429, "2", ``},
		{fuzzPreview, 200, "", `{"code":"510","msg":"token expired"}`},
		{fuzzPreview, 200, "", `{"code":"610","msg":"bad signature ` + testSecret + `"}`},
		{fuzzCreate, 200, "", env("200", `{"orderId":"3391234567890123456"}`)},
		{fuzzCreate, 200, "", env("200", `{"orderId":3391234567890123456,"orderIds":["a","","a","b"]}`)},
		{fuzzCreate, 200, "", env("1010", `{"orderId":"3391234567890123456"}`)},
		{fuzzCreate, 200, "", env("1010", `null`)},
		{fuzzCreate, 200, "", env("200", `{}`)},
		{fuzzCreate, 200, "", env("200", `[]`)},
		{fuzzCreate, 200, "", env("500", `null`)},
		{fuzzCreate, 502, "", `<html>bad gateway</html>`},
		{fuzzCreate, 200, "", `not json`},
		{fuzzCreate, 404, "", `not json`},
		{fuzzLookup, 200, "", env("200", `{"orderId":"3391234567890123456","outOrderId":"UP-1","status":"waitbuyerpay","productTotalAmount":"2.48"}`)},
		{fuzzLookup, 200, "", env("640", `null`)},
		{fuzzLookup, 200, "", env("200", `{"orderId":"","status":"x"}`)},
		{fuzzLookup, 200, "", env("200", `{"orderId":"1","productTotalAmount":"x"}`)},
		{fuzzLookup, 200, "", env("200", `{}`)},
		{fuzzLookup, 200, "", env("200", `null`)},
		{fuzzLookup, 200, "", env("200", `{"orderId":"9","outOrderId":"UP-2"}`)},
		{fuzzLookup, 499, "", `<html><body><h1>504 Gateway Time-out</h1></body></html>`},
		{fuzzLookup, 404, "", env("640", `null`)},
		{fuzzCreate, 499, "", `<html><body><h1>504 Gateway Time-out</h1></body></html>`},
		{fuzzCreate, 408, "", `<html><body><h1>408 Request Timeout</h1></body></html>`},
		{fuzzCreate, 400, "", env("630", `null`)},
		{fuzzCreate, 400, "", env("200", `{"orderId":"1"}`)},
		{fuzzCreate, 200, "", env("200", `{"orderId":"1","failedOfferList":[{"offerId":"x","specId":2,"errorCode":3}]}`)},
		{fuzzCreate, 200, "", `{"msg":"ok"}`},
		{fuzzDetails, 403, "", `<html>forbidden</html>`},
		{fuzzDetails, 200, "", env("200", `{"orderId":"3391234567890123456","status":"waitbuyerreceive","productTotalAmount":"2.48","freightTotalAmount":10,"logistics":{"channelCode":"YTO","logisticNo":"YT1"}}`)},
		{fuzzDetails, 200, "", env("200", `{"status":"newword","logistics":{}}`)},
		{fuzzDetails, 200, "", env("640", `null`)},
		{fuzzDetails, 200, "", env("200", `"x"`)},
		{fuzzDetails, 200, "", env("200", `{"orderId":"1","status":"waitbuyerpay","orderItemList":[{"productId":623456789012,"skuId":"s1","quantity":2},{"productId":"7","skuId":8,"quantity":"1"}]}`)},
		{fuzzDetails, 200, "", env("200", `{"orderId":"1","status":"waitbuyerpay","orderItemList":[]}`)},
		{fuzzDetails, 200, "", env("200", `{"orderId":"1","status":"waitbuyerpay","orderItemList":[{"productId":0,"quantity":1},null]}`)},
		{fuzzDetails, 200, "", env("200", `{"orderId":"1","status":"waitbuyerpay","orderItemList":[{"productId":1,"quantity":1.5}]}`)},
		{fuzzTrace, 200, "", env("200", `{"orderId":"1","status":"waitbuyerreceive","logistics":{"channelCode":"YTO","logisticNo":"YT1"}}`)},
		{fuzzTrace, 200, "", env("200", `{"orderId":"1","status":"waitsellersend"}`)},
		{fuzzTraceRef, 200, "", env("200", traceAnswer)},
		{fuzzTraceRef, 200, "", env("200", `[]`)},
		{fuzzTraceRef, 200, "", env("200", `[{"date":"yesterday","event":"SIGN"}]`)},
		{fuzzTraceRef, 200, "", env("640", `null`)},
		{fuzzCancel, 200, "", env("200", `true`)},
		{fuzzCancel, 200, "", env("200", `false`)},
		{fuzzCancel, 200, "", env("200", `null`)},
		{fuzzCancel, 200, "", env("630", `null`)},
		{fuzzCancel, 503, "Wed, 21 Oct 2015 07:28:00 GMT", ``},
		{fuzzToken, 200, "", goodToken},
		{fuzzToken, 200, "", `{"code":"200","data":{"accessToken":"t","expiresAt":"1"}}`},
		{fuzzToken, 200, "", `{"code":"200","data":{"accessToken":"","expiresAt":4102444800000}}`},
		{fuzzToken, 200, "", `{"code":"200","data":{"accessToken":"t","expiresAt":-5}}`},
		{fuzzToken, 200, "", `{"code":"200","data":{"accessToken":"t","expiresAt":9223372036854775807}}`},
		{fuzzToken, 200, "", `{"code":"200","data":null}`},
		{fuzzToken, 200, "", `{"code":"600","msg":"slow down"}`},
		{fuzzToken, 200, "", `{"code":"500","msg":"busy"}`},
		{fuzzToken, 401, "", `{"code":"401","msg":"bad secret"}`},
		{fuzzToken, 403, "", `forbidden`},
		{fuzzToken, 200, "", `<html></html>`},
	}
	for _, s := range seeds {
		f.Add(uint8(s.op), s.status, s.ra, []byte(s.body))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, opByte uint8, status uint16, retryAfter string, body []byte) {
		op := int(opByte) % fuzzOps
		ft := &fuzzTransport{tokenStatus: http.StatusOK, tokenBody: []byte(goodToken),
			status: fuzzStatus(status), retryAfter: retryAfter, body: body}
		if op == fuzzToken {
			ft.tokenStatus, ft.tokenBody = ft.status, body
			ft.status, ft.body = http.StatusOK, []byte(goodDetail)
		}
		c, err := New(Config{BaseURL: "https://depal.invalid" + testPrefix, AppKey: testAppKey, AppSecret: testSecret,
			HTTPClient: &http.Client{Transport: ft}})
		if err != nil {
			t.Fatal(err)
		}
		req := testOrder()
		var got any // a value returned beside an error
		var err2 error
		switch op {
		case fuzzPreview:
			q, err := c.Preview(ctx, req)
			if err == nil {
				if q == nil {
					t.Fatal("Preview returned neither a quote nor an error")
				}
				if q.Goods < 0 || q.Freight < 0 || q.Service < 0 || q.Total < 0 || q.Total != q.Goods+q.Freight+q.Service {
					t.Fatalf("successful preview with a negative or inconsistent amount: %+v from %q", q, body)
				}
				for i, l := range q.Lines {
					if l.UnitPrice < 0 || l.Amount < 0 {
						t.Fatalf("successful preview line %d with a negative amount: %+v", i, l)
					}
				}
				if q.PreviewID == "" {
					t.Fatalf("successful preview without a previewId: %+v", q)
				}
			} else if q != nil {
				got = q
			}
			err2 = err
		case fuzzCreate:
			pl, err := c.Create(ctx, req, &providers.Quote{PreviewID: "pv-1"})
			if err == nil {
				if pl == nil || len(pl.OrderIDs) == 0 {
					t.Fatalf("successful create names no order: %+v from %q", pl, body)
				}
				for _, id := range pl.OrderIDs {
					if id == "" {
						t.Fatalf("successful create names an empty order id: %q", pl.OrderIDs)
					}
				}
			} else if pl != nil {
				got = pl
			}
			err2 = err
		case fuzzLookup:
			pl, err := c.Lookup(ctx, req.OutOrderID)
			if err == nil {
				if pl == nil || len(pl.OrderIDs) == 0 || pl.OrderIDs[0] == "" {
					t.Fatalf("successful lookup names no order: %+v", pl)
				}
				if pl.Total < 0 {
					t.Fatalf("lookup total negative: %+v", pl)
				}
				// Only an exact match is adopted.
				var d struct {
					Data detailData `json:"data"`
				}
				if json.Unmarshal(body, &d) != nil || d.Data.OutOrderID != req.OutOrderID || string(d.Data.OrderID) != pl.OrderIDs[0] {
					t.Fatalf("lookup adopted %q from %q, which is not an order of outOrderId %q", pl.OrderIDs, body, req.OutOrderID)
				}
			} else if pl != nil {
				got = pl
			}
			if errors.Is(err, providers.ErrNotFound) {
				if env, ok := providerEnvelope(ft.status, body); !ok || strings.TrimSpace(string(env.Code)) != codeEmptyData {
					t.Fatalf("lookup answered ErrNotFound to HTTP %d %q, which is not Depal's 640", ft.status, body)
				}
			}
			err2 = err
		case fuzzDetails, fuzzToken:
			st, err := c.Details(ctx, "3391234567890123456")
			if err == nil {
				if st == nil || st.OrderID == "" {
					t.Fatalf("successful details without an order id: %+v", st)
				}
				if st.Total < 0 {
					t.Fatalf("details total negative: %+v", st)
				}
				if st.Parcel != nil && st.Parcel.BillNo == "" {
					t.Fatalf("details names a parcel without a bill number: %+v", st)
				}
				checkLines(t, st, ft.body)
			} else if st != nil {
				got = st
			}
			err2 = err
		case fuzzTrace, fuzzTraceRef:
			var ref *providers.ParcelRef
			if op == fuzzTraceRef {
				ref = &providers.ParcelRef{Carrier: "YTO", BillNo: "YT1"}
			}
			p, err := c.Trace(ctx, "3391234567890123456", ref)
			if err == nil {
				if p == nil || len(p.Steps) == 0 {
					t.Fatalf("successful trace without steps: %+v", p)
				}
				if ref != nil && p.ParcelRef != *ref {
					t.Fatalf("trace of %+v answered parcel %+v", *ref, p.ParcelRef)
				}
			} else if p != nil {
				got = p
			}
			err2 = err
		case fuzzCancel:
			err2 = c.Cancel(ctx, "3391234567890123456", "buyer asked")
		}
		if err2 == nil {
			return
		}
		if got != nil {
			t.Fatalf("op %d returned a value and an error: %+v, %v", op, got, err2)
		}
		checkClassified(t, op, err2)
		// Only Depal's own envelope refuses: an answer without one (or
		// under a gateway status) is never permanent, for any operation.
		var pe *providers.PermanentError
		if _, ok := providerEnvelope(ft.status, body); errors.As(err2, &pe) && op != fuzzToken && !ok {
			t.Fatalf("op %d: permanent error %v from HTTP %d %q, which is no Depal envelope", op, err2, ft.status, body)
		}
	})
}

// checkLines asserts the lines of a successful details: every one a
// positive product with a quantity of at least 1, one per entry of the
// answer's orderItemList, and nil (never empty) when that list is empty
// or absent: the provider said nothing.
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
	if len(st.Lines) != len(d.OrderItemList) {
		t.Fatalf("details has %d lines, the answer %d items: %q", len(st.Lines), len(d.OrderItemList), body)
	}
}

// providerEnvelope returns the envelope of an answer that is Depal's own:
// a JSON envelope with a code, under a status that is not a gateway's
// (429, 408, 499, 5xx), and not a success code under an error status.
func providerEnvelope(status int, body []byte) (*envelope, bool) {
	if status == http.StatusTooManyRequests || status >= 500 || status == http.StatusRequestTimeout || status == statusClientClosed {
		return nil, false
	}
	var env envelope
	if json.Unmarshal(body, &env) != nil || strings.TrimSpace(string(env.Code)) == "" {
		return nil, false
	}
	if (status < 200 || status > 299) && strings.TrimSpace(string(env.Code)) == codeOK {
		return nil, false
	}
	return &env, true
}
