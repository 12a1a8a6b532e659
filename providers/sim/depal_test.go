package sim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"orderflow/providers"
)

func TestDepalTokenReuseAndExpiry(t *testing.T) {
	s := start(t, Config{TokenTTL: 300 * time.Millisecond})
	tok := dToken(t, s)
	if again := dToken(t, s); again != tok {
		t.Fatalf("token.get gave %q then %q, want the same token until expiry", tok, again)
	}
	dOK(t, s, tok, DepalMethodPreview, dCart("tk-1", [2]int64{1, 1}), nil)

	var fresh string
	waitFor(t, 5*time.Second, "a new token after TokenTTL", func() bool {
		fresh = dToken(t, s)
		return fresh != tok
	})
	_, env, err := dPost(t, s, tok, DepalMethodPreview, dCart("tk-1", [2]int64{1, 1}), nil)
	if err != nil || env.Code != "510" {
		t.Fatalf("expired token: code %s err %v, want 510", env.Code, err)
	}
	if got := s.Counters().TokenExpired; got != 1 {
		t.Errorf("TokenExpired %d, want 1", got)
	}
	dOK(t, s, fresh, DepalMethodPreview, dCart("tk-1", [2]int64{1, 1}), nil)

	s.ExpireTokens()
	if _, env, _ := dPost(t, s, fresh, DepalMethodDetail, map[string]any{"outOrderId": "x"}, nil); env.Code != "510" {
		t.Errorf("after ExpireTokens: code %s, want 510", env.Code)
	}
}

func TestDepalAuthRefusals(t *testing.T) {
	s := start(t, Config{})
	tok := dToken(t, s)
	tests := []struct {
		name string
		edit func(*http.Request)
		code string
	}{
		{"good", nil, "200"},
		{"bad signature", func(r *http.Request) { r.Header.Set("x-depal-signature", "00") }, "610"},
		{"signed with the wrong secret", func(r *http.Request) {
			r.Header.Set("x-depal-signature", DepalSign("wrong", "/openapi/1/simapp/"+DepalMethodPreview, r.Header.Get("x-depal-timestamp"), tok, nil))
		}, "610"},
		{"signed with the mount prefix", func(r *http.Request) {
			b, _ := r.GetBody()
			var raw [4096]byte
			n, _ := b.Read(raw[:])
			r.Header.Set("x-depal-signature", DepalSign("sim-secret-d", "/depal/openapi/1/simapp/"+DepalMethodPreview, r.Header.Get("x-depal-timestamp"), tok, raw[:n]))
		}, "610"},
		{"missing timestamp", func(r *http.Request) { r.Header.Del("x-depal-timestamp") }, "620"},
		{"unknown token", func(r *http.Request) { r.Header.Set("x-depal-access-token", "tok-nope") }, "510"},
	}
	var sig int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, env, err := dPost(t, s, tok, DepalMethodPreview, dCart("au", [2]int64{1, 1}), tt.edit)
			if err != nil || env.Code != tt.code {
				t.Fatalf("code %s (%s) err %v, want %s", env.Code, env.Msg, err, tt.code)
			}
			if tt.code == "610" || tt.code == "620" {
				sig++
			}
			if got := s.Counters().SignatureFailures[providers.Depal]; got != sig {
				t.Errorf("SignatureFailures %d, want %d", got, sig)
			}
		})
	}
	for _, c := range []struct{ key, secret string }{{"simapp", "wrong"}, {"other", "sim-secret-d"}} {
		if env, tok := dTokenWith(t, s, c.key, c.secret); env.Code != "610" || tok != "" {
			t.Errorf("token.get(%s, %s): code %s token %q, want 610", c.key, c.secret, env.Code, tok)
		}
	}
}

func TestDepalPreviewSubmitAnd1010(t *testing.T) {
	s := start(t, Config{})
	tok := dToken(t, s)
	var pv struct {
		PreviewID          string `json:"previewId"`
		ProductTotalAmount string `json:"productTotalAmount"`
		FreightTotalAmount string `json:"freightTotalAmount"`
		ServiceTotalAmount string `json:"serviceTotalAmount"`
		CargoList          []struct {
			Price  string `json:"price"`
			Amount string `json:"amount"`
		} `json:"cargoList"`
	}
	body := dCart("sub-1", [2]int64{5000, 10})
	dOK(t, s, tok, DepalMethodPreview, body, &pv)
	if pv.ProductTotalAmount != "510.00" || pv.FreightTotalAmount != "10.00" || pv.ServiceTotalAmount != "10.20" ||
		pv.CargoList[0].Price != "51.00" || pv.CargoList[0].Amount != "510.00" || pv.PreviewID == "" {
		t.Fatalf("preview %+v", pv)
	}
	body["previewId"] = pv.PreviewID
	var sub struct {
		OrderID string `json:"orderId"`
	}
	dOK(t, s, tok, DepalMethodSubmit, body, &sub)
	_, env, _ := dPost(t, s, tok, DepalMethodSubmit, body, nil)
	var again struct {
		OrderID string `json:"orderId"`
	}
	if env.Code != "1010" || !strings.Contains(string(env.Data), sub.OrderID) {
		t.Fatalf("re-submit: code %s data %s, want 1010 with %s", env.Code, env.Data, sub.OrderID)
	}
	_ = again
	if c := s.Counters(); c.Duplicates != 0 || c.OrdersCreated[providers.Depal] != 1 {
		t.Fatalf("re-submit of a previewId counted: %+v", c)
	}
	var d struct {
		OrderID            string `json:"orderId"`
		OutOrderID         string `json:"outOrderId"`
		Status             string `json:"status"`
		ServiceTotalAmount string `json:"serviceTotalAmount"`
	}
	dOK(t, s, tok, DepalMethodDetail, map[string]any{"outOrderId": "sub-1"}, &d)
	if d.OrderID != sub.OrderID || d.Status != "waitbuyerpay" || d.ServiceTotalAmount != "10.20" {
		t.Errorf("details by outOrderId %+v", d)
	}
	// A new preview for the same outOrderId makes a second order: a duplicate.
	dPreviewSubmit(t, s, tok, "sub-1", [2]int64{5000, 10})
	if c := s.Counters(); c.Duplicates != 1 {
		t.Errorf("Duplicates %d, want 1", c.Duplicates)
	}
	body["previewId"] = "PV-unknown"
	if _, env, _ := dPost(t, s, tok, DepalMethodSubmit, body, nil); env.Code != "630" {
		t.Errorf("unknown previewId: code %s, want 630", env.Code)
	}
	if _, env, _ := dPost(t, s, tok, DepalMethodDetail, map[string]any{"outOrderId": "none"}, nil); env.Code != "640" {
		t.Errorf("details of no order: code %s, want 640", env.Code)
	}
}

