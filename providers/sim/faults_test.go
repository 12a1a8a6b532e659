package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/providers"
)

func TestQuotaViolationsCounted(t *testing.T) {
	s := start(t, Config{Quota: map[string]Quota{
		providers.Xportcn: {Rate: 0.001, Burst: 2},
		providers.Depal:   {Rate: 0.001, Burst: 1},
	}})
	var ok, throttled int
	for range 5 {
		resp, env, err := xPost(t, s, XportcnPathPreview, xCart("q", [2]int64{1, 1}), nil)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case env.Code == 200:
			ok++
		case resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "1" && env.Code == 429:
			throttled++
		default:
			t.Fatalf("HTTP %d code %d", resp.StatusCode, env.Code)
		}
	}
	if ok != 2 || throttled != 3 {
		t.Errorf("xportcn: %d ok, %d throttled; want 2 and 3", ok, throttled)
	}
	dToken(t, s) // the one token of the Depal burst
	_, env, _ := dPost(t, s, "any", DepalMethodPreview, dCart("q", [2]int64{1, 1}), nil)
	if env.Code != "600" {
		t.Errorf("depal over quota: code %s, want 600", env.Code)
	}
	c := s.Counters()
	if c.QuotaViolations[providers.Xportcn] != 3 || c.QuotaViolations[providers.Depal] != 1 {
		t.Errorf("QuotaViolations %v, want xportcn 3, depal 1", c.QuotaViolations)
	}
	if c.Requests[providers.Xportcn]["preview"] != 5 {
		t.Errorf("Requests %v: throttled calls must count", c.Requests)
	}
}

func TestInjected5xxAndThrottleDoNothing(t *testing.T) {
	s := start(t, Config{Faults: Faults{HTTP5xx: 1}})
	resp, _, err := xPost(t, s, XportcnPathCreate, xCart("f5", [2]int64{1, 1}), nil)
	if err != nil || resp.StatusCode < 500 {
		t.Fatalf("HTTP5xx 1: status %v err %v", resp, err)
	}
	s.SetFaults(Faults{Throttle: 1})
	resp, _, _ = xPost(t, s, XportcnPathCreate, xCart("f5", [2]int64{1, 1}), nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("throttle: HTTP %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	s.SetFaults(Faults{})
	tok := dToken(t, s)
	s.SetFaults(Faults{Throttle: 1})
	if _, env, _ := dPost(t, s, tok, DepalMethodPreview, dCart("f5", [2]int64{1, 1}), nil); env.Code != "600" {
		t.Errorf("depal throttle: code %s", env.Code)
	}
	c := s.Counters()
	if len(s.Order(providers.Xportcn, "f5")) != 0 || c.OrdersCreated[providers.Xportcn] != 0 {
		t.Errorf("a faulted create made an order")
	}
	if c.Faults["5xx"] != 1 || c.Faults["throttle"] != 2 {
		t.Errorf("Faults %v", c.Faults)
	}
	s.SetFaults(Faults{})
	s.SetDown(providers.Depal, true)
	if resp, _, _ := dPost(t, s, tok, DepalMethodPreview, dCart("f5", [2]int64{1, 1}), nil); resp.StatusCode != 503 {
		t.Errorf("down: HTTP %d, want 503", resp.StatusCode)
	}
	s.SetDown(providers.Depal, false)
	dOK(t, s, tok, DepalMethodPreview, dCart("f5", [2]int64{1, 1}), nil)
}

func TestSlowAnswer(t *testing.T) {
	s := start(t, Config{Faults: Faults{Slow: 1, SlowDelay: 300 * time.Millisecond}})
	t0 := time.Now()
	xCreate(t, s, "slow", [2]int64{1, 1})
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("answered in %s, want at least 300ms", d)
	}
	if s.Counters().Faults["slow"] != 1 {
		t.Errorf("Faults %v", s.Counters().Faults)
	}
}

func TestCommitThenDrop(t *testing.T) {
	s := start(t, Config{Faults: Faults{CommitThenDrop: 1}})
	// Xportcn: the create is done, the client sees the connection dropped.
	_, _, err := xPost(t, s, XportcnPathCreate, xCart("drop-x", [2]int64{1, 1}), nil)
	if err == nil || (!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err)) {
		t.Fatalf("create: err %v, want a dropped connection", err)
	}
	var list struct {
		Total int `json:"total"`
		List  []struct {
			OrderID string `json:"orderId"`
		} `json:"list"`
	}
	xOK(t, s, XportcnPathList, map[string]any{"outOrderId": "drop-x", "page": 1, "pageSize": 20}, &list)
	if list.Total != 1 {
		t.Errorf("list after a drop: %+v", list)
	}
	// Preview is never dropped.
	xOK(t, s, XportcnPathPreview, xCart("drop-x", [2]int64{1, 1}), nil)

	tok := dToken(t, s)
	var pv struct {
		PreviewID string `json:"previewId"`
	}
	body := dCart("drop-d", [2]int64{1, 1})
	dOK(t, s, tok, DepalMethodPreview, body, &pv)
	body["previewId"] = pv.PreviewID
	if _, _, err := dPost(t, s, tok, DepalMethodSubmit, body, nil); err == nil {
		t.Fatal("submit: answered, want a dropped connection")
	}
	var d struct {
		OrderID string `json:"orderId"`
	}
	dOK(t, s, tok, DepalMethodDetail, map[string]any{"outOrderId": "drop-d"}, &d)
	if d.OrderID == "" {
		t.Error("details by outOrderId found no order after a drop")
	}
	if got := s.Counters().Faults["commit_then_drop"]; got != 2 {
		t.Errorf("commit_then_drop %d, want 2", got)
	}
}

