package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/console/consoletest"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/ratelimit"
)

// clock is a settable store clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeTasks answers every order's create task as archived (with lastErr
// as its error) and every queue as 3 tasks, 7 s late.
type fakeTasks struct{ lastErr string }

func (f fakeTasks) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	if !strings.HasPrefix(id, "order:create:") {
		return nil, asynq.ErrTaskNotFound
	}
	return &asynq.TaskInfo{ID: id, Queue: queue, Type: "order:create", State: asynq.TaskStateArchived,
		Retried: 4, LastErr: f.lastErr}, nil
}

func (fakeTasks) GetQueueInfo(queue string) (*asynq.QueueInfo, error) {
	return &asynq.QueueInfo{Queue: queue, Size: 3, Latency: 7 * time.Second}, nil
}

// fakeDecider applies close (Fail MANUAL with the reason, recorded with
// the actor) and refuses everything else.
type fakeDecider struct {
	st *orders.Store
	mu sync.Mutex
	// got are the decisions received.
	got []pipeline.Decision
}

func (f *fakeDecider) Decide(ctx context.Context, k orders.Key, d pipeline.Decision) (pipeline.Decided, error) {
	f.mu.Lock()
	f.got = append(f.got, d)
	f.mu.Unlock()
	rec, err := f.st.Get(ctx, k)
	if err != nil {
		return pipeline.Decided{}, err
	}
	if d.Action != pipeline.ActionClose {
		return pipeline.Decided{Record: rec, Message: "fake: only close is built here"}, nil
	}
	if d.DryRun {
		return pipeline.Decided{Record: rec, Done: true,
			Message: fmt.Sprintf("the order will end failed, code MANUAL, as of %s", f.st.Now().Format("15:04:05"))}, nil
	}
	rec, err = f.st.Update(ctx, k, func(r *orders.Record) error {
		now := f.st.Now()
		if !r.Fail("MANUAL", d.Reason, now) {
			return fmt.Errorf("cannot close in %s", r.State)
		}
		h := &r.History[len(r.History)-1]
		h.Actor, h.Action, h.Reason = d.By, string(d.Action), d.Reason
		return nil
	})
	if err != nil {
		return pipeline.Decided{}, err
	}
	return pipeline.Decided{Record: rec, Done: true, Message: "closed"}, nil
}

type breaker struct{ providers.Provider }

func (breaker) BreakerState() string { return "half_open" }

type quota struct{}

func (quota) Use(context.Context, string) (ratelimit.Use, error) {
	return ratelimit.Use{Quota: ratelimit.Quota{Rate: 10, Burst: 5}, InUse: 2}, nil
}

type fixture struct {
	st  *orders.Store
	clk *clock
	dec *fakeDecider
	ts  *httptest.Server
}

func newFixture(t *testing.T, taskErr string) *fixture {
	t.Helper()
	srv := redistest.Mini(t)
	clk := &clock{t: time.Date(2026, 5, 6, 12, 3, 7, 0, time.UTC)}
	st := orders.NewStore(srv.Client(t), orders.Config{Retention: 48 * time.Hour, Now: clk.Now})
	dec := &fakeDecider{st: st}
	c := New(Config{Store: st, Tasks: fakeTasks{lastErr: taskErr}, Decider: dec,
		Providers: map[string]providers.Provider{providers.Depal: breaker{}, providers.Xportcn: breaker{}},
		Quota:     quota{}, Secret: "test"})
	ts := httptest.NewServer(c)
	t.Cleanup(ts.Close)
	return &fixture{st: st, clk: clk, dec: dec, ts: ts}
}

// client is a browser-like client: it keeps cookies and sends Origin.
func (f *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u, origin string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
	if t.Failed() {
		t.Fatalf("%s:\n%s", what, text(body))
	}
}

// text is a page's visible text, for messages and order checks.
func text(body string) string {
	body = regexp.MustCompile(`(?s)<(style|head)[^>]*>.*?</(style|head)>`).ReplaceAllString(body, " ")
	body = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(body), " ")
}

func key(p string, st providers.State) string { return fmt.Sprintf("%s/t-%s-%s", p, p[:1], st) }

