// Package sim is a provider simulator: one order model with 1688's semantics
// behind both wire APIs, Xportcn's (/xportcn/api/...) and Depal's
// (/depal/openapi/...), so the real clients are tested over real HTTP.
//
// It verifies signatures and tokens as the real providers do, moves orders
// through waitbuyerpay → waitsellersend → waitbuyerreceive → confirm_goods →
// success (or cancel, or terminated) on an injected clock that may run
// faster than wall time, moves parcels WAITACCEPT → ACCEPT → TRANSPORT →
// SIGN, enforces per-provider request quotas, injects faults under a seed
// (see Faults), answers planned business errors for planned product ids,
// counts duplicates, and pushes Xportcn messages to a callback URL with the
// real provider's retry rule.
//
// # Faults
//
// Every fault is a probability per request (pushes: per message) drawn
// from one generator seeded with Faults.Seed, except SearchLag, a
// duration; each is counted under its name (the Fault* constants) in
// Counters.Faults when it takes effect. Zero costs nothing.
//
//   - HTTP5xx ("5xx"): HTTP 500/502/503, the operation not done.
//   - Throttle ("throttle"): a throttled answer (Xportcn HTTP 429 +
//     Retry-After, Depal code 600), the operation not done.
//   - Slow ("slow"): done, answered SlowDelay (default 15s) later.
//   - CommitThenDrop ("commit_then_drop"), create: done, then the
//     connection closed without an answer.
//   - LateCommit ("late_commit"), create: a provider timing out while
//     still processing. Nothing is answered: the client gives up, or at
//     LateCommitDelay (default 2s) after arrival the connection is
//     dropped; the order is committed LateCommitDelay after arrival,
//     after the client has given up. Until then lookups find nothing.
//   - SearchLag ("search_lag", a duration): lookups by outOrderId do not
//     see an order until SearchLag (wall time) after its commit; details
//     by the provider order id see it at once.
//   - GatewayAfterCommit ("gateway_after_commit"), create: done, then
//     HTTP 502/504/408/499 with an HTML page (GatewayPage), no envelope.
//   - EmptySuccess ("empty_success"), create and lookup: a create done,
//     then answered success with empty data (Depal {}, Xportcn {} or
//     null); a lookup answered the same instead of its answer.
//   - UnfilteredList ("unfiltered_list"), lookup: the outOrderId filter
//     ignored; Xportcn lists every order (oldest first, paged), Depal's
//     details by outOrderId answer the oldest order, whoever's.
//   - PartialCreate ("partial_create"), create of 2+ lines: the last line
//     refused (PartialCreateCode), the order made for the rest, answered
//     with 1688's failedOfferList beside the order.
//   - DuplicatePush ("push_duplicate"), ReorderPush ("push_reorder"):
//     a push sent twice, or held back by PushRetry.
//
// Counters.Duplicates stays exact under every fault: it counts outOrderIds
// with a second create call that made orders (a split or a partial create
// is one create; a late commit counts when it is made).
//
// Details answers carry the product lines each order holds (Xportcn
// productItems, Depal orderItemList): a split create's parts their own
// lines, a partial create's order its lines without the refused one.
//
// Behaviour is deterministic and computable from the cart: see UnitPrice,
// Freight, ServiceFee, PlannedQuote, Parts, PlannedErrorBase and the
// Product* constants, and Timeline. Counters are served at GET
// /sim/counters.
package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"orderflow/providers"
)

// Mount points of the two facades and the counters.
const (
	// XportcnPrefix is where the Xportcn API is mounted: Xportcn paths
	// (/alibaba/majorClient/...) follow it.
	XportcnPrefix = "/xportcn/api"
	// DepalPrefix is where the Depal API is mounted: /openapi/... follows.
	DepalPrefix = "/depal"
	// CountersPath serves Counters as JSON (GET).
	CountersPath = "/sim/counters"
)

// XportcnCreds are the Xportcn credentials the simulator accepts. Zero
// fields: AccessKey "sim-ak", AccessSecret "sim-secret-x", UserID
// "sim-user".
type XportcnCreds struct {
	AccessKey    string
	AccessSecret string
	UserID       string
}

// DepalCreds are the Depal credentials the simulator accepts. Zero fields:
// AppKey "simapp", AppSecret "sim-secret-d".
type DepalCreds struct {
	AppKey    string
	AppSecret string
}

