package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// start makes and starts a simulator on a free loopback port.
func start(t testing.TB, cfg Config) *Sim {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// xEnv is the Xportcn envelope as a test reads it.
type xEnv struct {
	RequestID string          `json:"requestId"`
	Code      int             `json:"code"`
	Msg       string          `json:"msg"`
	Data      json.RawMessage `json:"data"`
}

// xHeaders signs an Xportcn call with the default credentials.
func xHeaders(ts string) http.Header {
	h := http.Header{}
	nonce := "0123456789abcdef0123456789abcdef"
	h.Set("access-key", "sim-ak")
	h.Set("timestamp", ts)
	h.Set("nonce-str", nonce)
	h.Set("user-id", "sim-user")
	h.Set("signature", XportcnSign("sim-ak", ts, nonce, "sim-secret-x"))
	h.Set("Content-Type", "application/json")
	return h
}

func nowSeconds() string { return strconv.FormatInt(time.Now().Unix(), 10) }

// xPost sends a signed Xportcn call; edit may change the headers.
func xPost(t testing.TB, s *Sim, path string, body any, edit func(http.Header)) (*http.Response, xEnv, error) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.XportcnURL()+path, bytes.NewReader(b))
	req.Header = xHeaders(nowSeconds())
	if edit != nil {
		edit(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, xEnv{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env xEnv
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("xportcn %s: bad JSON %q: %v", path, raw, err)
		}
	}
	return resp, env, nil
}

// xOK sends a signed Xportcn call that must succeed and decodes data.
func xOK(t testing.TB, s *Sim, path string, body, data any) {
	t.Helper()
	resp, env, err := xPost(t, s, path, body, nil)
	if err != nil {
		t.Fatalf("xportcn %s: %v", path, err)
	}
	if resp.StatusCode != 200 || env.Code != 200 {
		t.Fatalf("xportcn %s: HTTP %d code %d msg %q", path, resp.StatusCode, env.Code, env.Msg)
	}
	if data != nil {
		if err := json.Unmarshal(env.Data, data); err != nil {
			t.Fatalf("xportcn %s: data %s: %v", path, env.Data, err)
		}
	}
}

// xCart is an Xportcn preview/create body.
func xCart(outOrderID string, lines ...[2]int64) map[string]any {
	var cargo []map[string]any
	for _, l := range lines {
		cargo = append(cargo, map[string]any{"offerId": l[0], "specId": "spec-1", "quantity": l[1]})
	}
	return map[string]any{
		"outOrderId":     outOrderID,
		"addressParam":   map[string]any{"fullName": "Li Lei", "mobile": "13800000000", "address": "1 Road"},
		"cargoParamList": cargo,
		"tradeType":      XportcnTradeType,
	}
}

type xCreated struct {
	OrderID            string `json:"orderId"`
	TotalSuccessAmount int64  `json:"totalSuccessAmount"`
	PostFee            int64  `json:"postFee"`
	OrderList          []struct {
		OrderID string `json:"orderId"`
	} `json:"orderList"`
}

func xCreate(t testing.TB, s *Sim, outOrderID string, lines ...[2]int64) xCreated {
	t.Helper()
	var c xCreated
	xOK(t, s, XportcnPathCreate, xCart(outOrderID, lines...), &c)
	return c
}

type xDetail struct {
	BaseInfo struct {
		ID          string `json:"id"`
		OutOrderID  string `json:"outOrderId"`
		Status      string `json:"status"`
		TotalAmount int64  `json:"totalAmount"`
	} `json:"baseInfo"`
	NativeLogistics struct {
		LogisticsItems []struct {
			LogisticsBillNo string `json:"logisticsBillNo"`
			Status          string `json:"status"`
		} `json:"logisticsItems"`
	} `json:"nativeLogistics"`
	LogisticsTrace []struct {
		Status         string `json:"status"`
		LogisticsSteps []struct {
			AcceptTime string `json:"acceptTime"`
			Remark     string `json:"remark"`
		} `json:"logisticsSteps"`
	} `json:"logisticsTrace"`
}