func TestOverview(t *testing.T) {
	f := newFixture(t, "")
	consoletest.Every(t, f.st, "t", "word")
	f.clk.Add(30 * time.Minute)
	consoletest.Write(t, f.st, providers.Depal, "late-review", providers.StateNeedsReview, "w")
	f.clk.Add(60 * time.Minute)
	status, body := get(t, f.client(t), f.ts.URL+"/console/")
	if status != http.StatusOK {
		t.Fatalf("GET /console/: %d\n%s", status, text(body))
	}
	page := text(body)
	// The inbox: the parked orders oldest first (ties by key), with their age.
	d, x, late := strings.Index(page, key(providers.Depal, providers.StateNeedsReview)),
		strings.Index(page, key(providers.Xportcn, providers.StateNeedsReview)), strings.Index(page, "depal/late-review")
	if d < 0 || x < 0 || late < 0 || d > x || x > late {
		t.Fatalf("inbox: depal's parked order at %d, xportcn's at %d, the late one at %d; want them in that order:\n%s", d, x, late, page)
	}
	mustContain(t, "overview", body,
		"Review inbox <span class=\"count\">3</span>", `<td class="num">1h00m</td>`,
		`<td class="num">1h30m</td>`,
		`href="/console/orders?state=needs_review&amp;reason=CREATE_OUTCOME_UNKNOWN"`,
		// counts: one live order per state and provider, linked to its list
		`href="/console/orders?provider=depal&amp;state=received">1</a>`,
		`href="/console/orders?provider=xportcn&amp;state=needs_review">1</a>`,
		// failures of the last day by code
		"Failures, last 24 h <span class=\"count\">6</span>",
		">ITEM_OFF_SHELF</a>", ">PRICE_GUARD</a>", ">DEADLINE</a>",
		// providers: breaker, quota, queue latency
		"half open", "2.0 of 5 burst in use (40%), 10 req/s", "size 3, latency 7s",
		// the oldest live order
		"Oldest live order", key(providers.Depal, providers.StateAwaitingPayment)) // ties by key
	// Failures older than a day drop out.
	f.clk.Add(24 * time.Hour)
	_, body = get(t, f.client(t), f.ts.URL+"/console/")
	mustContain(t, "overview a day later", body, "No order failed, was rejected or expired in the last day.")
}

func rows(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<td><a href="/console/orders/([^/]+)/([^"]+)">`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1]+"/"+m[2])
	}
	return out
}

func TestListFiltersSearchAndPages(t *testing.T) {
	f := newFixture(t, "")
	consoletest.Every(t, f.st, "t", "word")
	f.clk.Add(2 * time.Hour)
	consoletest.Write(t, f.st, providers.Depal, "late-1", providers.StateFailed, "late")
	c := f.client(t)
	list := func(q string) []string {
		t.Helper()
		status, body := get(t, c, f.ts.URL+"/console/orders?"+q)
		if status != http.StatusOK {
			t.Fatalf("GET /console/orders?%s: %d\n%s", q, status, text(body))
		}
		return rows(body)
	}
	same := func(q string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("list ?%s = %v, want %v", q, got, want)
		}
	}
	q := "state=needs_review"
	same(q, list(q), key(providers.Xportcn, providers.StateNeedsReview), key(providers.Depal, providers.StateNeedsReview))
	q = "state=failed&provider=depal"
	same(q, list(q), "depal/late-1", key(providers.Depal, providers.StateFailed))
	q = "reason=ITEM_OFF_SHELF"
	same(q, list(q), "depal/late-1", key(providers.Xportcn, providers.StateFailed), key(providers.Depal, providers.StateFailed))
	q = "state=failed&older=1h"
	same(q, list(q), key(providers.Xportcn, providers.StateFailed), key(providers.Depal, providers.StateFailed))
	q = "state=failed&newer=1h"
	same(q, list(q), "depal/late-1")

	// Search: outOrderId, provider order id, tracking number.
	same("q=outOrderId", list("q=late-1"), "depal/late-1")
	shipped := "x-shipped"
	same("q=provider order id", list("q=P-word-"+shipped), key(providers.Xportcn, providers.StateShipped))
	same("q=tracking", list("q=SF-word-"+shipped), key(providers.Xportcn, providers.StateShipped))
	_, body := get(t, c, f.ts.URL+"/console/orders?q=nothing-here")
	mustContain(t, "search for an unknown id", body, "No order matches.")

	status, body := get(t, c, f.ts.URL+"/console/orders?state=bogus")
	if status != http.StatusBadRequest || !strings.Contains(body, "unknown state") {
		t.Fatalf("bad state: %d %s", status, text(body))
	}
	status, _ = get(t, c, f.ts.URL+"/console/orders?cursor=nope")
	if status != http.StatusBadRequest {
		t.Fatalf("bad cursor: %d, want 400", status)
	}

	// Pages: 60 more received orders at depal, 50 a page, each once.
	for i := range 60 {
		f.clk.Add(time.Second)
		consoletest.Write(t, f.st, providers.Depal, fmt.Sprintf("pg-%02d", i), providers.StateReceived, "w")
	}
	_, body = get(t, c, f.ts.URL+"/console/orders?provider=depal&state=received")
	first := rows(body)
	m := regexp.MustCompile(`<a href="(/console/orders\?[^"]+)">Next page`).FindStringSubmatch(body)
	if len(first) != listPage || m == nil {
		t.Fatalf("first page: %d rows, next link %v", len(first), m)
	}
	_, body = get(t, c, f.ts.URL+strings.ReplaceAll(m[1], "&amp;", "&"))
	second := rows(body)
	seen := map[string]bool{}
	for _, r := range append(first, second...) {
		if seen[r] {
			t.Fatalf("%s on both pages", r)
		}
		seen[r] = true
	}
	if len(seen) != 61 || strings.Contains(body, "Next page") {
		t.Fatalf("two pages hold %d orders (want 61: 60 + the seeded one), last page has a next link: %v", len(seen), strings.Contains(body, "Next page"))
	}
}

