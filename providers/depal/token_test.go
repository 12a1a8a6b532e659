package depal

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/providers"
)

// detailOK answers details with a fixed order.
func detailOK(w http.ResponseWriter, _ *http.Request, _ []byte) {
	reply(w, "200", map[string]any{"orderId": "O1", "status": "waitbuyerpay"}, "")
}

func TestTokenCachedAndReused(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, detailOK)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Details(ctx, "O1"); err != nil {
			t.Fatalf("Details #%d: %v", i, err)
		}
	}
	gets, calls, _ := f.counts()
	if gets != 1 || calls[methodDetail] != 3 {
		t.Fatalf("token.get %d times, details %d times; want 1 and 3", gets, calls[methodDetail])
	}
	if tok := f.lastReq(methodDetail).Token; tok != "tok-1" {
		t.Errorf("sent token %q, want tok-1", tok)
	}
}

func TestTokenRefreshedShortlyBeforeExpiry(t *testing.T) {
	const margin = 2 * time.Minute
	c, f, clock := setup(t, func(cfg *Config) { cfg.TokenMargin = margin })
	f.handle(methodDetail, detailOK)
	ctx := context.Background()
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	// The fake's tokens live 2h from issue. Just outside the margin: reused.
	clock.Advance(f.tokenTTL - margin - time.Second)
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	if gets, _, _ := f.counts(); gets != 1 {
		t.Fatalf("token.get %d times before the margin, want 1", gets)
	}
	// Inside the margin: refreshed before use, without a 510 round trip
	// (the fake's token is still valid, as Depal's would be).
	clock.Advance(2 * time.Second)
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	gets, calls, _ := f.counts()
	if gets != 2 || calls[methodDetail] != 3 {
		t.Fatalf("token.get %d, details %d inside the margin; want 2 and 3", gets, calls[methodDetail])
	}
	// The refreshed expiry is used from then on.
	clock.Advance(time.Hour)
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	if gets, _, _ := f.counts(); gets != 2 {
		t.Fatalf("token.get %d times after the refresh, want 2", gets)
	}
}

func TestTokenSingleFlight(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, detailOK)
	release := f.holdTokens()

	const n = 100
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			started.Done()
			_, err := c.Details(context.Background(), "O1")
			errs <- err
		}()
	}
	started.Wait()
	waitFor(t, "the first token.get", func() bool { gets, _, _ := f.counts(); return gets >= 1 })
	release()
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Details: %v", err)
		}
	}
	gets, calls, _ := f.counts()
	if gets != 1 {
		t.Errorf("%d goroutines caused %d token.get calls, want 1", n, gets)
	}
	if calls[methodDetail] != n {
		t.Errorf("details called %d times, want %d", calls[methodDetail], n)
	}
}

func TestToken510RefreshesOnceAndRetries(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, detailOK)
	ctx := context.Background()
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	f.revoke() // the cached tok-1 now answers 510
	st, err := c.Details(ctx, "O1")
	if err != nil {
		t.Fatalf("Details after 510: %v", err)
	}
	if st.OrderID != "O1" {
		t.Errorf("OrderID = %q", st.OrderID)
	}
	gets, calls, _ := f.counts()
	if gets != 2 || calls[methodDetail] != 3 {
		t.Errorf("token.get %d, details %d; want 2 and 3", gets, calls[methodDetail])
	}
	if tok := f.lastReq(methodDetail).Token; tok != "tok-2" {
		t.Errorf("retry sent %q, want tok-2", tok)
	}
}

func TestToken510TwiceIsAuthError(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, detailOK)
	f.mu.Lock()
	f.always510 = true
	f.mu.Unlock()
	_, err := c.Details(context.Background(), "O1")
	var ae *providers.AuthError
	if !errors.As(err, &ae) || ae.Code != "510" {
		t.Fatalf("err = %v, want *providers.AuthError code 510", err)
	}
	if providers.ClassOf(err) != providers.ClassAuth {
		t.Errorf("class %v, want auth", providers.ClassOf(err))
	}
	gets, calls, _ := f.counts()
	if gets != 2 || calls[methodDetail] != 2 {
		t.Errorf("token.get %d, details %d; want 2 and 2 (one refresh, one retry)", gets, calls[methodDetail])
	}
}

func TestTokenBadSecretIsAuthError(t *testing.T) {
	c, f, _ := setup(t, func(cfg *Config) { cfg.AppSecret = "wrong-secret" })
	f.handle(methodDetail, detailOK)
	_, err := c.Details(context.Background(), "O1")
	var ae *providers.AuthError
	if !errors.As(err, &ae) || ae.Code != "610" {
		t.Fatalf("err = %v, want *providers.AuthError code 610", err)
	}
	if _, calls, _ := f.counts(); calls[methodDetail] != 0 {
		t.Errorf("details sent without a token")
	}
}

func TestTokenWaitHonoursCallerContext(t *testing.T) {
	c, f, _ := setup(t)
	f.handle(methodDetail, detailOK)
	f.holdTokens()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Details(ctx, "O1"); errc <- err }()
	waitFor(t, "token.get", func() bool { gets, _, _ := f.counts(); return gets == 1 })
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var te *providers.TransientError
	if errors.As(err, &te) {
		t.Errorf("a caller's cancellation was reclassified as transient: %v", err)
	}
}

// Every request beyond the admitted call (token fetches, the resend after
// a 510) asks Admit first, so it spends the shared quota; a refusal stops it.
func TestAdmitGuardsExtraRequests(t *testing.T) {
	var admits atomic.Int64
	var refuse atomic.Bool
	c, f, _ := setup(t, func(cfg *Config) {
		cfg.Admit = func(context.Context) error {
			admits.Add(1)
			if refuse.Load() {
				return errors.New("quota")
			}
			return nil
		}
	})
	f.handle(methodDetail, detailOK)
	ctx := context.Background()
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	if n := admits.Load(); n != 1 {
		t.Fatalf("first call: %d admits, want 1 (the token fetch)", n)
	}
	f.revoke()
	if _, err := c.Details(ctx, "O1"); err != nil {
		t.Fatal(err)
	}
	if n := admits.Load(); n != 3 {
		t.Fatalf("after a 510: %d admits, want 3 (+ resend, + token fetch)", n)
	}
	f.revoke()
	refuse.Store(true)
	if _, err := c.Details(ctx, "O1"); err == nil {
		t.Fatal("a refused admission let the resend go")
	}
	if gets, _, _ := f.counts(); gets != 2 {
		t.Fatalf("token.get %d times, want 2: a refused admission must not fetch", gets)
	}
}
