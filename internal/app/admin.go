package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"golang.org/x/time/rate"

	"orderflow/internal/console"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redact"
	"orderflow/providers"
	"orderflow/providers/xportcn"
)

// Body limits of the admin listener.
const (
	maxPushBody   = 64 << 10
	maxOrdersBody = 8 << 20
	maxOrders     = 1000
	// pushAnswer bounds the work done before answering a provider push
	// (the provider wants an answer within 1 s).
	pushAnswer = 700 * time.Millisecond
	// PushOrderInterval is the least time between two polls that pushes
	// of one kind about one order trigger (across pods: a Redis key per
	// order and kind).
	PushOrderInterval = 5 * time.Second
	// PushRate is how many pushes per second one pod acts on (looks up and
	// polls), with a burst of as many; the others are answered and dropped.
	PushRate = 20
)

// pushKeyPrefix + provider + ":" + outOrderId + ":" + kind is held for
// PushOrderInterval after a push of that kind triggered a poll of that order.
const pushKeyPrefix = "orderflow:push:"

// AdminConfig configures the admin HTTP handler.
type AdminConfig struct {
	Worker *Worker
	// Redis is the connection the web UI uses.
	Redis asynq.RedisConnOpt
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Token, when set, is required on /monitoring/, /console/ and /v1/: as
	// Authorization: Bearer, or, on the browser paths only, as ?token= (a
	// browser's first visit, which sets the session cookie).
	Token string
	// CookieSecure (ADMIN_COOKIE_SECURE) marks the session cookie Secure
	// on every request; otherwise only on a request that came over TLS or
	// says X-Forwarded-Proto: https (a TLS-terminating proxy).
	CookieSecure bool
	// Quota reads the providers' quota use for the console; nil: not shown.
	Quota  console.QuotaReader
	Logger *slog.Logger
}

// Admin is the admin listener's handler. Close it to release the web
// UI's Redis connection.
type Admin struct {
	http.Handler
	ui *asynqmon.HTTPHandler
}

// Close releases the web UI's Redis connection.
func (a *Admin) Close() error { return a.ui.Close() }

// AdminHandler returns the admin listener's routes: /healthz, /readyz,
// /metrics, the web UI at /monitoring/, the console at /console/,
// /callbacks/xportcn and /v1/orders.
func AdminHandler(cfg AdminConfig) *Admin {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := cfg.Worker
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := w.Ready(ctx); err != nil {
			http.Error(rw, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(rw, "ready\n")
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	ui := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.Redis})
	mux.Handle("/monitoring/", guard(cfg.Token, "/monitoring/", ui))
	// The console's session cookie has path / so its links into /monitoring/ pass too.
	mux.Handle("/console/", guard(cfg.Token, "/", consoleHandler(cfg, log)))
	mux.Handle("POST /callbacks/xportcn", pushHandler(w, newPushBudget(w, PushRate, PushOrderInterval), log))
	mux.Handle("POST /v1/orders", guard(cfg.Token, "", submitHandler(w)))
	mux.Handle("GET /v1/orders", guard(cfg.Token, "", listHandler(w)))
	mux.Handle("GET /v1/orders/find/{id}", guard(cfg.Token, "", findHandler(w)))
	mux.Handle("POST /v1/orders/{provider}/{outOrderId}/review", guard(cfg.Token, "", reviewHandler(w)))
	mux.Handle("GET /v1/orders/{provider}/{outOrderId}", guard(cfg.Token, "", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		k := orders.Key{Provider: r.PathValue("provider"), OutOrderID: r.PathValue("outOrderId")}
		rec, err := w.Store().Get(r.Context(), k)
		switch {
		case errors.Is(err, orders.ErrNotFound):
			writeJSON(rw, http.StatusNotFound, map[string]string{"error": "no order " + k.String()})
		case err != nil:
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"error": "redis unavailable"})
		default:
			writeJSON(rw, http.StatusOK, rec)
		}
	})))
	var h http.Handler = mux
	if cfg.CookieSecure {
		h = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), secureCookies{}, true)))
		})
	}
	return &Admin{Handler: h, ui: ui}
}

// secureCookies is the context key that says ADMIN_COOKIE_SECURE is set.
type secureCookies struct{}

// cookieSecure reports whether the session cookie set in answer to r is
// Secure: ADMIN_COOKIE_SECURE, a TLS request, or X-Forwarded-Proto: https.
// Trusting the header is harmless here: it can only make the cookie
// stricter.
func cookieSecure(r *http.Request) bool {
	forced, _ := r.Context().Value(secureCookies{}).(bool)
	return forced || r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// consoleHandler is the order console, built at its first request.
func consoleHandler(cfg AdminConfig, log *slog.Logger) http.Handler {
	c := sync.OnceValue(func() *console.Console {
		w := cfg.Worker
		return console.New(console.Config{Store: w.Store(), Tasks: w.Inspector(), Decider: w.Handlers(),
			Providers: w.Providers(), Quota: cfg.Quota, Secret: cfg.Token, Logger: log})
	})
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { c().ServeHTTP(rw, r) })
}