// Config configures a Sim. Every zero value has a documented default.
type Config struct {
	// Xportcn are the accepted Xportcn credentials.
	Xportcn XportcnCreds
	// Depal are the accepted Depal credentials.
	Depal DepalCreds
	// Clock is the simulated time; nil means RealClock.
	Clock Clock
	// Timeline is the order lifecycle in sim time; zero fields take
	// defaults.
	Timeline Timeline
	// TokenTTL is a Depal token's lifetime in wall time; zero means 2h.
	TokenTTL time.Duration
	// Quota is the request quota per provider name; absent or Rate 0 means
	// unlimited.
	Quota map[string]Quota
	// Faults is the fault injection (changeable with SetFaults).
	Faults Faults
	// Latency is added to every answer (wall time); zero means none.
	Latency time.Duration
	// PushURL is where Xportcn push messages are POSTed; empty means no
	// pushes.
	PushURL string
	// PushRetry is the sim-time wait before retrying a failed push; zero
	// means 30m (the real provider's rule).
	PushRetry time.Duration
	// PushMaxRetries is how many times a failed push is retried; zero
	// means 5.
	PushMaxRetries int
	// PushTimeout is how long (wall time) a push receiver has to answer
	// 200; zero means 1s (the real provider's rule).
	PushTimeout time.Duration
	// Logger receives injected faults and push failures; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.Xportcn.AccessKey, "sim-ak")
	def(&c.Xportcn.AccessSecret, "sim-secret-x")
	def(&c.Xportcn.UserID, "sim-user")
	def(&c.Depal.AppKey, "simapp")
	def(&c.Depal.AppSecret, "sim-secret-d")
	if strings.ContainsAny(c.Depal.AppKey, "/?#") {
		return fmt.Errorf("sim: Config.Depal.AppKey: must not contain '/', '?' or '#', got %q", c.Depal.AppKey)
	}
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeline.PayAfter", c.Timeline.PayAfter}, {"Timeline.ShipAfter", c.Timeline.ShipAfter},
		{"Timeline.ParcelStep", c.Timeline.ParcelStep}, {"Timeline.CompleteAfter", c.Timeline.CompleteAfter},
		{"TokenTTL", c.TokenTTL}, {"Latency", c.Latency}, {"PushRetry", c.PushRetry}, {"PushTimeout", c.PushTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("sim: Config.%s: must be >= 0, got %s", d.name, d.v)
		}
	}
	c.Timeline = c.Timeline.withDefaults()
	if c.TokenTTL == 0 {
		c.TokenTTL = 2 * time.Hour
	}
	if c.PushRetry == 0 {
		c.PushRetry = 30 * time.Minute
	}
	if c.PushMaxRetries < 0 {
		return fmt.Errorf("sim: Config.PushMaxRetries: must be >= 0, got %d", c.PushMaxRetries)
	}
	if c.PushMaxRetries == 0 {
		c.PushMaxRetries = 5
	}
	if c.PushTimeout == 0 {
		c.PushTimeout = time.Second
	}
	if c.PushURL != "" {
		u, err := url.Parse(c.PushURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("sim: Config.PushURL: must be an absolute http(s) URL, got %q", c.PushURL)
		}
	}
	if err := c.Faults.validate(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Sim is a running simulator. Make it with New and stop it with Close.
type Sim struct {
	cfg      Config
	tl       Timeline
	store    *store
	counters *counters
	quotas   quotas
	faults   *injector
	down     map[string]*atomic.Bool
	tokens   *tokens
	pusher   *pusher // nil without PushURL
	reqSeq   atomic.Int64
	handler  http.Handler

	mu     sync.Mutex
	srv    *http.Server
	ln     net.Listener
	closed bool
	served chan struct{}
}

// New validates cfg (the error names the bad field) and returns a
// simulator. Its push loop (with PushURL set) runs until Close.
func New(cfg Config) (*Sim, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	q, err := newQuotas(cfg.Quota)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:      cfg,
		tl:       cfg.Timeline,
		store:    newStore(),
		counters: newCounters(),
		quotas:   q,
		faults:   newInjector(cfg.Faults),
		down:     map[string]*atomic.Bool{},
		tokens:   newTokens(cfg.TokenTTL),
	}
	for _, n := range providers.Names {
		s.down[n] = new(atomic.Bool)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(XportcnPrefix+"/", s.serveXportcn)
	mux.HandleFunc(DepalPrefix+"/", s.serveDepal)
	mux.HandleFunc("GET "+CountersPath, s.counters.serveHTTP)
	s.handler = mux
	if cfg.PushURL != "" {
		s.pusher = newPusher(s)
		s.pusher.start()
	}
	return s, nil
}

// Handler is the whole simulator, for httptest or a custom server.
func (s *Sim) Handler() http.Handler { return s.handler }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background
// until Close.
func (s *Sim) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("sim: Start after Close")
	}
	if s.srv != nil {
		return errors.New("sim: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.served = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("sim: serve", "err", err)
		}
	}(s.srv, s.served)
	return nil
}

// Addr is the address Start listens on ("" before Start).
func (s *Sim) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// XportcnURL is the base URL for xportcn.Config.BaseURL, after Start.
func (s *Sim) XportcnURL() string { return "http://" + s.Addr() + XportcnPrefix }

// DepalURL is the base URL for depal.Config.BaseURL, after Start.
func (s *Sim) DepalURL() string { return "http://" + s.Addr() + DepalPrefix }

// Close stops serving (open connections are closed) and stops the push
// loop, waiting for deliveries in flight. It is safe to call twice.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, done := s.srv, s.served
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
		<-done
	}
	if s.pusher != nil {
		s.pusher.stop()
	}
	return err
}

