package xportcn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"orderflow/providers"
)

// operation is one client call, run against the fake.
type operation struct {
	path string
	run  func(ctx context.Context, c *Client) error
}

var operations = map[string]operation{
	"preview": {DefaultPreviewPath, func(ctx context.Context, c *Client) error {
		_, err := c.Preview(ctx, sampleOrder())
		return err
	}},
	"create": {DefaultCreatePath, func(ctx context.Context, c *Client) error {
		_, err := c.Create(ctx, sampleOrder(), &providers.Quote{TradeType: "assureTrade"})
		return err
	}},
	"lookup": {DefaultListPath, func(ctx context.Context, c *Client) error {
		_, err := c.Lookup(ctx, "UP-1")
		return err
	}},
	"details": {DefaultDetailPath, func(ctx context.Context, c *Client) error {
		_, err := c.Details(ctx, "9")
		return err
	}},
	"trace": {DefaultDetailPath, func(ctx context.Context, c *Client) error {
		_, err := c.Trace(ctx, "9", nil)
		return err
	}},
	"cancel": {DefaultCancelPath, func(ctx context.Context, c *Client) error {
		return c.Cancel(ctx, "9", "r")
	}},
}

// httpStatus answers with a bare HTTP status and headers.
func httpStatus(code int, header ...string) handlerFunc {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

// hangUp reads the request, then closes the connection without answering.
func hangUp(w http.ResponseWriter, _ *http.Request, _ []byte) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// gatewayHTML answers a gateway's HTML page (no envelope) under status.
func gatewayHTML(status int) handlerFunc {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body><h1>504 Gateway Time-out</h1></body></html>")
	}
}

// stall answers nothing until the client gives up.
func stall(_ http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() }

