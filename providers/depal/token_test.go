package depal

import (
	"context"
	"errors"
	"net/http"
	"path"
	"slices"
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

// eventLog records, in order, the admissions a client asks for and the
// requests it sends.
type eventLog struct {
	mu     sync.Mutex
	events []string
	refuse atomic.Bool
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// admit is a Config.Admit logging "admit", or "refused" when refusing.
func (l *eventLog) admit(context.Context) error {
	if l.refuse.Load() {
		l.add("refused")
		return errors.New("quota")
	}
	l.add("admit")
	return nil
}

// loggingTransport logs each request ("token", or the method) as it leaves.
type loggingTransport struct{ log *eventLog }

func (t loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	name := path.Base(r.URL.Path)
	if name == "system.token.get" {
		name = "token"
	}
	t.log.add(name)
	return http.DefaultTransport.RoundTrip(r)
}

// Every request beyond the call its caller admitted (a token fetch, the
// resend after a 510, the trace after a ref-less Trace's details) asks Admit
// first, and right before it leaves: never with a token fetch (which waits
// for the quota itself) between its admission and its send. A call that
// had to wait for a token fetch asks again, its caller's admission being
// stale. A refusal stops the request.
func TestAdmitRightBeforeEachExtraRequest(t *testing.T) {
	log := &eventLog{}
	c, f, _ := setup(t, func(cfg *Config) {
		cfg.Admit = log.admit
		cfg.HTTPClient = &http.Client{Transport: loggingTransport{log}}
	})
	f.handle(methodDetail, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		replyRaw(w, "200", `{"orderId":"O1","status":"waitbuyerreceive","logistics":{"channelCode":"YTO","logisticNo":"YT123"}}`)
	})
	f.handle(methodLogistics, func(w http.ResponseWriter, _ *http.Request, _ []byte) { replyRaw(w, "200", traceAnswer) })
	ctx := context.Background()
	steps := []struct {
		name    string
		before  func()
		do      func() error
		wantErr bool
		want    []string
	}{
		{"cold cache: the fetch, then the call admitted again", nil,
			func() error { _, err := c.Details(ctx, "O1"); return err }, false,
			[]string{"admit", "token", "admit", methodDetail}},
		{"cached token: the caller's admission covers the call", nil,
			func() error { _, err := c.Details(ctx, "O1"); return err }, false,
			[]string{methodDetail}},
		{"510: the new token, then the resend's admission", f.revoke,
			func() error { _, err := c.Details(ctx, "O1"); return err }, false,
			[]string{methodDetail, "admit", "token", "admit", methodDetail}},
		{"ref-less trace: the details, then the trace's admission", nil,
			func() error { _, err := c.Trace(ctx, "O1", nil); return err }, false,
			[]string{methodDetail, "admit", methodLogistics}},
		{"a refused admission sends nothing more", func() { f.revoke(); log.refuse.Store(true) },
			func() error { _, err := c.Details(ctx, "O1"); return err }, true,
			[]string{methodDetail, "refused"}},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		err := st.do()
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: err = %v, want error %v", st.name, err, st.wantErr)
		}
		if got := log.take(); !slices.Equal(got, st.want) {
			t.Fatalf("%s: events %q, want %q", st.name, got, st.want)
		}
	}
}
