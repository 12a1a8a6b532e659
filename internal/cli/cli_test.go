package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/cli"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redisproc"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// t0 is the test clock's time.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type bundle struct {
	srv   *redistest.Server
	store *orders.Store
	insp  *asynq.Inspector
	env   map[string]string
}

// setup returns a bundle on miniredis.
func setup(tb testing.TB) *bundle {
	tb.Helper()
	return setupOn(tb, redistest.Mini(tb))
}

// setupOn returns a bundle on srv.
func setupOn(tb testing.TB, srv *redistest.Server) *bundle {
	tb.Helper()
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: srv.Addr})
	tb.Cleanup(func() { _ = insp.Close() })
	return &bundle{
		srv:   srv,
		store: orders.NewStore(srv.Client(tb), orders.Config{Now: func() time.Time { return t0 }}),
		insp:  insp,
		env:   map[string]string{"REDIS_URL": srv.URL()},
	}
}

func (b *bundle) getenv(k string) string { return b.env[k] }

type result struct {
	code           int
	stdout, stderr string
}

// run runs Main with stdin and args.
func (b *bundle) run(tb testing.TB, stdin string, args ...string) result {
	tb.Helper()
	return b.runCtx(tb, context.Background(), strings.NewReader(stdin), args...)
}

func (b *bundle) runCtx(tb testing.TB, ctx context.Context, stdin interface{ Read([]byte) (int, error) }, args ...string) result {
	tb.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(ctx, args, stdin, &out, &errb, b.getenv)
	return result{code, out.String(), errb.String()}
}

func request(provider, id string) providers.OrderRequest {
	return providers.OrderRequest{
		Provider: provider, OutOrderID: id,
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"},
		Items:   []providers.Item{{ProductID: 623456789012, SkuID: "b5f2", Quantity: 2}},
	}
}

// orderJSON is a valid order as one line of JSON with members replaced
// (a value of "-" drops the member).
func orderJSON(provider, id string, replace map[string]string) string {
	m := map[string]json.RawMessage{}
	b, _ := json.Marshal(request(provider, id))
	_ = json.Unmarshal(b, &m)
	delete(m, "options")
	for k, v := range replace {
		if v == "-" {
			delete(m, k)
		} else {
			m[k] = json.RawMessage(v)
		}
	}
	b, _ = json.Marshal(m)
	return string(b)
}

// create stores a record and moves it through states.
func (b *bundle) create(tb testing.TB, provider, id string, states ...providers.State) *orders.Record {
	tb.Helper()
	ctx := context.Background()
	r, _, err := b.store.Create(ctx, request(provider, id))
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range states {
		r = b.move(tb, r.Key(), s, nil)
	}
	return r
}

func (b *bundle) move(tb testing.TB, k orders.Key, s providers.State, fn func(*orders.Record)) *orders.Record {
	tb.Helper()
	r, err := b.store.Update(context.Background(), k, func(r *orders.Record) error {
		if fn != nil {
			fn(r)
		}
		path := eventsTo(r.State, s)
		if path == nil {
			tb.Fatalf("no events move an order from %s to %s", r.State, s)
		}
		for _, ev := range path {
			r.Apply(ev, t0.Add(time.Duration(len(r.History))*time.Second), "")
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// eventsTo is the shortest list of events that moves an order from one
// state to the other under the transition table.
func eventsTo(from, to providers.State) []providers.Event {
	type step struct {
		s    providers.State
		path []providers.Event
	}
	seen := map[providers.State]bool{from: true}
	queue := []step{{s: from}}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur.s == to {
			return cur.path
		}
		for _, tr := range providers.Transitions {
			if tr.From == cur.s && !seen[tr.To] {
				seen[tr.To] = true
				queue = append(queue, step{tr.To, append(append([]providers.Event{}, cur.path...), tr.Event)})
			}
		}
	}
	return nil
}

// pending lists the task ids pending in a queue.
func (b *bundle) pending(tb testing.TB, queue string) []string {
	tb.Helper()
	ts, err := b.insp.ListPendingTasks(queue)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		tb.Fatal(err)
	}
	var ids []string
	for _, ti := range ts {
		ids = append(ids, ti.ID)
	}
	return ids
}

func TestSubmitMixedBatch(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) { testSubmitMixedBatch(t, setupOn(t, srv)) })
}