func TestErrorClasses(t *testing.T) {
	// HTTP dates have whole seconds: the wait is to that second.
	retryAt := testNow.Add(90 * time.Second).Truncate(time.Second)
	httpDate := retryAt.Format(http.TimeFormat)
	tests := []struct {
		name     string
		ops      []string
		handler  handlerFunc
		class    providers.Class
		notFound bool
		check    func(t *testing.T, err error)
	}{
		{
			name: "HTTP 500 is transient", ops: []string{"preview", "lookup", "details", "trace", "cancel"},
			handler: httpStatus(500), class: providers.ClassTransient,
			check: wantAPICode(500),
		},
		{
			name: "HTTP 502 on create is an unknown outcome", ops: []string{"create"},
			handler: httpStatus(502), class: providers.ClassUnknownOutcome,
		},
		{
			name: "envelope 500 is transient", ops: []string{"preview", "lookup", "details", "cancel"},
			handler: answer(`{"requestId":"rq-9","code":500,"msg":"system busy"}`), class: providers.ClassTransient,
			check: wantAPICode(500),
		},
		{
			name: "envelope 503 on create is an unknown outcome", ops: []string{"create"},
			handler: answer(`{"code":503,"msg":"upstream 1688 timeout"}`), class: providers.ClassUnknownOutcome,
			check: wantAPICode(503),
		},
		{
			name: "HTTP 429 with Retry-After seconds", ops: []string{"preview", "create", "lookup", "details", "cancel"},
			handler: httpStatus(429, "Retry-After", "7"), class: providers.ClassThrottled,
			check: wantWait(7 * time.Second),
		},
		{
			name: "HTTP 429 with a Retry-After date", ops: []string{"details"},
			handler: httpStatus(429, "Retry-After", httpDate), class: providers.ClassThrottled,
			check: wantWait(retryAt.Sub(testNow)),
		},
		{
			name: "envelope 429 takes Retry-After", ops: []string{"create", "details"},
			handler: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.Header().Set("Retry-After", "3")
				writeEnv(w, 429, "gw.QosAppFrequencyLimit", nil)
			},
			class: providers.ClassThrottled, check: wantWait(3 * time.Second),
		},
		{
			name: "envelope 429 without a wait", ops: []string{"lookup"},
			handler: answer(`{"code":429,"msg":"gw.QosAppFrequencyLimit"}`), class: providers.ClassThrottled,
			check: wantWait(0),
		},
		{
			name: "envelope 401 is auth", ops: []string{"preview", "create", "details"},
			handler: answer(`{"code":401,"msg":"signature error"}`), class: providers.ClassAuth,
			check: func(t *testing.T, err error) {
				var ae *providers.AuthError
				if !errors.As(err, &ae) || ae.Code != "401" || ae.Message != "signature error" {
					t.Errorf("AuthError = %+v", ae)
				}
			},
		},
		{
			name: "HTTP 403 with an auth envelope is auth", ops: []string{"details", "create"},
			handler: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(403)
				_, _ = io.WriteString(w, `{"code":403,"msg":"user-id is not a sub-account"}`)
			},
			class: providers.ClassAuth,
		},
		{
			name: "HTTP 403 without an envelope is a gateway's: transient", ops: []string{"preview", "lookup", "details", "trace", "cancel"},
			handler: httpStatus(403), class: providers.ClassTransient, check: wantAPICode(403),
		},
		{
			name: "HTTP 403 without an envelope on create is an unknown outcome", ops: []string{"create"},
			handler: httpStatus(403), class: providers.ClassUnknownOutcome, check: wantAPICode(403),
		},
		{
			name: "envelope 400 is permanent", ops: []string{"preview", "create", "lookup", "details", "cancel"},
			handler: answer(`{"code":400,"msg":"outOrderId is required"}`), class: providers.ClassPermanent,
			check: wantPermanent("400", "outOrderId is required"),
		},
		{
			name: "envelope 400 naming a 1688 word is permanent under that word", ops: []string{"create"},
			handler: answer(`{"code":400,"msg":"500_004: offer 623456789013 is out of stock"}`), class: providers.ClassPermanent,
			check: wantPermanent("500_004", "500_004: offer 623456789013 is out of stock"),
		},
		{
			name: "an unknown envelope code is permanent", ops: []string{"details", "create"},
			handler: answer(`{"code":"1234","msg":"something new"}`), class: providers.ClassPermanent,
			check: wantPermanent("1234", "something new"),
		},
		{
			name: "envelope 404 is not found", ops: []string{"lookup", "details", "trace", "cancel"},
			handler: answer(`{"code":404,"msg":"order not found"}`), notFound: true, class: providers.ClassTransient,
		},
		{
			name: "envelope 404 on preview and create is permanent", ops: []string{"preview", "create"},
			handler: answer(`{"code":404,"msg":"offer not found"}`), class: providers.ClassPermanent,
			check: wantPermanent("404", "offer not found"),
		},
		{
			name: "HTTP 404 without an envelope is a gateway's, not an absent order", ops: []string{"preview", "lookup", "details", "trace", "cancel"},
			handler: httpStatus(404), class: providers.ClassTransient,
			check: func(t *testing.T, err error) {
				if errors.Is(err, providers.ErrNotFound) {
					t.Error("a bare HTTP 404 must not read as ErrNotFound")
				}
				wantAPICode(404)(t, err)
			},
		},
		{
			name: "HTTP 404 without an envelope on create is an unknown outcome", ops: []string{"create"},
			handler: httpStatus(404), class: providers.ClassUnknownOutcome,
		},
		{
			name: "HTTP 499 with a refusal envelope is still a gateway's on create", ops: []string{"create"},
			handler: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(499)
				_, _ = io.WriteString(w, `{"code":400,"msg":"bad parameter"}`)
			},
			class: providers.ClassUnknownOutcome, check: wantAPICode(499),
		},
		{
			name: "HTTP 400 with a success envelope is not the provider's", ops: []string{"details", "lookup"},
			handler: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"code":200,"data":{}}`)
			},
			class: providers.ClassTransient, check: wantAPICode(400),
		},
		{
			name: "JSON without the envelope's code on create is an unknown outcome", ops: []string{"create"},
			handler: answer(`{"msg":"ok","data":{"orderId":"A"}}`), class: providers.ClassUnknownOutcome,
		},
		{
			name: "HTTP 400 with an envelope is classified by the envelope", ops: []string{"details"},
			handler: func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"code":404,"msg":"order not found"}`)
			},
			notFound: true, class: providers.ClassTransient,
		},
		{
			name: "a body that is not an envelope is transient", ops: []string{"preview", "lookup", "details"},
			handler: answer(`<html>gateway</html>`), class: providers.ClassTransient,
		},
		{
			name: "an envelope without a code is transient", ops: []string{"details"},
			handler: answer(`{"msg":"ok","data":{}}`), class: providers.ClassTransient,
		},
		{
			name: "a garbled create answer is an unknown outcome", ops: []string{"create"},
			handler: answer(`<html>gateway</html>`), class: providers.ClassUnknownOutcome,
		},
		{
			name: "success with undecodable data is transient", ops: []string{"details", "preview"},
			handler: answer(`{"code":200,"data":"nope"}`), class: providers.ClassTransient,
		},
		{
			name: "connection closed after the request was read", ops: []string{"preview", "lookup", "details", "cancel"},
			handler: hangUp, class: providers.ClassTransient,
		},
		{
			name: "connection closed after the create was read", ops: []string{"create"},
			handler: hangUp, class: providers.ClassUnknownOutcome,
		},
		{
			name: "timeout is transient", ops: []string{"details", "lookup"},
			handler: stall, class: providers.ClassTransient,
		},
		{
			name: "create timeout is an unknown outcome", ops: []string{"create"},
			handler: stall, class: providers.ClassUnknownOutcome,
		},
	}
	// A gateway's HTML is never the provider's refusal, whatever the
	// status: transient, and for a create an unknown outcome.
	for _, st := range []int{200, 400, 401, 404, 408, 499, 502, 504} {
		tests = append(tests, []struct {
			name     string
			ops      []string
			handler  handlerFunc
			class    providers.Class
			notFound bool
			check    func(t *testing.T, err error)
		}{
			{name: fmt.Sprintf("gateway HTML under HTTP %d is transient", st), ops: []string{"preview", "lookup", "details", "trace", "cancel"},
				handler: gatewayHTML(st), class: providers.ClassTransient},
			{name: fmt.Sprintf("gateway HTML under HTTP %d on create is an unknown outcome", st), ops: []string{"create"},
				handler: gatewayHTML(st), class: providers.ClassUnknownOutcome},
		}...)
	}
	for _, tt := range tests {
		for _, opName := range tt.ops {
			t.Run(tt.name+"/"+opName, func(t *testing.T) {
				t.Parallel()
				op := operations[opName]
				c, f := setup(t, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
				f.on(op.path, tt.handler)
				err := op.run(context.Background(), c)
				if err == nil {
					t.Fatal("no error")
				}
				if got := providers.ClassOf(err); got != tt.class {
					t.Errorf("ClassOf(%v) = %v, want %v", err, got, tt.class)
				}
				if got := errors.Is(err, providers.ErrNotFound); got != tt.notFound {
					t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
				}
				assertClassType(t, err, tt.class)
				if strings.Contains(err.Error(), testSecret) {
					t.Errorf("error leaks the secret: %v", err)
				}
				if tt.check != nil {
					tt.check(t, err)
				}
				if n := len(f.requests()); n != 1 {
					t.Errorf("server saw %d requests, want exactly 1 (no hidden retries)", n)
				}
			})
		}
	}
}