// uiCookie carries the web UI's session: a browser opened with ?token=
// gets it, so the page's own scripts and API calls (which carry no token)
// are let through.
const uiCookie = "orderflow_ui"

// guard requires the token when one is set: as a bearer token, or, on a
// browser path (cookiePath set: the web UI, the console), as ?token= or
// as the cookie that a ?token= visit set. An API path (cookiePath "")
// takes only the bearer token: a token in a URL ends up in access logs.
// The cookie holds an HMAC of the token, never the token.
func guard(token, cookiePath string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("orderflow web UI session"))
	session := hex.EncodeToString(m.Sum(nil))
	ok := func(got, want string) bool { return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 }
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		query := r.URL.Query().Get("token")
		switch {
		case bearer != "" && ok(bearer, token):
		case query != "" && cookiePath != "" && ok(query, token):
			http.SetCookie(rw, &http.Cookie{Name: uiCookie, Value: session, Path: cookiePath,
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: cookieSecure(r)})
		default:
			c, err := r.Cookie(uiCookie)
			if cookiePath == "" || err != nil || !ok(c.Value, session) {
				rw.Header().Set("WWW-Authenticate", `Bearer realm="orderflow"`)
				http.Error(rw, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(rw, r)
	})
}

// IsLoopback reports whether addr (host:port) binds only loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pushHandler takes Xportcn's push messages: a push is only a hint to poll
// the order now; it is answered 200 whatever it holds, within 1 s. Pushes
// are not signed, so what they may cost is bounded (pushBudget).
func pushHandler(w *Worker, budget *pushBudget, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxPushBody))
		if err != nil {
			log.Warn("push dropped: unreadable body", "err", err)
			rw.WriteHeader(http.StatusOK)
			return
		}
		p, err := xportcn.ParsePush(body)
		if err != nil || !providers.ValidProviderOrderID(p.Body.OrderID) {
			log.Warn("push dropped: malformed", "err", err, "bytes", len(body))
			rw.WriteHeader(http.StatusOK)
			return
		}
		if !budget.pod.Allow() {
			log.Debug("push dropped: over this pod's push budget", "providerOrderId", p.Body.OrderID)
			rw.WriteHeader(http.StatusOK)
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), pushAnswer)
			defer cancel()
			k, err := w.Store().FindByProviderOrder(ctx, providers.Xportcn, p.Body.OrderID)
			if err != nil {
				log.Info("push for an unknown order ignored", "providerOrderId", p.Body.OrderID, "type", redact.Terminal(p.MessageType))
				return
			}
			if !budget.orderDue(ctx, k, p.MessageType) {
				log.Debug("push: order polled on a push less than the interval ago", "provider", k.Provider, "outOrderId", k.OutOrderID)
				return
			}
			if err := pipeline.PollNow(ctx, w.Store(), w.Inspector(), k); err != nil {
				log.Debug("push: no waiting poll to run now", "provider", k.Provider, "outOrderId", k.OutOrderID, "err", err)
				return
			}
			log.Info("push: polling now", "provider", k.Provider, "outOrderId", k.OutOrderID, "type", redact.Terminal(p.MessageType))
		}()
		select {
		case <-done:
		case <-time.After(pushAnswer):
		}
		rw.WriteHeader(http.StatusOK)
	})
}

// pushBudget bounds what unauthenticated pushes cost: a pod acts on at
// most rate pushes a second, and pushes poll one order at most once an
// interval, across pods.
type pushBudget struct {
	pod      *rate.Limiter
	w        *Worker
	interval time.Duration
}

func newPushBudget(w *Worker, perSecond int, interval time.Duration) *pushBudget {
	return &pushBudget{pod: rate.NewLimiter(rate.Limit(perSecond), perSecond), w: w, interval: interval}
}

// orderDue takes the order's push slot for a message type (SET NX PX):
// false when a push of that kind polled it less than the interval ago, or
// when Redis cannot say. The kinds are apart, so a flood of one kind
// never hides the one push that matters (a price change right after the
// order's creation); the types a provider may invent share one slot, so
// the slots per order stay few.
func (b *pushBudget) orderDue(ctx context.Context, k orders.Key, messageType string) bool {
	kind := "other"
	switch messageType {
	case xportcn.PushOrderCreate, xportcn.PushOrderCancel, xportcn.PushOrderPaySuccess,
		xportcn.PushOrderPriceModify, xportcn.PushOrderBuyerRefund:
		kind = messageType
	}
	ok, err := b.w.Redis().SetNX(ctx, pushKeyPrefix+k.Provider+":"+k.OutOrderID+":"+kind, 1, b.interval).Result()
	return err == nil && ok
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}