func testSubmitMixedBatch(t *testing.T, b *bundle) {
	b.create(t, providers.Depal, "D-1", providers.StatePreviewed, providers.StateAwaitingPayment)
	in := strings.Join([]string{
		orderJSON(providers.Depal, "A-1", nil),
		orderJSON(providers.Xportcn, "A-2", nil),
		orderJSON(providers.Depal, "D-1", nil),
		"",
		orderJSON(providers.Depal, "I-1", map[string]string{"items": `[{"productId":1,"quantity":"2"}]`}),
		orderJSON(providers.Depal, "I-2", map[string]string{"colour": `"red"`}),
		`{"provider":"depal","outOrderId":"I-3",}`,
		orderJSON("amazon", "I-4", nil),
		orderJSON(providers.Depal, "bad id\twith tab", nil),
		orderJSON(providers.Depal, "I-6", map[string]string{"address": `{"fullName":"","mobile":"1","address":"x"}`}),
		orderJSON(providers.Depal, "I-7", map[string]string{"address": `{"fullName":"Li","address":"x"}`}),
		orderJSON(providers.Depal, "I-8", map[string]string{"items": `[]`}),
		orderJSON(providers.Depal, "I-9", map[string]string{"items": `[{"productId":0,"quantity":1}]`}),
		orderJSON(providers.Depal, "I-10", map[string]string{"items": `[{"productId":1,"quantity":0}]`}),
		orderJSON(providers.Depal, "I-11", map[string]string{"maxTotal": `"12.345"`}),
		orderJSON(providers.Depal, "I-12", map[string]string{"callbackUrl": `"not a url"`}),
		orderJSON(providers.Depal, "I-13", map[string]string{"provider": "-"}),
		orderJSON(providers.Depal, "A-1", nil),
	}, "\n")
	r := b.run(t, in, "submit")
	want := strings.Join([]string{
		"A-1\taccepted",
		"A-2\taccepted",
		"D-1\tduplicate (awaiting_payment)",
		"I-1\tinvalid: items[0].quantity: expected a number, got string",
		"I-2\tinvalid: colour: unknown field",
		"#6\tinvalid: malformed JSON at byte 40: invalid character '}' looking for beginning of object key string",
		`I-4` + "\t" + `invalid: provider: unknown provider "amazon" (one of xportcn, depal)`,
		`#8` + "\t" + `invalid: outOrderId: must be 1..64 characters of [A-Za-z0-9_.:-], got "bad id\twith tab"`,
		"I-6\tinvalid: address.fullName: is required",
		"I-7\tinvalid: address.mobile: a phone or mobile number is required",
		"I-8\tinvalid: items: at least one item is required",
		"I-9\tinvalid: items[0].productId: must be a positive integer",
		"I-10\tinvalid: items[0].quantity: must be at least 1, got 0",
		`I-11` + "\t" + `invalid: maxTotal: must be a non-negative decimal string in yuan with at most 2 decimals, got "12.345"`,
		"I-12\tinvalid: callbackUrl: must be an absolute http(s) URL",
		"I-13\tinvalid: provider: is required (one of xportcn, depal)",
		"A-1\tduplicate (received)",
	}, "\n") + "\n"
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want %d", r.code, cli.ExitFailed)
	}
	if wantSum := "submit: 17 orders: 2 accepted, 2 duplicate, 13 invalid\n"; r.stderr != wantSum {
		t.Errorf("stderr = %q, want %q", r.stderr, wantSum)
	}

	// The accepted orders have their preview enqueued (once), the
	// duplicate past received has not.
	ctx := context.Background()
	for _, c := range []struct {
		provider string
		want     []string
	}{
		{providers.Depal, []string{pipeline.TaskID(tasks.TypePreview, orders.Key{Provider: providers.Depal, OutOrderID: "A-1"})}},
		{providers.Xportcn, []string{pipeline.TaskID(tasks.TypePreview, orders.Key{Provider: providers.Xportcn, OutOrderID: "A-2"})}},
	} {
		got := b.pending(t, tasks.Queue(c.provider, tasks.KindPreview))
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("pending %s previews = %v, want %v", c.provider, got, c.want)
		}
	}
	rec, err := b.store.Get(ctx, orders.Key{Provider: providers.Depal, OutOrderID: "A-1"})
	if err != nil || rec.State != providers.StateReceived || !rec.Deadline.IsZero() {
		t.Errorf("A-1 record = %+v, %v; want received, no deadline yet (the worker's ORDER_DEADLINE sets it)", rec, err)
	}
	if _, err := b.store.Get(ctx, orders.Key{Provider: providers.Depal, OutOrderID: "I-1"}); err != orders.ErrNotFound {
		t.Errorf("invalid order I-1 was recorded (%v)", err)
	}
}