func TestOrderPage(t *testing.T) {
	f := newFixture(t, "provider said no")
	consoletest.Every(t, f.st, "t", "word")
	status, body := get(t, f.client(t), f.ts.URL+"/console/orders/"+key(providers.Xportcn, providers.StateDelivered))
	if status != http.StatusOK {
		t.Fatalf("order page: %d\n%s", status, text(body))
	}
	mustContain(t, "order page", body,
		// timeline: every state with its time
		">received</span>", ">previewed</span>", ">created</span>", ">shipped</span>", ">delivered</span>",
		"2026-05-06 12:03:07Z",
		// quote against maxTotal, totals seen
		"<strong>110.00</strong>", "120.00", ">create</td><td class=\"num\">113.00</td>",
		// provider order id with its raw word, parcel
		`<td class="ids">P-word-x-delivered</td><td class="code">word-x-delivered</td>`,
		"SF-word-x-delivered", "TRANSPORT",
		// deliveries and their answers
		"502 <span class=\"bad\">HTTP 502: word-x-delivered</span>",
		// tasks, linked into /monitoring/
		`href="/monitoring/queues/xportcn:create/tasks/order:create:xportcn:t-x-delivered"`, "archived (4 retries)", "provider said no",
		// the decision form
		`name="csrf" value="`, `value="close"`, `name="by"`)
	status, _ = get(t, f.client(t), f.ts.URL+"/console/orders/depal/no-such")
	if status != http.StatusNotFound {
		t.Fatalf("unknown order: %d, want 404", status)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestDecisionPreviewConfirmAndCSRF(t *testing.T) {
	f := newFixture(t, "")
	consoletest.Every(t, f.st, "t", "word")
	c := f.client(t)
	k := key(providers.Depal, providers.StateNeedsReview)
	orderPage := f.ts.URL + "/console/orders/" + k
	_, body := get(t, c, orderPage)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf token on the order page:\n%s", body)
	}
	form := url.Values{"csrf": {m[1]}, "action": {"close"}, "by": {"ana"}, "reason": {"seller confirmed no order"}}
	decide := orderPage + "/decide"

	t.Run("refused without the token, from another site, or from another browser", func(t *testing.T) {
		bad := url.Values{"action": {"close"}, "by": {"ana"}, "reason": {"x"}}
		for name, try := range map[string]func() *http.Response{
			"no token": func() *http.Response { r, _ := post(t, c, decide, f.ts.URL, bad); return r },
			"wrong token": func() *http.Response {
				b := url.Values{"csrf": {strings.Repeat("0", 64)}, "action": {"close"}, "by": {"ana"}, "reason": {"x"}}
				r, _ := post(t, c, decide, f.ts.URL, b)
				return r
			},
			"other origin":  func() *http.Response { r, _ := post(t, c, decide, "https://evil.example", form); return r },
			"other browser": func() *http.Response { r, _ := post(t, f.client(t), decide, f.ts.URL, form); return r },
		} {
			if r := try(); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d, want 403", name, r.StatusCode)
			}
		}
		if len(f.dec.got) != 0 {
			t.Fatalf("refused POSTs reached the decider: %+v", f.dec.got)
		}
	})

	t.Run("by and reason are required", func(t *testing.T) {
		noBy := url.Values{"csrf": {m[1]}, "action": {"close"}, "reason": {"x"}}
		r, body := post(t, c, decide, f.ts.URL, noBy)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "“by” is required") {
			t.Fatalf("without by: %d %s", r.StatusCode, text(body))
		}
	})

	t.Run("preview, then confirm", func(t *testing.T) {
		r, body := post(t, c, decide, f.ts.URL, form)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("dry run: %d %s", r.StatusCode, text(body))
		}
		mustContain(t, "confirm page", body, "the order will end failed, code MANUAL, as of 12:03:07",
			`name="confirm" value="1"`, "Confirm: close", `value="seller confirmed no order"`)
		if rec, _ := f.st.Get(context.Background(), orders.Key{Provider: providers.Depal, OutOrderID: "t-d-needs_review"}); rec.State != providers.StateNeedsReview {
			t.Fatalf("a dry run changed the order to %s", rec.State)
		}
		confirm := csrfRe.FindStringSubmatch(body)
		cf := url.Values{"csrf": {confirm[1]}, "action": {"close"}, "by": {"ana"}, "reason": {"seller confirmed no order"}, "confirm": {"1"}}
		r, body = post(t, c, decide, f.ts.URL, cf)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/console/orders/"+k+"?decided=close" {
			t.Fatalf("confirm: %d to %q: %s", r.StatusCode, r.Header.Get("Location"), text(body))
		}
		if got := f.dec.got; len(got) != 2 || !got[0].DryRun || got[1].DryRun || got[1].By != "ana" || got[1].Reason != "seller confirmed no order" {
			t.Fatalf("decisions received: %+v", got)
		}
		_, body = get(t, c, orderPage+"?decided=close")
		mustContain(t, "order page after the decision", body, "Decision “close” recorded.",
			">failed</span>", "MANUAL", "<td>ana</td>", "seller confirmed no order",
			// "by" remembered in this browser
			`name="by" value="ana"`)
	})
}