// assertClassType checks that err matches the error type of its class
// with errors.As.
func assertClassType(t *testing.T, err error, class providers.Class) {
	t.Helper()
	var ok bool
	switch class {
	case providers.ClassTransient:
		if errors.Is(err, providers.ErrNotFound) {
			return
		}
		var e *providers.TransientError
		ok = errors.As(err, &e)
	case providers.ClassThrottled:
		var e *providers.DeferError
		ok = errors.As(err, &e)
	case providers.ClassAuth:
		var e *providers.AuthError
		ok = errors.As(err, &e)
	case providers.ClassPermanent:
		var e *providers.PermanentError
		ok = errors.As(err, &e)
	case providers.ClassUnknownOutcome:
		var e *providers.UnknownOutcomeError
		ok = errors.As(err, &e)
	}
	if !ok {
		t.Errorf("%v (%T) does not match the error type of class %v", err, err, class)
	}
}

func wantWait(d time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var te *providers.DeferError
		if !errors.As(err, &te) || te.Wait != d {
			t.Errorf("ThrottledError = %+v, want Wait %s", te, d)
		}
	}
}

func wantPermanent(code, msg string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var pe *providers.PermanentError
		if !errors.As(err, &pe) || pe.Code != code || pe.Message != msg {
			t.Errorf("PermanentError = %+v, want code %s message %q", pe, code, msg)
		}
	}
}

