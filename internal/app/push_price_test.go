package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/providers/sim"
	"orderflow/providers/xportcn"
)

// A seller's price change before payment arrives as Xportcn's push
// ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY: the worker polls at once, sees the
// new total above maxTotal, cancels the order at the provider and rejects
// it, long before its next scheduled poll (an hour away here).
func TestPriceModifyPushRejectsTheOrder(t *testing.T) {
	srv := redistest.Mini(t)
	var admin http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { admin.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	clock := sim.NewManualClock(time.Now().UTC())
	s, err := sim.New(sim.Config{Clock: clock, PushURL: ts.URL + "/callbacks/xportcn"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	x, err := xportcn.New(xportcn.Config{BaseURL: s.XportcnURL(), AccessKey: "sim-ak", AccessSecret: "sim-secret-x", UserID: "sim-user"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := app.New(app.Config{
		Redis:             asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:         map[string]providers.Provider{providers.Xportcn: x},
		PollSchedule:      []time.Duration{time.Hour},
		TaskCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout:   2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := app.AdminHandler(app.AdminConfig{Worker: w, Redis: asynq.RedisClientOpt{Addr: srv.Addr}})
	t.Cleanup(func() { _ = h.Close() })
	admin = h
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	req := order(providers.Xportcn, "push-price")
	req.Items = []providers.Item{{ProductID: sim.ProductRepriceUnpaid, SkuID: "b5f2", Quantity: 2}}
	req.MaxTotal = providers.FormatYuan(sim.PlannedQuote(req.Provider, req.Items).Total + 100)
	b := &bundle{w: w}
	b.submit(t, req)
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	b.waitState(t, map[orders.Key]providers.State{k: providers.StateAwaitingPayment}, 10*time.Second)
	clock.Advance(90 * time.Second) // the seller raises the price (and the push goes out)
	b.waitState(t, map[orders.Key]providers.State{k: providers.StateRejected}, 10*time.Second)
	r, err := w.Store().Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == nil || r.Error.Code != pipeline.CodePriceGuard || r.Error.MaxTotal != req.MaxTotal {
		t.Fatalf("error %+v", r.Error)
	}
	if v := s.Order(k.Provider, k.OutOrderID); len(v) != 1 || v[0].Status != "cancel" {
		t.Fatalf("provider order %+v, want cancelled", v)
	}
}