// hostile is provider text that tries markup, attribute breaks, terminal
// escapes, NUL and a bidi override.
const hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>\x1b[2J\x1b]0;pwned\x07\x00\u202egnp.exe\xff"

func TestProviderTextInertOnEveryPage(t *testing.T) {
	f := newFixture(t, hostile)
	all := consoletest.Every(t, f.st, "t", hostile)
	c := f.client(t)
	pages := []string{"/console/", "/console/orders", "/console/orders?reason=" + url.QueryEscape(hostile),
		"/console/orders?q=" + url.QueryEscape("P-"+hostile+"-x-shipped")}
	for k := range all {
		pages = append(pages, orderURL(k))
	}
	check := func(u, body string) {
		t.Helper()
		for _, bad := range []string{"<script", "<img", "\x1b", "\x00", "\x07", "\u202e", "\xff", `"'>`} {
			if strings.Contains(body, bad) {
				i := strings.Index(body, bad)
				t.Errorf("%s carries %q: …%q…", u, bad, body[max(0, i-80):min(len(body), i+80)])
			}
		}
	}
	for _, u := range pages {
		status, body := get(t, c, f.ts.URL+u)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", u, status)
		}
		check(u, body)
	}
	// The text is still there to read, escaped and its controls visible.
	_, body := get(t, c, f.ts.URL+"/console/orders/"+key(providers.Depal, providers.StateShipped))
	mustContain(t, "order page", body, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&gt;&lt;img", `\x1b[2J`, `\x07`, `\u202e`)
	m := csrfRe.FindStringSubmatch(body)
	// The confirm page echoes a person's text the same way.
	r, body := post(t, c, f.ts.URL+"/console/orders/"+key(providers.Depal, providers.StateNeedsReview)+"/decide", f.ts.URL,
		url.Values{"csrf": {m[1]}, "action": {"close"}, "by": {hostile}, "reason": {hostile}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("dry run: %d %s", r.StatusCode, text(body))
	}
	check("confirm page", body)
}
