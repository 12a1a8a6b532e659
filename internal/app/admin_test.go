package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/intake"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

func adminServer(t *testing.T, token string) (*httptest.Server, *bundle) {
	t.Helper()
	srv := redistest.Mini(t)
	b := setup(t, srv)
	h := app.AdminHandler(app.AdminConfig{Worker: b.w, Redis: asynq.RedisClientOpt{Addr: srv.Addr},
		Metrics: http.NotFoundHandler(), Token: token})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts, b
}

func do(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// With a token, /monitoring/ and /v1/ need it; probes, metrics and the
// provider callback stay open.
func TestAdminToken(t *testing.T) {
	const token = "adm-tok-123"
	ts, _ := adminServer(t, token)
	orderJSON, _ := json.Marshal(order(providers.Depal, "http-1"))
	for _, c := range []struct {
		method, path string
		body         []byte
		open         bool
	}{
		{"GET", "/healthz", nil, true},
		{"GET", "/readyz", nil, true},
		{"POST", "/callbacks/xportcn", []byte(`{}`), true},
		{"GET", "/monitoring/", nil, false},
		{"GET", "/monitoring/api/queues", nil, false},
		{"POST", "/v1/orders", orderJSON, false},
		{"GET", "/v1/orders/depal/http-1", nil, false},
		{"GET", "/v1/orders?state=received", nil, false},
		{"GET", "/v1/orders/find/9001", nil, false},
	} {
		t.Run(c.method+c.path, func(t *testing.T) {
			code, _ := do(t, c.method, ts.URL+c.path, "", c.body)
			if c.open && code == http.StatusUnauthorized {
				t.Fatalf("without a token: %d, want open", code)
			}
			if !c.open && code != http.StatusUnauthorized {
				t.Fatalf("without a token: %d, want 401", code)
			}
			if code, _ := do(t, c.method, ts.URL+c.path, "wrong", c.body); !c.open && code != http.StatusUnauthorized {
				t.Fatalf("with a wrong token: %d, want 401", code)
			}
			if code, body := do(t, c.method, ts.URL+c.path, token, c.body); code == http.StatusUnauthorized || code >= 500 {
				t.Fatalf("with the token: %d %s", code, body)
			}
		})
	}
}

func TestRunRefusesAnOpenAdminWithoutToken(t *testing.T) {
	s, err := app.FromEnv(func(k string) string {
		return map[string]string{"ADMIN_ADDR": "127.0.0.1:0", "EMBEDDED_REDIS_ADDR": "127.0.0.1:0"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	s.AdminAddr, s.EmbeddedAsked = "0.0.0.0:0", true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = app.Run(ctx, s, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN: required when ADMIN_ADDR (0.0.0.0:0) is not a loopback address") {
		t.Fatalf("Run = %v, want a refusal naming ADMIN_TOKEN", err)
	}
}

func TestSubmitOverHTTP(t *testing.T) {
	ts, _ := adminServer(t, "")
	good, _ := json.Marshal([]providers.OrderRequest{order(providers.Depal, "h-1"), order(providers.Xportcn, "h-2")})
	code, body := do(t, "POST", ts.URL+"/v1/orders", "", good)
	var res []intake.Result
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || len(res) != 2 || res[0].Outcome != "accepted" {
		t.Fatalf("POST = %d %s", code, body)
	}
	code, body = do(t, "POST", ts.URL+"/v1/orders", "", good)
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || res[1].Outcome != "duplicate" {
		t.Fatalf("re-POST = %d %s", code, body)
	}
	bad := []byte(`{"provider":"depal","outOrderId":"h-3","items":[]}`)
	code, body = do(t, "POST", ts.URL+"/v1/orders", "", bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "address.fullName") {
		t.Fatalf("invalid POST = %d %s", code, body)
	}
	code, body = do(t, "POST", ts.URL+"/v1/orders", "", bytes.Repeat([]byte(" "), 9<<20))
	if code != http.StatusRequestEntityTooLarge && code != http.StatusBadRequest {
		t.Fatalf("9 MiB body = %d %s", code, body)
	}
	code, body = do(t, "GET", ts.URL+"/v1/orders/depal/h-1", "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"outOrderId":"h-1"`) {
		t.Fatalf("GET = %d %s", code, body)
	}
	if code, _ = do(t, "GET", ts.URL+"/v1/orders/depal/nope", "", nil); code != http.StatusNotFound {
		t.Fatalf("GET unknown = %d", code)
	}
}

// The provider push answers 200 within a second whatever arrives.
func TestPushAlwaysAnswersFast(t *testing.T) {
	ts, _ := adminServer(t, "")
	for _, body := range []string{``, `garbage`, `{"messageType":"ORDER_PAY_SUCCESS","messageBody":"{\"orderId\":\"123\"}","messagePlatform":1,"timestamp":"1700000000000"}`, strings.Repeat("x", 1<<20)} {
		start := time.Now()
		code, _ := do(t, "POST", ts.URL+"/callbacks/xportcn", "", []byte(body))
		if code != http.StatusOK || time.Since(start) > time.Second {
			t.Fatalf("push %.20q: %d after %s", body, code, time.Since(start))
		}
	}
}

// A ?token= visit of the web UI sets a session cookie that lets the UI's
// own requests through, but not /v1/, and does not hold the token.
func TestUISessionCookie(t *testing.T) {
	const token = "adm-tok-456"
	ts, _ := adminServer(t, token)
	resp, err := http.Get(ts.URL + "/monitoring/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		session = c
	}
	if session == nil || !session.HttpOnly || strings.Contains(session.Value, token) {
		t.Fatalf("session cookie = %+v, want an HttpOnly cookie without the token", session)
	}
	with := func(method, path string) int {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader("{}"))
		req.AddCookie(session)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := with("GET", "/monitoring/api/queues"); c != http.StatusOK {
		t.Errorf("UI API with the session cookie = %d, want 200", c)
	}
	if c := with("POST", "/v1/orders"); c != http.StatusUnauthorized {
		t.Errorf("/v1/orders with the UI cookie = %d, want 401", c)
	}
	session.Value = "forged"
	if c := with("GET", "/monitoring/api/queues"); c != http.StatusUnauthorized {
		t.Errorf("UI API with a forged cookie = %d, want 401", c)
	}
}
