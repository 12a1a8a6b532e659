// Package console is the order console the worker serves at /console/:
// server-rendered pages (html/template, no JavaScript) for a person who
// follows orders and decides on the ones parked for review. Every page
// answers from the order store's indexes and records, never a scan; every
// decision is a form, previewed (a dry run) before it is confirmed, and
// POSTs carry a CSRF token. Provider text is escaped by html/template and
// its control characters made visible (see inert).
package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
	"orderflow/ratelimit"
)

// Decider carries out a person's decision: *pipeline.Handlers is one.
type Decider interface {
	Decide(ctx context.Context, k orders.Key, d pipeline.Decision) (pipeline.Decided, error)
}

// Tasks reads asynq's tasks and queues: *asynq.Inspector is one.
type Tasks interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// QuotaReader reads a provider's quota use: *ratelimit.Redis is one.
type QuotaReader interface {
	Use(ctx context.Context, key string) (ratelimit.Use, error)
}

// Config is the console's wiring. Store and Tasks are required.
type Config struct {
	Store *orders.Store
	Tasks Tasks
	// Decider carries out decisions; nil: the order page shows no forms.
	Decider Decider
	// Providers are the providers this worker serves (their breakers are
	// read when they have a BreakerState method, as gate.Provider does).
	Providers map[string]providers.Provider
	// Quota reads the providers' quota use; nil: not shown.
	Quota QuotaReader
	// Secret keys the CSRF tokens (ADMIN_TOKEN); "": a random key of this
	// process.
	Secret string
	// Monitoring is where the asynq web UI is served, for links to tasks;
	// "": /monitoring.
	Monitoring string
	Logger     *slog.Logger
}

// Cookies the console sets, both with path /console/.
const (
	// csrfCookie holds a random value; the forms carry its HMAC.
	csrfCookie = "orderflow_console_csrf"
	// byCookie remembers the name typed into the last decision's "by".
	byCookie = "orderflow_console_by"
)

// Path is where the console is mounted.
const Path = "/console/"

// Console serves the console's pages under Path.
type Console struct {
	cfg   Config
	log   *slog.Logger
	key   []byte
	pages map[string]*template.Template
	mux   *http.ServeMux
}

//go:embed templates/*.html static/console.css
var files embed.FS

// New returns the console. It panics when Store or Tasks is nil (a
// programming error).
func New(cfg Config) *Console {
	if cfg.Store == nil || cfg.Tasks == nil {
		panic("console: Config.Store and Config.Tasks are required")
	}
	if cfg.Monitoring == "" {
		cfg.Monitoring = "/monitoring"
	}
	c := &Console{cfg: cfg, log: cfg.Logger, pages: map[string]*template.Template{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Secret != "" {
		m := hmac.New(sha256.New, []byte(cfg.Secret))
		m.Write([]byte("orderflow console csrf"))
		c.key = m.Sum(nil)
	} else {
		c.key = make([]byte, 32)
		_, _ = rand.Read(c.key) // never fails (crypto/rand)
	}
	for _, p := range []string{"overview", "list", "order", "confirm", "error"} {
		c.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(files, "templates/layout.html", "templates/"+p+".html"))
	}
	css, _ := files.ReadFile("static/console.css")
	c.mux = http.NewServeMux()
	c.mux.HandleFunc("GET /console/{$}", c.overview)
	c.mux.HandleFunc("GET /console/orders", c.list)
	c.mux.HandleFunc("GET /console/orders/{provider}/{outOrderId}", c.order)
	c.mux.HandleFunc("POST /console/orders/{provider}/{outOrderId}/decide", c.decide)
	c.mux.HandleFunc("GET /console/console.css", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/css; charset=utf-8")
		rw.Header().Set("Cache-Control", "max-age=300")
		_, _ = rw.Write(css)
	})
	return c
}

// ServeHTTP serves the console with headers that keep its pages from
// being framed, sniffed or running any script.
func (c *Console) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(rw, r)
}

// page is what every page's layout needs.
type page struct {
	Title string
	Nav   string
	Now   time.Time
	// Refresh, when set, reloads the page every that many seconds.
	Refresh int
	Data    any
}

// render executes a page into a buffer, makes its control characters
// visible (inert) and writes it.
func (c *Console) render(rw http.ResponseWriter, status int, name string, p page) {
	p.Now = c.cfg.Store.Now().UTC()
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(rw, "console: page failed to render", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	_, _ = rw.Write(inert(buf.Bytes()))
}

// fail renders the error page.
func (c *Console) fail(rw http.ResponseWriter, status int, msg string) {
	c.render(rw, status, "error", page{Title: http.StatusText(status), Data: msg})
}

// storeFailed renders the answer to a Redis error.
func (c *Console) storeFailed(rw http.ResponseWriter, err error) {
	c.log.Warn("console: store read failed", "err", err)
	c.fail(rw, http.StatusServiceUnavailable, "Redis did not answer: try again.")
}

// csrfToken returns the form token of this browser, setting its cookie
// first when it has none.
func (c *Console) csrfToken(rw http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 64 {
		v = ck.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		v = hex.EncodeToString(b)
		http.SetCookie(rw, &http.Cookie{Name: csrfCookie, Value: v, Path: Path,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// errCSRF: a POST without a valid token, or from another site.
var errCSRF = errors.New("console: this form is stale or from another site: reload the page and try again")

// checkPost refuses a POST from another origin or without this browser's
// CSRF token.
func (c *Console) checkPost(r *http.Request) error {
	for _, h := range []string{"Origin", "Referer"} {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host != r.Host {
			return errCSRF
		}
		break // Origin, when present, is the better witness
	}
	ck, err := r.Cookie(csrfCookie)
	if err != nil {
		return errCSRF
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(ck.Value))
	want := hex.EncodeToString(m.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}