// dEnv is the Depal envelope as a test reads it.
type dEnv struct {
	Code      string          `json:"code"`
	Msg       string          `json:"msg"`
	Data      json.RawMessage `json:"data"`
	RequestID string          `json:"requestId"`
}

// dToken fetches a Depal token with the given credentials.
func dTokenWith(t testing.TB, s *Sim, appKey, secret string) (dEnv, string) {
	t.Helper()
	u := s.DepalURL() + "/openapi/auth/" + appKey + "/system.token.get?appSecret=" + url.QueryEscape(secret)
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("token.get: %v", err)
	}
	defer resp.Body.Close()
	var env dEnv
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("token.get: %v", err)
	}
	var d struct {
		AccessToken string `json:"accessToken"`
		ExpiresAt   int64  `json:"expiresAt"`
	}
	_ = json.Unmarshal(env.Data, &d)
	return env, d.AccessToken
}

func dToken(t testing.TB, s *Sim) string {
	t.Helper()
	env, tok := dTokenWith(t, s, "simapp", "sim-secret-d")
	if env.Code != "200" || tok == "" {
		t.Fatalf("token.get: code %s msg %q", env.Code, env.Msg)
	}
	return tok
}

// dPost sends a signed Depal call; edit may change the request.
func dPost(t testing.TB, s *Sim, token, method string, body any, edit func(*http.Request)) (*http.Response, dEnv, error) {
	t.Helper()
	b, _ := json.Marshal(body)
	path := "/openapi/1/simapp/" + method
	req, _ := http.NewRequest(http.MethodPost, s.DepalURL()+path, bytes.NewReader(b))
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-depal-timestamp", ts)
	req.Header.Set("x-depal-access-token", token)
	req.Header.Set("x-depal-signature", DepalSign("sim-secret-d", path, ts, token, b))
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, dEnv{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env dEnv
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("depal %s: bad JSON %q: %v", method, raw, err)
		}
	}
	return resp, env, nil
}

func dOK(t testing.TB, s *Sim, token, method string, body, data any) {
	t.Helper()
	resp, env, err := dPost(t, s, token, method, body, nil)
	if err != nil {
		t.Fatalf("depal %s: %v", method, err)
	}
	if resp.StatusCode != 200 || env.Code != "200" {
		t.Fatalf("depal %s: HTTP %d code %s msg %q", method, resp.StatusCode, env.Code, env.Msg)
	}
	if data != nil {
		if err := json.Unmarshal(env.Data, data); err != nil {
			t.Fatalf("depal %s: data %s: %v", method, env.Data, err)
		}
	}
}

func dCart(outOrderID string, lines ...[2]int64) map[string]any {
	var cargo []map[string]any
	for _, l := range lines {
		cargo = append(cargo, map[string]any{"productId": l[0], "skuId": "sku-1", "quantity": l[1]})
	}
	return map[string]any{
		"outOrderId": outOrderID,
		"address":    map[string]any{"userName": "Li Lei", "phone": "+8613800000000", "country": "CN", "address": "1 Road"},
		"cargoList":  cargo,
	}
}

// dPreviewSubmit previews then submits a Depal cart, returning previewId and orderId.
func dPreviewSubmit(t testing.TB, s *Sim, token, outOrderID string, lines ...[2]int64) (string, string) {
	t.Helper()
	var pv struct {
		PreviewID string `json:"previewId"`
	}
	body := dCart(outOrderID, lines...)
	dOK(t, s, token, DepalMethodPreview, body, &pv)
	body["previewId"] = pv.PreviewID
	var sub struct {
		OrderID string `json:"orderId"`
	}
	dOK(t, s, token, DepalMethodSubmit, body, &sub)
	return pv.PreviewID, sub.OrderID
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
