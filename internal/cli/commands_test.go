package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"orderflow/internal/cli"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/tasks"
)

func TestStatus(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	req := request(providers.Depal, "S-1")
	req.MaxTotal = "30.00"
	r, _, err := b.store.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b.move(t, r.Key(), providers.StatePreviewed, func(r *orders.Record) {
		r.Quote = &providers.Quote{Goods: 2000, Freight: 500, Service: 1, Total: 2501}
		r.Deadline = t0.Add(time.Hour)
	})
	b.move(t, r.Key(), providers.StateAwaitingPayment, func(r *orders.Record) {
		r.ProviderOrderIDs = []string{"2001", "2002"}
		r.RawStatus = "2001=waitbuyerpay,2002=waitbuyerpay"
		r.CancelRequested = true
	})
	f := b.create(t, providers.Xportcn, "S-2")
	if _, err := b.store.Update(ctx, f.Key(), func(r *orders.Record) error {
		r.Fail("R500_004", "out of stock", t0.Add(time.Second))
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	want := `depal/S-1
  state:           awaiting_payment
  provider orders: 2001, 2002
  quote:           25.01 CNY (goods 20.00, freight 5.00, service 0.01)
  price guard:     30.00 CNY
  provider status: 2001=waitbuyerpay,2002=waitbuyerpay
  cancel:          requested
  received:        2026-03-04T05:06:07.000Z
  updated:         2026-03-04T05:06:07.000Z
  deadline:        2026-03-04T06:06:07.000Z
  history:
    2026-03-04T05:06:07.000Z  received
    2026-03-04T05:06:08.000Z  previewed
    2026-03-04T05:06:09.000Z  created
    2026-03-04T05:06:10.000Z  awaiting_payment

xportcn/S-2
  state:    failed
  error:    R500_004: out of stock
  received: 2026-03-04T05:06:07.000Z
  updated:  2026-03-04T05:06:07.000Z
  deadline: -
  history:
    2026-03-04T05:06:07.000Z  received
    2026-03-04T05:06:08.000Z  failed    R500_004
`
	res := b.run(t, "", "status", "S-1", "xportcn/S-2")
	if res.code != cli.ExitOK || res.stdout != want {
		t.Fatalf("exit %d stderr %q stdout:\n%s\nwant:\n%s", res.code, res.stderr, res.stdout, want)
	}

	// --json, given after the ids: one record per line, parsed back.
	res = b.run(t, "", "status", "S-1", "S-2", "--json")
	if res.code != cli.ExitOK {
		t.Fatalf("--json: exit %d stderr %q", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("--json printed %d lines, want 2:\n%s", len(lines), res.stdout)
	}
	var got orders.Record
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Key() != r.Key() || got.State != providers.StateAwaitingPayment || len(got.History) != 4 ||
		got.Quote == nil || got.Quote.Total != 2501 || strings.Join(got.ProviderOrderIDs, ",") != "2001,2002" {
		t.Errorf("--json record = %+v", got)
	}
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil || got.Error == nil || got.Error.Code != "R500_004" {
		t.Errorf("--json second record = %+v (%v)", got, err)
	}
}

func TestStatusLookups(t *testing.T) {
	b := setup(t)
	b.create(t, providers.Depal, "BOTH")
	b.create(t, providers.Xportcn, "BOTH", providers.StatePreviewed)
	b.create(t, providers.Depal, "ONE")
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a prefix
		stderr string
	}{
		{"ambiguous", []string{"status", "BOTH"}, cli.ExitFailed, "",
			"BOTH: exists at xportcn and depal: name one with --provider or as PROVIDER/BOTH"},
		{"provider flag", []string{"status", "--provider", "xportcn", "BOTH"}, cli.ExitOK, "xportcn/BOTH\n  state:    previewed", ""},
		{"provider prefix", []string{"status", "depal/BOTH"}, cli.ExitOK, "depal/BOTH\n  state:    received", ""},
		{"not found", []string{"status", "NOPE"}, cli.ExitFailed, "", "NOPE: not found"},
		{"not found at provider", []string{"status", "--provider", "xportcn", "ONE"}, cli.ExitFailed, "", "ONE: not found at xportcn"},
		{"one of two found", []string{"status", "NOPE", "ONE"}, cli.ExitFailed, "depal/ONE\n", "NOPE: not found"},
		{"unknown provider", []string{"status", "amazon/ONE"}, cli.ExitFailed, "", `unknown provider "amazon"`},
		{"conflicting providers", []string{"status", "--provider", "depal", "xportcn/ONE"}, cli.ExitFailed, "", "names provider xportcn but --provider is depal"},
		{"invalid id", []string{"status", "a b"}, cli.ExitFailed, "", "a b: not a valid outOrderId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := b.run(t, "", c.args...)
			if res.code != c.code || !strings.HasPrefix(res.stdout, c.stdout) || !strings.Contains(res.stderr, c.stderr) {
				t.Errorf("exit %d stdout %q stderr %q; want %d, stdout starting %q, stderr with %q",
					res.code, res.stdout, res.stderr, c.code, c.stdout, c.stderr)
			}
			if c.stdout == "" && res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

// watch runs `enqueue watch args...` in a goroutine and returns its
// stderr and a channel with its result.
func (b *bundle) watch(t *testing.T, ctx context.Context, args ...string) (*testkit.SyncBuffer, <-chan result) {
	t.Helper()
	var out, errb testkit.SyncBuffer
	done := make(chan result, 1)
	go func() {
		code := cli.Main(ctx, append([]string{"watch", "--interval", "10ms"}, args...), strings.NewReader(""), &out, &errb, b.getenv)
		done <- result{code, out.String(), errb.String()}
	}()
	return &errb, done
}

func wait(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not return")
	}
	return result{}
}

func TestWatchNamedOrders(t *testing.T) {
	b := setup(t)
	a := b.create(t, providers.Depal, "W-1", providers.StatePreviewed)
	c := b.create(t, providers.Xportcn, "W-2")
	b.create(t, providers.Depal, "W-3") // live but not watched

	stderr, done := b.watch(t, context.Background(), "W-1", "xportcn/W-2")
	waitContains(t, stderr, "0/2 done  received 1, previewed 1\n")
	b.move(t, a.Key(), providers.StateCompleted, nil)
	waitContains(t, stderr, "1/2 done  received 1, completed 1\n")
	b.move(t, c.Key(), providers.StateFailed, nil)
	r := wait(t, done)
	if r.code != cli.ExitOK {
		t.Errorf("exit %d, want 0 (stderr %q)", r.code, r.stderr)
	}
	if want := "completed\t1\nfailed\t1\ntotal\t2\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	wantErr := "[------------------------------] 0/2 done  received 1, previewed 1\n" +
		"[###############---------------] 1/2 done  received 1, completed 1\n" +
		"[##############################] 2/2 done  completed 1, failed 1\n" +
		"enqueue: watch: all 2 orders ended\n"
	if r.stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, wantErr)
	}
}

func TestWatchAllLive(t *testing.T) {
	b := setup(t)
	var keys []orders.Key
	for _, id := range []string{"L-1", "L-2", "L-3"} {
		keys = append(keys, b.create(t, providers.Depal, id).Key())
	}
	b.create(t, providers.Depal, "ENDED", providers.StateCancelled) // not live: not watched

	stderr, done := b.watch(t, context.Background())
	waitContains(t, stderr, "0/3 done  received 3\n")
	b.create(t, providers.Depal, "LATE") // live after the start: not watched
	moved := make(chan struct{})
	go func() {
		defer close(moved)
		for _, k := range keys {
			b.move(t, k, providers.StateCompleted, nil)
		}
	}()
	r := wait(t, done)
	<-moved // the moves end before the test (and its Redis) does
	if r.code != cli.ExitOK || r.stdout != "completed\t3\ntotal\t3\n" {
		t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestWatchInterrupted(t *testing.T) {
	b := setup(t)
	b.create(t, providers.Depal, "I-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr, done := b.watch(t, ctx, "I-1")
	waitContains(t, stderr, "0/1 done")
	cancel()
	r := wait(t, done)
	if r.code != cli.ExitFailed || r.stdout != "received\t1\ntotal\t1\n" || !strings.Contains(r.stderr, "interrupted with 1 of 1 orders not ended") {
		t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestWatchNothing(t *testing.T) {
	b := setup(t)
	r := b.run(t, "", "watch")
	if r.code != cli.ExitOK || r.stdout != "total\t0\n" {
		t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = b.run(t, "", "watch", "NOPE")
	if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "NOPE: not found") {
		t.Errorf("unknown id: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestCancel(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	live := b.create(t, providers.Depal, "C-1", providers.StatePreviewed)
	b.create(t, providers.Depal, "C-PAID", providers.StatePaid)
	b.create(t, providers.Xportcn, "C-DONE", providers.StateCompleted)

	r := b.run(t, "", "cancel", "C-1")
	if r.code != cli.ExitOK || r.stdout != "depal/C-1: cancel requested\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	rec, err := b.store.Get(ctx, live.Key())
	if err != nil || !rec.CancelRequested {
		t.Fatalf("record after cancel: %+v, %v; want CancelRequested", rec, err)
	}
	want := pipeline.TaskID(tasks.TypeCancel, live.Key())
	if got := b.pending(t, tasks.Queue(providers.Depal, tasks.KindCreate)); len(got) != 1 || got[0] != want {
		t.Errorf("pending create-queue tasks %v, want [%s]", got, want)
	}

	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"cancel", "C-PAID"}, cli.ExitFailed, "depal/C-PAID: not cancellable: paid\n", ""},
		{[]string{"cancel", "--provider", "xportcn", "C-DONE"}, cli.ExitFailed, "xportcn/C-DONE: not cancellable: completed\n", ""},
		{[]string{"cancel", "NOPE"}, cli.ExitFailed, "", "NOPE: not found"},
		{[]string{"cancel"}, cli.ExitUnavailable, "", "name exactly one OUTORDERID"},
		{[]string{"cancel", "C-1", "C-PAID"}, cli.ExitUnavailable, "", "name exactly one OUTORDERID"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := b.run(t, "", c.args...)
			if r.code != c.code || r.stdout != c.stdout || !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("exit %d stdout %q stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
}

func TestSubmitConflict(t *testing.T) {
	b := setup(t)
	if r := b.run(t, orderJSON(providers.Depal, "C-1", nil)+"\n", "submit"); r.code != cli.ExitOK {
		t.Fatalf("first submit: exit %d %q", r.code, r.stderr)
	}
	again := orderJSON(providers.Depal, "C-1", map[string]string{"items": `[{"productId":623456789012,"skuId":"b5f2","quantity":100000}]`})
	r := b.run(t, again+"\n"+orderJSON(providers.Depal, "C-1", nil)+"\n", "submit")
	want := "C-1\tconflict: depal/C-1 is known with another items\nC-1\tduplicate (received)\n"
	if r.code != cli.ExitFailed || r.stdout != want {
		t.Fatalf("resubmit: exit %d stdout %q, want exit %d and %q", r.code, r.stdout, cli.ExitFailed, want)
	}
	if !strings.Contains(r.stderr, "1 conflict") {
		t.Errorf("summary %q does not count the conflict", r.stderr)
	}
	r = b.run(t, again+"\n", "submit", "--json")
	var got cli.SubmitLine
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Outcome != "conflict" || !strings.Contains(got.Error, "items") {
		t.Fatalf("--json: %q (%v)", r.stdout, err)
	}
	rec, err := b.store.Get(context.Background(), orders.Key{Provider: providers.Depal, OutOrderID: "C-1"})
	if err != nil || rec.Request.Items[0].Quantity != 2 {
		t.Fatalf("the stored order changed: %+v, %v", rec, err)
	}
}

// watch follows the event stream: while it runs, Redis is never asked for
// the whole live index (HGETALL), which at 10^6 live orders would block
// the Redis that is also the queue. Before, every interval read it.
func TestWatchReadsTheStreamNotTheIndex(t *testing.T) {
	srv := redistest.Real(t)
	b := setupOn(t, srv)
	var keys []orders.Key
	for i := range 50 {
		keys = append(keys, b.create(t, providers.Depal, fmt.Sprintf("S-%d", i)).Key())
	}
	rdb := srv.Client(t)
	calls := func() int64 {
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_hgetall:calls="); ok {
				n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				return n
			}
		}
		return 0
	}
	before := calls()
	stderr, done := b.watch(t, context.Background())
	waitContains(t, stderr, "0/50 done  received 50\n")
	for _, k := range keys {
		b.move(t, k, providers.StateCompleted, nil)
	}
	r := wait(t, done)
	if r.code != cli.ExitOK || r.stdout != "completed\t50\ntotal\t50\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := calls() - before; n != 0 {
		t.Fatalf("watch sent HGETALL %d times", n)
	}
}