func isReset(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne)
}

func TestFaultsAreSeeded(t *testing.T) {
	draw := func(seed int64) []faultPlan {
		in := newInjector(Faults{Seed: seed, HTTP5xx: 0.3, Throttle: 0.3, CommitThenDrop: 0.3})
		var ps []faultPlan
		for range 50 {
			ps = append(ps, in.plan(kindCreate))
		}
		return ps
	}
	a, b, c := draw(7), draw(7), draw(8)
	same := func(x, y []faultPlan) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("the same seed drew different faults")
	}
	if same(a, c) {
		t.Error("different seeds drew the same 50 faults")
	}
}

func TestPushRetriedUntilDelivered(t *testing.T) {
	var (
		mu    sync.Mutex
		got   []PushMessage
		calls atomic.Int64
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "not yet", http.StatusInternalServerError) // the first delivery fails
			return
		}
		var m PushMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("push body: %v", err)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	// 30 min retry = 18 ms of wall time at this speed; the whole order life
	// takes about 0.2 s.
	s := start(t, Config{Clock: NewAccelClock(100000), PushURL: recv.URL})
	id := xCreate(t, s, "push-1", [2]int64{1, 1}).OrderID
	want := []string{"ORDER_CREATE", "ORDER_PAY_SUCCESS", "ORDER_BUYER_VIEW_ANNOUNCE_SENDGOODS",
		"ORDER_BUYER_VIEW_ORDER_COMFIRM_RECEIVEGOODS", "ORDER_BUYER_VIEW_ORDER_SUCCESS"}
	waitFor(t, 10*time.Second, "every push delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, m := range got {
		var b PushBody
		if err := json.Unmarshal([]byte(m.MessageBody), &b); err != nil {
			t.Fatalf("messageBody %q: %v", m.MessageBody, err)
		}
		if b.OrderID != id || m.MessagePlatform != 1 || m.Timestamp == "" {
			t.Errorf("push %+v body %+v", m, b)
		}
		seen[m.MessageType] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no %s push; got %+v", w, got)
		}
	}
	if c := s.Counters(); c.Pushes != int64(len(want))+1 {
		t.Errorf("Pushes %d, want %d (one retry)", c.Pushes, len(want)+1)
	}
}

func TestPushGivesUpAfterMaxRetries(t *testing.T) {
	var calls atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(recv.Close)
	clk := NewManualClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	s := start(t, Config{Clock: clk, PushURL: recv.URL, PushMaxRetries: 2, Timeline: Timeline{PayAfter: 1000 * time.Hour}})
	xCreate(t, s, "push-2", [2]int64{1, 1})
	queued := func() bool { // a failed delivery is back in the queue
		s.pusher.mu.Lock()
		defer s.pusher.mu.Unlock()
		return s.pusher.queue.Len() == 1
	}
	waitFor(t, 5*time.Second, "the first attempt", func() bool { return calls.Load() == 1 && queued() })
	for want := int64(2); want <= 3; want++ {
		clk.Advance(30 * time.Minute / 2)
		time.Sleep(20 * time.Millisecond) // half the retry wait: nothing may be sent
		if n := calls.Load(); n != want-1 {
			t.Fatalf("after half the retry wait: %d calls, want %d", n, want-1)
		}
		clk.Advance(30 * time.Minute / 2)
		waitFor(t, 5*time.Second, "a retry", func() bool { return calls.Load() == want && (want == 3 || queued()) })
	}
	clk.Advance(30 * time.Minute)
	time.Sleep(30 * time.Millisecond)
	if n := calls.Load(); n != 3 {
		t.Errorf("%d deliveries, want 3 (1 + 2 retries)", n)
	}
}

func TestConcurrentLoad(t *testing.T) {
	s := start(t, Config{Clock: NewAccelClock(1000)})
	tok := dToken(t, s)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				out := "load-" + string(rune('a'+g)) + "-" + string(rune('a'+i))
				c := xCreate(t, s, out, [2]int64{int64(i + 1), 1})
				xOK(t, s, XportcnPathDetail, map[string]any{"orderId": c.OrderID}, nil)
				dPreviewSubmit(t, s, tok, out, [2]int64{int64(i + 1), 1})
				_ = s.Counters()
			}
		}()
	}
	wg.Wait()
	c := s.Counters()
	if c.OrdersCreated[providers.Xportcn] != 320 || c.OrdersCreated[providers.Depal] != 320 || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}

