package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/intake"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// ?token= is for a browser's first visit of the web UI: an API path takes
// the token only as a bearer token (a URL ends up in access logs).
func TestTokenInTheURLOnlyOnBrowserPaths(t *testing.T) {
	const token = "adm-tok-789"
	ts, _ := adminServer(t, token)
	for path, want := range map[string]int{
		"/v1/orders?state=received&token=" + token: http.StatusUnauthorized,
		"/v1/orders/depal/x?token=" + token:        http.StatusUnauthorized,
		"/monitoring/?token=" + token:              http.StatusOK,
	} {
		if code, body := do(t, "GET", ts.URL+path, "", nil); code != want {
			t.Errorf("GET %s = %d %s, want %d", path, code, body, want)
		}
	}
}

// The session cookie is Secure behind a TLS-terminating proxy
// (X-Forwarded-Proto: https) and always with ADMIN_COOKIE_SECURE.
func TestSessionCookieSecure(t *testing.T) {
	const token = "adm-tok-000"
	srv := redistest.Mini(t)
	b := setup(t, srv)
	for _, c := range []struct {
		name         string
		cookieSecure bool
		proto        string
		want         bool
	}{
		{"plain http", false, "", false},
		{"behind an ingress", false, "https", true},
		{"ADMIN_COOKIE_SECURE", true, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := app.AdminHandler(app.AdminConfig{Worker: b.w, Redis: asynq.RedisClientOpt{Addr: srv.Addr}, Token: token, CookieSecure: c.cookieSecure})
			ts := httptest.NewServer(h)
			defer ts.Close()
			req, _ := http.NewRequest("GET", ts.URL+"/monitoring/?token="+token, nil)
			if c.proto != "" {
				req.Header.Set("X-Forwarded-Proto", c.proto)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cs := resp.Cookies()
			if len(cs) != 1 || cs[0].Secure != c.want {
				t.Fatalf("cookies %+v, want one with Secure %v", cs, c.want)
			}
		})
	}
	s, err := app.FromEnv(func(k string) string { return map[string]string{"ADMIN_COOKIE_SECURE": "yes"}[k] })
	if err == nil {
		t.Fatalf("ADMIN_COOKIE_SECURE=yes accepted: %+v", s)
	}
}

// pushWorker is a worker on a fake Xportcn whose orders are polled only
// once an hour: every Details call after the create is a push's doing.
func pushWorker(t *testing.T, n int) (*httptest.Server, *fakeprovider.Fake, []string) {
	t.Helper()
	srv := redistest.Mini(t)
	fake := fakeprovider.New(providers.Xportcn)
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                map[string]providers.Provider{providers.Xportcn: fake},
		PollSchedule:             []time.Duration{time.Hour},
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	b := &bundle{w: w}
	want := map[orders.Key]providers.State{}
	for i := range n {
		req := order(providers.Xportcn, fmt.Sprintf("push-%d", i))
		b.submit(t, req)
		want[orders.Key{Provider: providers.Xportcn, OutOrderID: req.OutOrderID}] = providers.StateAwaitingPayment
	}
	b.waitState(t, want, 20*time.Second)
	var ids []string
	for k := range want {
		r, _ := w.Store().Get(t.Context(), k)
		ids = append(ids, r.ProviderOrderIDs...)
	}
	ts := httptest.NewServer(app.AdminHandler(app.AdminConfig{Worker: w, Redis: asynq.RedisClientOpt{Addr: srv.Addr}}))
	t.Cleanup(ts.Close)
	time.Sleep(200 * time.Millisecond) // the polls right after the creates, if any
	return ts, fake, ids
}

func push(t *testing.T, url, providerOrderID string) {
	body := fmt.Sprintf(`{"messageType":"ORDER_PAY_SUCCESS","messageBody":"{\"orderId\":\"%s\"}","messagePlatform":1,"timestamp":"1700000000000"}`, providerOrderID)
	resp, err := http.Post(url+"/callbacks/xportcn", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
}

// A flood of pushes about one order polls it once per PushOrderInterval.
func TestPushFloodForOneOrderPollsOnce(t *testing.T) {
	ts, fake, ids := pushWorker(t, 1)
	before := fake.Calls("details")
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 10 {
				push(t, ts.URL, ids[0])
			}
		})
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	if got := fake.Calls("details") - before; got > 1 {
		t.Fatalf("100 pushes about one order cost %d provider calls, want at most 1", got)
	}
}

// Pushes about many orders are acted on at most PushRate a second per pod.
func TestPushFloodOverManyOrdersIsBounded(t *testing.T) {
	const n = 3 * app.PushRate
	ts, fake, ids := pushWorker(t, n)
	before := fake.Calls("details")
	start := time.Now()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { push(t, ts.URL, id) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	limit := app.PushRate + int(elapsed.Seconds()*app.PushRate) + 1
	if got := fake.Calls("details") - before; got > limit || got == 0 {
		t.Fatalf("pushes about %d orders in %s cost %d provider calls, want 1..%d", n, elapsed, got, limit)
	}
}

// When Redis fails mid-batch, every order gets its own answer: the ones
// recorded keep theirs, the rest are "unavailable", and the status says
// which case it is (207 some recorded, 503 none).
func TestSubmitAnswersPerOrderWhenRedisFails(t *testing.T) {
	// Alongside the other long waits of this package (its own miniredis):
	// it mostly waits out the client's retries.
	t.Parallel()

	srv := redistest.Mini(t)
	b := setup(t, srv)
	ts := httptest.NewServer(app.AdminHandler(app.AdminConfig{Worker: b.w, Redis: asynq.RedisClientOpt{Addr: srv.Addr}}))
	t.Cleanup(ts.Close)
	batch := make([]providers.OrderRequest, 1000)
	for i := range batch {
		batch[i] = order(providers.Depal, fmt.Sprintf("mid-%d", i))
	}
	body, _ := json.Marshal(batch)
	go func() {
		for !srv.Mini.Exists(orders.RecordKey(orders.Key{Provider: providers.Depal, OutOrderID: "mid-3"})) {
			time.Sleep(time.Millisecond)
		}
		srv.Mini.Close()
	}()
	req, _ := http.NewRequest("POST", ts.URL+"/v1/orders", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res []intake.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || len(res) != len(batch) {
		t.Fatalf("status %d, %d results, err %v", resp.StatusCode, len(res), err)
	}
	accepted := 0
	for i, r := range res {
		switch {
		case r.Outcome == "accepted" && accepted == i:
			accepted++
		case r.Outcome == intake.Unavailable && r.Error == "redis unavailable" && r.OutOrderID == batch[i].OutOrderID:
		default:
			t.Fatalf("result %d %+v after %d accepted", i, r, accepted)
		}
	}
	if accepted < 3 || accepted == len(batch) || resp.StatusCode != http.StatusMultiStatus || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q), %d accepted", resp.StatusCode, resp.Header.Get("Retry-After"), accepted)
	}
	one, _ := json.Marshal(order(providers.Depal, "after"))
	if code, out := do(t, "POST", ts.URL+"/v1/orders", "", one); code != http.StatusServiceUnavailable || !bytes.Contains(out, []byte(`"outcome":"unavailable"`)) {
		t.Fatalf("with Redis down: %d %s, want 503 with per-order answers", code, out)
	}
	// Redis back (empty), so the worker's shutdown does not ride out a dead
	// server command by command (40 s of this test's 67).
	if err := srv.Mini.Restart(); err != nil {
		t.Fatal(err)
	}
}
