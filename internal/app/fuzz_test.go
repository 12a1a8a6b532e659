package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/intake"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// fuzzAdmin is the admin handler of a worker from app.New on one
// miniredis with fake providers, built once per fuzz process. The worker
// is not started: intake and push answers are what is fuzzed, and its
// queues only fill.
func fuzzAdmin(tb testing.TB) (http.Handler, *app.Worker) {
	tb.Helper()
	srv := redistest.Mini(tb)
	w, err := app.New(app.Config{
		Redis: asynq.RedisClientOpt{Addr: srv.Addr},
		Providers: map[string]providers.Provider{
			providers.Xportcn: fakeprovider.New(providers.Xportcn),
			providers.Depal:   fakeprovider.New(providers.Depal),
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Shutdown)
	h := app.AdminHandler(app.AdminConfig{Worker: w, Redis: asynq.RedisClientOpt{Addr: srv.Addr}})
	return h, w
}

// FuzzAdminIntake posts fuzzed bodies to POST /v1/orders and POST
// /callbacks/xportcn. The intake never answers a 5xx but 503 (Redis
// trouble), and every order its answer calls accepted is in the store; a
// provider push is answered 200 whatever it holds.
func FuzzAdminIntake(f *testing.F) {
	one, _ := json.Marshal(order(providers.Depal, "fz-1"))
	two, _ := json.Marshal([]providers.OrderRequest{order(providers.Xportcn, "fz-2"), order(providers.Depal, "fz-3")})
	const push = `{"messageType":"ORDER_PAY_SUCCESS","messageBody":"{\"orderId\":\"3391234567890123456\",\"orderStatus\":\"WAITING_FOR_SENT\"}","messagePlatform":1,"timestamp":"1767319872000"}`
	for _, s := range []struct {
		push bool
		body string
	}{
		{false, string(one)},
		{false, string(two)},
		{false, string(one) + "\n" + string(one) + "\n"},
		{false, `{"provider":"depal","outOrderId":"fz-4","items":[]}`},
		{false, `[{"provider":"xportcn"},` + string(one) + `]`},
		{false, `{"provider":"depal","outOrderId":"fz-5","address":{"fullName":"a","mobile":"1","address":"x"},"items":[{"productId":1,"quantity":1}],"maxTotal":"abc"}`},
		{false, ``}, {false, `[]`}, {false, `null`}, {false, `{`}, {false, `[1,2]`}, {false, "\x00"},
		{true, push},
		{true, `{"messageType":"ORDER_CANCEL","messageBody":{"orderId":"42"}}`},
		{true, ``}, {true, `{}`}, {true, `null`}, {true, `{"messageBody":"{`},
	} {
		f.Add(s.push, []byte(s.body))
	}
	h, w := fuzzAdmin(f)
	f.Fuzz(func(t *testing.T, isPush bool, body []byte) {
		path := "/v1/orders"
		if isPush {
			path = "/callbacks/xportcn"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		code := rec.Code
		if isPush {
			if code != http.StatusOK {
				t.Fatalf("push %q answered %d, want 200", body, code)
			}
			return
		}
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Fatalf("POST /v1/orders %q answered %d: %s", body, code, rec.Body.Bytes())
		}
		if code != http.StatusOK && code != http.StatusUnprocessableEntity {
			return
		}
		var results []intake.Result
		if err := json.Unmarshal(rec.Body.Bytes(), &results); err != nil {
			t.Fatalf("answer %d is not a result array: %v: %s", code, err, rec.Body.Bytes())
		}
		if len(results) == 0 {
			t.Fatalf("answer %d with no result", code)
		}
		sawInvalid := false
		for _, r := range results {
			switch r.Outcome {
			case pipeline.Accepted, pipeline.Duplicate:
				k := orders.Key{Provider: r.Provider, OutOrderID: r.OutOrderID}
				if _, err := w.Store().Get(context.Background(), k); err != nil {
					t.Fatalf("order %s answered %s but not in the store: %v", k, r.Outcome, err)
				}
			case pipeline.Invalid:
				sawInvalid = true
				if r.Error == "" {
					t.Fatalf("invalid order %d without a reason", r.N)
				}
			default:
				t.Fatalf("result %d has outcome %q", r.N, r.Outcome)
			}
		}
		if sawInvalid != (code == http.StatusUnprocessableEntity) {
			t.Fatalf("status %d but invalid orders in the answer: %v", code, sawInvalid)
		}
	})
}