// SetFaults replaces the fault injection at run time (and reseeds).
// Probabilities are clamped to [0, 1].
func (s *Sim) SetFaults(f Faults) { s.faults.set(f) }

// SetDown makes every call to provider answer HTTP 503 (down true) or
// serves it again (down false). An unknown provider is ignored.
func (s *Sim) SetDown(provider string, down bool) {
	if b := s.down[provider]; b != nil {
		b.Store(down)
	}
}

// ExpireTokens makes every Depal token issued so far invalid at once (the
// next call with one answers 510), as a server-side revocation would; the
// next system.token.get issues a new token.
func (s *Sim) ExpireTokens() { s.tokens.expireAll() }

// Counters is a snapshot of the counters.
func (s *Sim) Counters() Counters { return s.counters.snapshot() }

// Order returns the simulator's orders for outOrderID at provider, oldest
// first, with their status now.
func (s *Sim) Order(provider, outOrderID string) []OrderView {
	now := s.cfg.Clock.Now()
	os := s.store.byOutOrderID(provider, outOrderID)
	vs := make([]OrderView, len(os))
	for i := range os {
		vs[i] = os[i].view(s.tl, now)
	}
	return vs
}

// Now is the simulator's clock.
func (s *Sim) Now() time.Time { return s.cfg.Clock.Now() }

// requestID makes an envelope requestId.
func (s *Sim) requestID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, s.reqSeq.Add(1))
}

// admit runs what comes before an operation: counting, the down switch,
// the quota and the faults that skip the operation. It answers and returns
// false when the operation must not run.
func (s *Sim) admit(w http.ResponseWriter, provider, op string, kind opKind, throttled func(http.ResponseWriter)) (faultPlan, bool) {
	s.counters.request(provider, op)
	if s.down[provider].Load() {
		http.Error(w, "service unavailable (sim: provider down)", http.StatusServiceUnavailable)
		return faultPlan{}, false
	}
	if !s.quotas.allow(provider) {
		s.counters.quotaViolation(provider)
		throttled(w)
		return faultPlan{}, false
	}
	p := s.faults.plan(kind)
	switch {
	case p.status5xx != 0:
		s.counters.fault(Fault5xx)
		s.cfg.Logger.Debug("sim: injected 5xx", "provider", provider, "op", op, "status", p.status5xx)
		http.Error(w, http.StatusText(p.status5xx)+" (sim: injected)", p.status5xx)
		return p, false
	case p.throttle:
		s.counters.fault(FaultThrottle)
		s.cfg.Logger.Debug("sim: injected throttle", "provider", provider, "op", op)
		throttled(w)
		return p, false
	}
	return p, true
}

// finish runs what comes after an operation: latency, a slow answer, and a
// commit-then-drop when made (a create that made an order). It returns false
// when the answer must not be written.
func (s *Sim) finish(w http.ResponseWriter, r *http.Request, provider, op string, p faultPlan, made bool) bool {
	wait := s.cfg.Latency
	if p.slow > 0 {
		s.counters.fault(FaultSlow)
		s.cfg.Logger.Debug("sim: injected slow answer", "provider", provider, "op", op, "delay", p.slow)
		wait += p.slow
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	if p.drop && made {
		s.counters.fault(FaultCommitThenDrop)
		s.cfg.Logger.Debug("sim: injected commit-then-drop", "provider", provider, "op", op)
		dropConnection(w)
		return false
	}
	return true
}

// lateCommit runs a create under the LateCommit fault: commit is called
// delay after arrived, and no answer is ever written. When the delay comes
// first the connection is dropped, then the order committed; when the
// client gives up first, the commit is left to a timer. Either way the
// order exists only after the client stopped waiting.
func (s *Sim) lateCommit(w http.ResponseWriter, r *http.Request, provider, op string, arrived time.Time, delay time.Duration, commit func()) {
	s.counters.fault(FaultLateCommit)
	s.cfg.Logger.Debug("sim: injected late commit", "provider", provider, "op", op, "delay", delay)
	t := time.NewTimer(delay - time.Since(arrived))
	select {
	case <-t.C:
		dropConnection(w)
		commit()
	case <-r.Context().Done():
		t.Stop()
		time.AfterFunc(delay-time.Since(arrived), commit)
	}
}

// gatewayAnswer answers as a gateway in front of the provider would, after
// the provider committed: an HTTP error status with an HTML page and no
// envelope.
func (s *Sim) gatewayAnswer(w http.ResponseWriter, provider, op string, status int) {
	s.counters.fault(FaultGatewayAfterCommit)
	s.cfg.Logger.Debug("sim: injected gateway answer after commit", "provider", provider, "op", op, "status", status)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, GatewayPage)
}

// GatewayPage is the body of a GatewayAfterCommit answer.
const GatewayPage = "<html><body><h1>504 Gateway Time-out</h1></body></html>"

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server aborts the connection
	}
	_ = conn.Close()
}

// maxBody bounds a request body.
const maxBody = 1 << 20

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}
