package xportcn

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"orderflow/providers"
)

const (
	testKey    = "ak-test-0001"
	testSecret = "sk-very-secret-0042"
	testUser   = "sub-account-7"
	// testPrefix is the base URL's own path, as in https://www.xportcn.com/api.
	testPrefix = "/api"
)

// testNow is the client's clock in tests.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

// received is one request as the fake server saw it.
type received struct {
	Path   string
	Header http.Header
	Body   []byte
	// SigOK: the signature header verifies against the test secret.
	SigOK bool
}

// handlerFunc answers one request; body is the request body, already read.
type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte)

// fake is an Xportcn server: it records every request, checks its
// signature independently of Sign, and answers with the handler set for the
// path.
type fake struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []received
	routes map[string]handlerFunc
}

// on sets the handler of an endpoint path (without the base URL prefix).
func (f *fake) on(path string, h handlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[testPrefix+path] = h
}

// requests returns the requests received so far.
func (f *fake) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := r.Header
	sum := md5.Sum([]byte(h.Get("access-key") + h.Get("timestamp") + h.Get("nonce-str") + testSecret))
	sigOK := h.Get("signature") == strings.ToUpper(hex.EncodeToString(sum[:])) && h.Get("access-key") == testKey
	f.mu.Lock()
	f.reqs = append(f.reqs, received{Path: r.URL.Path, Header: h.Clone(), Body: body, SigOK: sigOK})
	route := f.routes[r.URL.Path]
	f.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !sigOK {
		writeEnv(w, 401, "signature mismatch", nil)
		return
	}
	if route == nil {
		http.NotFound(w, r)
		return
	}
	route(w, r, body)
}

// setup starts a fake server and a Client pointed at it (its clock fixed
// at testNow). opts adjust the Config before New.
func setup(t testing.TB, opts ...func(*Config)) (*Client, *fake) {
	t.Helper()
	f := &fake{routes: map[string]handlerFunc{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	cfg := Config{
		BaseURL:      f.srv.URL + testPrefix,
		AccessKey:    testKey,
		AccessSecret: testSecret,
		UserID:       testUser,
		Timeout:      5 * time.Second,
		HTTPClient:   f.srv.Client(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.now = func() time.Time { return testNow }
	return c, f
}

// writeEnv answers HTTP 200 with an envelope.
func writeEnv(w http.ResponseWriter, code int, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"requestId": "req-1", "code": code, "developId": 0, "msg": msg, "data": data,
	})
}

// writeRaw answers HTTP 200 with a raw JSON body.
func writeRaw(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

// answer returns a handler that always writes this raw JSON body.
func answer(body string) handlerFunc {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) { writeRaw(w, body) }
}

// assertJSON fails unless got is the same JSON value as want.
func assertJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, got)
	}
	dec = json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body\n got %s\nwant %s", got, want)
	}
}

func sampleOrder() *providers.OrderRequest {
	return &providers.OrderRequest{
		Provider:   providers.Xportcn,
		OutOrderID: "UP-2026-000123",
		Address: providers.Address{
			FullName: "Li Lei", Phone: "+86 138 0013 8000", Mobile: "13800138000", Country: "CN",
			Province: "Zhejiang", City: "Hangzhou", District: "Xihu", Town: "Lingyin",
			Address: "1 Example Road", PostCode: "310000", DistrictCode: "330106",
		},
		Items: []providers.Item{
			{ProductID: 623456789012, SkuID: "b5f2c0e1d8a9", Quantity: 2},
			{ProductID: 623456789013, SkuID: "c0ffee", Quantity: 1},
		},
		Options: providers.Options{Flow: "general", AliID: "ali-1", SellerOpenID: "seller-x"},
	}
}

func TestNewValidates(t *testing.T) {
	good := func() Config {
		return Config{BaseURL: "https://www.xportcn.com/api", AccessKey: "k", AccessSecret: testSecret}
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "BaseURL"},
		{"relative base URL", func(c *Config) { c.BaseURL = "www.xportcn.com/api" }, "BaseURL"},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://x/api" }, "BaseURL"},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://x/api?a=1" }, "BaseURL"},
		{"no access key", func(c *Config) { c.AccessKey = " " }, "AccessKey"},
		{"no access secret", func(c *Config) { c.AccessSecret = "" }, "AccessSecret"},
		{"bad unit", func(c *Config) { c.TimestampUnit = "us" }, "TimestampUnit"},
		{"relative path", func(c *Config) { c.Paths.Detail = "order/detail" }, "Paths.Detail"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.edit(&cfg)
			_, err := New(cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("New error = %v, want a *ConfigError on %s", err, tt.field)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := New(Config{BaseURL: "https://www.xportcn.com/api/", AccessKey: "k", AccessSecret: "s"})
		if err != nil {
			t.Fatal(err)
		}
		want := Paths{DefaultPreviewPath, DefaultCreatePath, DefaultDetailPath, DefaultListPath, DefaultCancelPath}
		if c.cfg.Paths != want || c.cfg.Timeout != DefaultTimeout || c.cfg.TimestampUnit != UnitSeconds ||
			c.cfg.HTTPClient == nil || c.cfg.BaseURL != "https://www.xportcn.com/api" {
			t.Errorf("defaults not applied: %v", c.cfg)
		}
		if c.Name() != providers.Xportcn {
			t.Errorf("Name = %q", c.Name())
		}
	})
}