func wantAPICode(code int64) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != code {
			t.Errorf("APIError = %+v, want code %d", ae, code)
		}
	}
}

// closedPort returns a loopback base URL nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/api"
}

func TestDialRefusedIsTransient(t *testing.T) {
	base := closedPort(t)
	for name, op := range operations {
		t.Run(name, func(t *testing.T) {
			c, err := New(Config{BaseURL: base, AccessKey: testKey, AccessSecret: testSecret, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = op.run(context.Background(), c)
			var te *providers.TransientError
			if !errors.As(err, &te) || providers.ClassOf(err) != providers.ClassTransient {
				t.Fatalf("error = %v (%v), want transient: the request never left", err, providers.ClassOf(err))
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestCallerCancel(t *testing.T) {
	t.Run("before sending: the context's error", func(t *testing.T) {
		c, f := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for name, op := range operations {
			err := op.run(ctx, c)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: error = %v, want context.Canceled", name, err)
			}
			if providers.ClassOf(err) == providers.ClassUnknownOutcome {
				t.Errorf("%s: an unsent request reported as an unknown outcome", name)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("server saw %d requests", n)
		}
	})
	for _, tc := range []struct {
		op    string
		class providers.Class
	}{
		{"details", providers.ClassTransient},
		{"create", providers.ClassUnknownOutcome},
	} {
		t.Run("after sending "+tc.op, func(t *testing.T) {
			c, f := setup(t)
			arrived := make(chan struct{})
			f.on(operations[tc.op].path, func(w http.ResponseWriter, r *http.Request, b []byte) {
				close(arrived)
				stall(w, r, b)
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-arrived:
					cancel()
				case <-time.After(5 * time.Second):
				}
			}()
			err := operations[tc.op].run(ctx, c)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want it to wrap context.Canceled", err)
			}
			if got := providers.ClassOf(err); got != tc.class {
				t.Errorf("ClassOf(%v) = %v, want %v", err, got, tc.class)
			}
		})
	}
}

func TestProviderMessageIsScrubbed(t *testing.T) {
	c, f := setup(t)
	f.on(DefaultDetailPath, answer(`{"code":400,"msg":"bad secret `+testSecret+` for key"}`))
	_, err := c.Details(context.Background(), "9")
	var pe *providers.PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v, want permanent", err)
	}
	if strings.Contains(err.Error(), testSecret) || !strings.Contains(pe.Message, redacted) {
		t.Errorf("message not scrubbed: %q", pe.Message)
	}
}

func TestLeadingBizCode(t *testing.T) {
	tests := map[string]string{
		"500_004: out of stock": "500_004",
		"500_2 not found":       "500_2",
		"500_004":               "500_004",
		"500_0045: x":           "",
		"5000_004: x":           "",
		"500-004: x":            "",
		"500_:x":                "",
		"500_004x":              "",
		"CLOSE_ORDER_TOO_FAST":  "",
		"":                      "",
		"50":                    "",
	}
	for msg, want := range tests {
		t.Run(msg, func(t *testing.T) {
			if got := leadingBizCode(msg); got != want {
				t.Errorf("leadingBizCode(%q) = %q, want %q", msg, got, want)
			}
		})
	}
}
