package depal

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"orderflow/providers"
)

const (
	testAppKey = "app123"
	// testSecret has characters that a query string escapes, so a leak of
	// its escaped form is caught too.
	testSecret = "s3cr3t/+&=value"
	testPrefix = "/depal"
)

// fakeClock is the client's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// seenReq is an order call as the fake received it.
type seenReq struct {
	Method string // the Depal method, e.g. 1688.order.detail
	Path   string // the HTTP request path, with the base URL's prefix
	Token  string
	Body   []byte
}

// handlerFunc answers one Depal method; body is the exact request body.
type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte)

// fakeDepal is a minimal Depal written for these tests: it issues tokens,
// verifies every signature with its own HMAC over the /openapi/-rooted path
// and the body bytes, answers 510 for revoked tokens, and dispatches to
// per-method handlers.
type fakeDepal struct {
	t      testing.TB
	srv    *httptest.Server
	clock  *fakeClock
	prefix string

	mu          sync.Mutex
	tokenGets   int
	nextToken   int
	current     string
	valid       map[string]bool
	tokenTTL    time.Duration // expiresAt = clock + tokenTTL
	tokenGate   chan struct{} // when set, token.get waits for it to close
	always510   bool
	sigFailures int
	calls       map[string]int
	seen        []seenReq
	handlers    map[string]handlerFunc
}

func newFakeDepal(t testing.TB, clock *fakeClock, prefix string) *fakeDepal {
	t.Helper()
	f := &fakeDepal{
		t: t, clock: clock, prefix: prefix,
		valid:    map[string]bool{},
		tokenTTL: 2 * time.Hour,
		calls:    map[string]int{},
		handlers: map[string]handlerFunc{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL for Config.BaseURL.
func (f *fakeDepal) URL() string { return f.srv.URL + f.prefix }

func (f *fakeDepal) handle(method string, h handlerFunc) {
	f.mu.Lock()
	f.handlers[method] = h
	f.mu.Unlock()
}

// holdTokens makes token.get wait until release is called (at the latest
// when the test ends).
func (f *fakeDepal) holdTokens() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.tokenGate = gate
	f.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	f.t.Cleanup(release)
	return release
}

// revoke makes the current token answer 510 and the next token.get issue
// a new one.
func (f *fakeDepal) revoke() {
	f.mu.Lock()
	delete(f.valid, f.current)
	f.current = ""
	f.mu.Unlock()
}

func (f *fakeDepal) counts() (tokenGets int, calls map[string]int, sigFailures int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls = map[string]int{}
	for k, v := range f.calls {
		calls[k] = v
	}
	return f.tokenGets, calls, f.sigFailures
}

func (f *fakeDepal) lastReq(method string) seenReq {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.seen) - 1; i >= 0; i-- {
		if f.seen[i].Method == method {
			return f.seen[i]
		}
	}
	f.t.Fatalf("no %s request seen", method)
	return seenReq{}
}

func (f *fakeDepal) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if path == "/openapi/auth/"+testAppKey+"/system.token.get" {
		f.serveToken(w, r)
		return
	}
	method, ok := strings.CutPrefix(path, "/openapi/1/"+testAppKey+"/")
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	ts, tok, sig := r.Header.Get("x-depal-timestamp"), r.Header.Get("x-depal-access-token"), r.Header.Get("x-depal-signature")

	// The fake's own HMAC, not Sign: over the /openapi/-rooted path.
	m := hmac.New(sha1.New, []byte(testSecret))
	m.Write([]byte(path + ts + tok))
	m.Write(body)
	want := strings.ToUpper(hex.EncodeToString(m.Sum(nil)))

	f.mu.Lock()
	f.calls[method]++
	f.seen = append(f.seen, seenReq{Method: method, Path: r.URL.Path, Token: tok, Body: body})
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || sig != want {
		f.sigFailures++
		f.mu.Unlock()
		reply(w, "610", nil, "bad signature")
		return
	}
	if f.always510 || !f.valid[tok] {
		f.mu.Unlock()
		reply(w, "510", nil, "token expired")
		return
	}
	h := f.handlers[method]
	f.mu.Unlock()
	if h == nil {
		reply(w, "630", nil, "no handler for "+method)
		return
	}
	h(w, r, body)
}

func (f *fakeDepal) serveToken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokenGets++
	gate := f.tokenGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if r.URL.Query().Get("appSecret") != testSecret {
		reply(w, "610", nil, "bad app secret")
		return
	}
	f.mu.Lock()
	if f.current == "" {
		f.nextToken++
		f.current = fmt.Sprintf("tok-%d", f.nextToken)
		f.valid[f.current] = true
	}
	tok := f.current
	exp := f.clock.Now().Add(f.tokenTTL).UnixMilli()
	f.mu.Unlock()
	reply(w, "200", map[string]any{"accessToken": tok, "expiresAt": exp}, "")
}

// reply writes a Depal envelope.
func reply(w http.ResponseWriter, code string, data any, msg string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg, "data": data, "requestId": "req-1"})
}

// replyRaw writes an envelope whose data is raw JSON.
func replyRaw(w http.ResponseWriter, code, data string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"code":%q,"msg":"","data":%s,"requestId":"req-1"}`, code, data)
}

// setup starts a fake Depal under the simulator's "/depal" prefix and a
// client on a fake clock.
func setup(t testing.TB, mod ...func(*Config)) (*Client, *fakeDepal, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f := newFakeDepal(t, clock, testPrefix)
	cfg := Config{BaseURL: f.URL(), AppKey: testAppKey, AppSecret: testSecret, Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.now = clock.Now
	t.Cleanup(func() {
		if _, _, bad := f.counts(); bad != 0 {
			t.Errorf("the fake refused %d signatures", bad)
		}
	})
	return c, f, clock
}

// testOrder is a valid order request.
func testOrder() *providers.OrderRequest {
	return &providers.OrderRequest{
		Provider:   providers.Depal,
		OutOrderID: "UP-1",
		Address: providers.Address{
			FullName: "Li Lei", Phone: "+86 571 0000", Mobile: "13800138000",
			Country: "CN", Province: "Zhejiang", City: "Hangzhou", District: "Xihu",
			Address: "1 Example Road", PostCode: "310000",
		},
		Items: []providers.Item{{ProductID: 623456789012, SkuID: "sku-a", Quantity: 2}, {ProductID: 7, SkuID: "sku-b", Quantity: 1}},
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