// The new faults are seeded like the old ones, cost nothing at zero, and
// leave the old faults' draws alone while they are zero.
func TestNewFaultsSeededAndFree(t *testing.T) {
	all := Faults{Seed: 3, LateCommit: 0.2, GatewayAfterCommit: 0.2, EmptySuccess: 0.2, UnfilteredList: 0.3, PartialCreate: 0.3}
	draw := func(f Faults) []faultPlan {
		in := newInjector(f)
		var ps []faultPlan
		for i := range 60 {
			ps = append(ps, in.plan(opKind(i%3)))
		}
		return ps
	}
	a, b := draw(all), draw(all)
	var late, gw, empty, unf, part int
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("plan %d: the same seed drew %+v and %+v", i, a[i], b[i])
		}
		p := a[i]
		if k := opKind(i % 3); k != kindCreate && (p.late != 0 || p.gateway != 0 || p.partial) || k != kindLookup && p.unfiltered || k == kindOther && p.empty {
			t.Fatalf("plan %d of kind %d drew a fault that does not apply: %+v", i, k, p)
		}
		if p.late != 0 && p.late != DefaultLateCommitDelay {
			t.Errorf("late %s, want the default %s", p.late, DefaultLateCommitDelay)
		}
		if p.gateway != 0 && p.gateway != 502 && p.gateway != 504 && p.gateway != 408 && p.gateway != 499 {
			t.Errorf("gateway status %d", p.gateway)
		}
		for _, c := range []struct {
			on bool
			n  *int
		}{{p.late != 0, &late}, {p.gateway != 0, &gw}, {p.empty, &empty}, {p.unfiltered, &unf}, {p.partial, &part}} {
			if c.on {
				*c.n++
			}
		}
	}
	if late == 0 || gw == 0 || empty == 0 || unf == 0 || part == 0 {
		t.Errorf("60 plans drew late %d, gateway %d, empty %d, unfiltered %d, partial %d", late, gw, empty, unf, part)
	}
	in := newInjector(Faults{Seed: 3, SearchLag: time.Second, LateCommitDelay: time.Second})
	for k := range 3 {
		if p := in.plan(opKind(k)); p != (faultPlan{}) {
			t.Errorf("kind %d: plan %+v with every probability zero", k, p)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { in.plan(kindCreate) }); allocs != 0 {
		t.Errorf("plan allocates %v times with nothing configured", allocs)
	}
	old := Faults{Seed: 9, HTTP5xx: 0.2, Throttle: 0.2, CommitThenDrop: 0.3}
	x, y := newInjector(old), newInjector(old)
	for range 50 {
		if px, py := x.plan(kindCreate), y.plan(kindCreate); px != py {
			t.Fatalf("old faults drew %+v and %+v", px, py)
		}
	}
}

// GatewayAfterCommit answers a gateway's HTML after committing; EmptySuccess
// answers empty data after committing, and the same to a lookup.
func TestGatewayAndEmptySuccessShapes(t *testing.T) {
	s := start(t, Config{Faults: Faults{GatewayAfterCommit: 1}})
	resp, _, err := xPost(t, s, XportcnPathCreate, xCart("gw", [2]int64{1, 1}), nil)
	if err != nil {
		t.Fatal(err)
	}
	switch resp.StatusCode {
	case 502, 504, 408, 499:
	default:
		t.Errorf("gateway status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
		t.Errorf("Content-Type %q", ct)
	}
	if len(s.Order(providers.Xportcn, "gw")) != 1 {
		t.Error("the gateway answer came without the commit")
	}
	s.SetFaults(Faults{EmptySuccess: 1})
	_, env, err := xPost(t, s, XportcnPathCreate, xCart("es", [2]int64{1, 1}), nil)
	if err != nil || env.Code != 200 || (string(env.Data) != "{}" && string(env.Data) != "null") {
		t.Errorf("empty success: %+v, %v", env, err)
	}
	_, env, _ = xPost(t, s, XportcnPathList, map[string]any{"outOrderId": "es", "page": 1, "pageSize": 20}, nil)
	if env.Code != 200 || (string(env.Data) != "{}" && string(env.Data) != "null") {
		t.Errorf("empty success list: %+v", env)
	}
	c := s.Counters()
	if len(s.Order(providers.Xportcn, "es")) != 1 || c.Faults[FaultGatewayAfterCommit] != 1 || c.Faults[FaultEmptySuccess] != 2 || c.Duplicates != 0 {
		t.Errorf("orders %v, counters %+v", s.Order(providers.Xportcn, "es"), c)
	}
}