func TestConfigNeverShowsSecret(t *testing.T) {
	cfg := Config{BaseURL: "https://www.xportcn.com/api", AccessKey: "visible-key", AccessSecret: testSecret, UserID: "u"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "xportcn", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("start", "xportcn", &cfg)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"%s":   fmt.Sprintf("%s", cfg), //nolint:staticcheck // the %s verb itself is under test
		"&%v":  fmt.Sprintf("%v", &cfg),
		"nest": fmt.Sprintf("%+v", struct{ X Config }{cfg}),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, testSecret) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, "visible-key") || !strings.Contains(out, redacted) {
			t.Errorf("%s should show the key and %s: %s", name, redacted, out)
		}
	}
}

func TestRequestHeadersAndSignature(t *testing.T) {
	for _, unit := range []struct {
		setting, want string
	}{
		{"", strconv.FormatInt(testNow.Unix(), 10)},
		{UnitSeconds, strconv.FormatInt(testNow.Unix(), 10)},
		{UnitMillis, strconv.FormatInt(testNow.UnixMilli(), 10)},
	} {
		t.Run("unit="+unit.setting, func(t *testing.T) {
			c, f := setup(t, func(cfg *Config) { cfg.TimestampUnit = unit.setting })
			f.on(DefaultCancelPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) { writeEnv(w, 200, "", true) })
			for i := 0; i < 2; i++ {
				if err := c.Cancel(context.Background(), "1", "r"); err != nil {
					t.Fatal(err)
				}
			}
			reqs := f.requests()
			if len(reqs) != 2 {
				t.Fatalf("server saw %d requests, want 2", len(reqs))
			}
			for _, r := range reqs {
				h := r.Header
				if !r.SigOK {
					t.Errorf("signature %q does not verify", h.Get("signature"))
				}
				if got := h.Get("timestamp"); got != unit.want {
					t.Errorf("timestamp = %q, want %q", got, unit.want)
				}
				if got := h.Get("access-key"); got != testKey {
					t.Errorf("access-key = %q", got)
				}
				if got := h.Get("user-id"); got != testUser {
					t.Errorf("user-id = %q", got)
				}
				if n := h.Get("nonce-str"); len(n) != 32 {
					t.Errorf("nonce-str %q is not 32 characters", n)
				}
				if got := h.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q", got)
				}
				for name, vs := range h {
					for _, v := range vs {
						if strings.Contains(v, testSecret) {
							t.Errorf("header %s carries the secret", name)
						}
					}
				}
				if bytes.Contains(r.Body, []byte(testSecret)) {
					t.Error("body carries the secret")
				}
			}
			if reqs[0].Header.Get("nonce-str") == reqs[1].Header.Get("nonce-str") {
				t.Error("two requests used the same nonce")
			}
		})
	}
}

func TestUserIDIsNotSigned(t *testing.T) {
	// The fake verifies without the user-id; a client with another user id
	// must still verify.
	c, f := setup(t, func(cfg *Config) { cfg.UserID = "someone-else" })
	f.on(DefaultCancelPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) { writeEnv(w, 200, "", true) })
	if err := c.Cancel(context.Background(), "1", "r"); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[0]; !r.SigOK || r.Header.Get("user-id") != "someone-else" {
		t.Errorf("sigOK=%v user-id=%q", r.SigOK, r.Header.Get("user-id"))
	}
}

func TestCustomPaths(t *testing.T) {
	c, f := setup(t, func(cfg *Config) { cfg.Paths.Detail = "/v2/order/detail" })
	f.on("/v2/order/detail", answer(`{"code":0,"data":{"baseInfo":{"status":"success"}}}`))
	st, err := c.Details(context.Background(), "9")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != providers.StateCompleted {
		t.Errorf("State = %q", st.State)
	}
	if p := f.requests()[0].Path; p != testPrefix+"/v2/order/detail" {
		t.Errorf("path = %q", p)
	}
}