func TestDepalPlannedErrors(t *testing.T) {
	s := start(t, Config{})
	tok := dToken(t, s)
	for n := 1; n <= 9; n++ {
		t.Run(PlannedErrorCode(n), func(t *testing.T) {
			_, env, err := dPost(t, s, tok, DepalMethodPreview, dCart("pe", [2]int64{PlannedErrorBase + int64(n), 1}), nil)
			if err != nil {
				t.Fatal(err)
			}
			word := PlannedErrorCode(n)
			if n%2 == 1 {
				if env.Code != word {
					t.Errorf("code %s, want %s", env.Code, word)
				}
			} else if env.Code != "1000" || !strings.HasPrefix(env.Msg, word+":") {
				t.Errorf("code %s msg %q, want 1000 with %s in msg", env.Code, env.Msg, word)
			}
		})
	}
}

func TestDepalLifecycleAndTrace(t *testing.T) {
	clk := NewManualClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	s := start(t, Config{Clock: clk})
	tok := dToken(t, s)
	_, id := dPreviewSubmit(t, s, tok, "life-1", [2]int64{1, 1})
	type detail struct {
		Status    string `json:"status"`
		Logistics *struct {
			ChannelCode string `json:"channelCode"`
			LogisticNo  string `json:"logisticNo"`
		} `json:"logistics"`
	}
	var d detail
	dOK(t, s, tok, DepalMethodDetail, map[string]any{"orderId": id}, &d)
	if d.Status != "waitbuyerpay" || d.Logistics != nil {
		t.Fatalf("new order %+v", d)
	}
	clk.Advance(32 * time.Minute)
	dOK(t, s, tok, DepalMethodDetail, map[string]any{"orderId": id}, &d)
	if d.Status != "waitbuyerreceive" || d.Logistics == nil {
		t.Fatalf("shipped order %+v", d)
	}
	var tr []struct {
		Date  string `json:"date"`
		Event string `json:"event"`
	}
	dOK(t, s, tok, DepalMethodTrace, d.Logistics, &tr)
	if len(tr) != 1 || tr[0].Event != "WAITACCEPT" {
		t.Fatalf("trace %+v", tr)
	}
	clk.Advance(3 * time.Hour)
	dOK(t, s, tok, DepalMethodTrace, d.Logistics, &tr)
	if len(tr) != 4 || tr[3].Event != "SIGN" || tr[0].Date >= tr[3].Date {
		t.Fatalf("trace %+v, want 4 events ending SIGN, oldest first", tr)
	}
	clk.Advance(2 * time.Hour)
	dOK(t, s, tok, DepalMethodDetail, map[string]any{"orderId": id}, &d)
	if d.Status != "success" {
		t.Errorf("status %q, want success", d.Status)
	}
	_, early := dPreviewSubmit(t, s, tok, "life-2", [2]int64{1, 1})
	_ = early
	if _, env, _ := dPost(t, s, tok, DepalMethodTrace, map[string]any{"channelCode": Carrier, "logisticNo": "YT000000000000"}, nil); env.Code != "640" {
		t.Errorf("trace of an unknown bill: code %s, want 640", env.Code)
	}
	if _, env, _ := dPost(t, s, tok, DepalMethodCancel, map[string]any{"orderId": early, "cancelReason": "x"}, nil); env.Code != "630" || !strings.Contains(env.Msg, "CLOSE_ORDER_TOO_FAST") {
		t.Errorf("cancel at once: code %s msg %q", env.Code, env.Msg)
	}
	clk.Advance(time.Minute)
	dOK(t, s, tok, DepalMethodCancel, map[string]any{"orderId": early, "cancelReason": "x"}, nil)
	if v := s.Order(providers.Depal, "life-2"); len(v) != 1 || v[0].Status != "cancel" {
		t.Errorf("views %+v", v)
	}
}