func TestSubmitAllAcceptedFromFile(t *testing.T) {
	b := setup(t)
	file := t.TempDir() + "/orders.json"
	body := "[\n" + orderJSON(providers.Depal, "F-1", nil) + ",\n" + orderJSON(providers.Xportcn, "F-2", nil) + "\n]\n"
	if err := writeFile(file, body); err != nil {
		t.Fatal(err)
	}
	r := b.run(t, "", "submit", "-f", file)
	if r.code != cli.ExitOK || r.stdout != "F-1\taccepted\nF-2\taccepted\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// Again: all duplicates is still success.
	r = b.run(t, "", "submit", "-f", file)
	if r.code != cli.ExitOK || r.stdout != "F-1\tduplicate (received)\nF-2\tduplicate (received)\n" {
		t.Fatalf("resubmit: exit %d stdout %q", r.code, r.stdout)
	}
}

func TestSubmitJSON(t *testing.T) {
	b := setup(t)
	b.create(t, providers.Xportcn, "D-1", providers.StatePaid)
	in := orderJSON(providers.Depal, "J-1", nil) + "\n" +
		orderJSON(providers.Xportcn, "D-1", nil) + "\n" +
		orderJSON(providers.Depal, "J-3", map[string]string{"items": `[{"productId":"x","quantity":1}]`}) + "\n" +
		"{oops}\n"
	r := b.run(t, in, "submit", "--json")
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want %d", r.code, cli.ExitFailed)
	}
	var got []cli.SubmitLine
	for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		var sl cli.SubmitLine
		if err := json.Unmarshal([]byte(l), &sl); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, sl)
	}
	want := []cli.SubmitLine{
		{N: 1, Provider: "depal", OutOrderID: "J-1", Outcome: pipeline.Accepted, State: providers.StateReceived},
		{N: 2, Provider: "xportcn", OutOrderID: "D-1", Outcome: pipeline.Duplicate, State: providers.StatePaid},
		{N: 3, Provider: "depal", OutOrderID: "J-3", Outcome: pipeline.Invalid, Field: "items[0].productId",
			Error: "items[0].productId: expected a number, got string"},
		{N: 4, Outcome: pipeline.Invalid, Error: "malformed JSON at byte 2: invalid character 'o' looking for beginning of object key string"},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestSubmitBatchError(t *testing.T) {
	b := setup(t)
	r := b.run(t, "["+orderJSON(providers.Depal, "B-1", nil)+",{\"provider\" 1}]", "submit")
	if r.code != cli.ExitFailed || r.stdout != "" || !strings.Contains(r.stderr, "nothing submitted: order #2: intake: malformed input") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := b.pending(t, tasks.Queue(providers.Depal, tasks.KindPreview)); len(got) != 0 {
		t.Fatalf("a broken batch enqueued %v", got)
	}
}

func TestUnreachableRedis(t *testing.T) {
	port, err := redisproc.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{env: map[string]string{"REDIS_URL": fmt.Sprintf("redis://user:hunter2@127.0.0.1:%d/0", port)}}
	for _, args := range [][]string{
		{"submit"}, {"status", "X-1"}, {"watch"}, {"cancel", "X-1"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := b.run(t, orderJSON(providers.Depal, "X-1", nil), args...)
			if r.code != cli.ExitUnavailable {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, cli.ExitUnavailable, r.stderr)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("took %s to give up", took)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if !strings.Contains(r.stderr, "cannot reach Redis at redis://user:xxxxx@127.0.0.1:") {
				t.Errorf("stderr %q does not name the (redacted) Redis", r.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr shows the password: %q", r.stderr)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	b := setup(t)
	for _, c := range []struct {
		name   string
		env    map[string]string
		args   []string
		want   int
		stderr string
	}{
		{"bad url", map[string]string{"REDIS_URL": "redis://u:hunter2@127.0.0.1:port/"}, []string{"status", "X"}, cli.ExitUnavailable, "REDIS_URL: cannot use redis://u:xxxxx@127.0.0.1:port/"},
		{"bad scheme", map[string]string{"REDIS_URL": "http://u:hunter2@h/"}, []string{"status", "X"}, cli.ExitUnavailable, "REDIS_URL: cannot use http://u:xxxxx@h/"},
		{"flag beats env", map[string]string{"REDIS_URL": "redis://127.0.0.1:1"}, []string{"status", "--redis", b.srv.URL(), "X-9"}, cli.ExitFailed, "X-9: not found"},
		{"bad flag url", nil, []string{"status", "--redis", "redis://:hunter2@[::1", "X"}, cli.ExitUnavailable, "--redis: cannot use redis://:xxxxx@[::1"},
		{"unknown command", nil, []string{"frobnicate"}, cli.ExitUnavailable, `unknown command "frobnicate"`},
		{"no command", nil, nil, cli.ExitUnavailable, "usage:"},
		{"unknown flag", nil, []string{"submit", "--bogus"}, cli.ExitUnavailable, "flag provided but not defined: -bogus"},
		{"submit argument", nil, []string{"submit", "orders.json"}, cli.ExitUnavailable, `unexpected argument "orders.json"`},
		{"status without id", nil, []string{"status"}, cli.ExitUnavailable, "name at least one OUTORDERID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bb := &bundle{env: map[string]string{"REDIS_URL": b.srv.URL()}}
			for k, v := range c.env {
				bb.env[k] = v
			}
			r := bb.run(t, "", c.args...)
			if r.code != c.want || !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("exit %d stderr %q; want %d and %q", r.code, r.stderr, c.want, c.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr shows the password: %q", r.stderr)
			}
		})
	}
}

func TestRedisErrorMidBatch(t *testing.T) {
	b := setup(t)
	// Redis starts failing once the input has been read (after the PING).
	in := &failAtEOF{r: strings.NewReader(orderJSON(providers.Depal, "M-1", nil)), fail: func() { b.srv.Mini.SetError("LOADING Redis is loading the dataset in memory") }}
	r := b.runCtx(t, context.Background(), in, "submit")
	if r.code != cli.ExitUnavailable || r.stdout != "" || !strings.Contains(r.stderr, "Redis error at redis://127.0.0.1") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

type failAtEOF struct {
	r    *strings.Reader
	fail func()
	once sync.Once
}

func (f *failAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil {
		f.once.Do(f.fail)
	}
	return n, err
}

func TestSubmitInterruptedWhileReading(t *testing.T) {
	b := setup(t)
	pr, pw := io.Pipe() // standard input that never ends
	defer pw.Close()
	in := &startReader{r: pr, started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- b.runCtx(t, ctx, in, "submit") }()
	select {
	case <-in.started:
	case <-time.After(10 * time.Second):
		t.Fatal("submit never read its input")
	}
	cancel()
	select {
	case r := <-done:
		if r.code != cli.ExitFailed || r.stdout != "" || !strings.Contains(r.stderr, "interrupted while reading the orders") {
			t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("submit did not return when interrupted")
	}
}

// startReader closes started when it is first read.
type startReader struct {
	r       io.Reader
	started chan struct{}
	once    sync.Once
}

func (s *startReader) Read(p []byte) (int, error) {
	s.once.Do(func() { close(s.started) })
	return s.r.Read(p)
}
