package coalesce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
)

// roundTrips counts what a client sends: single commands and pipelines.
type roundTrips struct{ singles, pipelines, piped atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			c.singles.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "hello" && cmds[0].Name() != "client" {
			c.pipelines.Add(1)
			c.piped.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}
func (c *roundTrips) total() int64 { return c.singles.Load() + c.pipelines.Load() }

func client(t *testing.T, srv *redistest.Server, coalesce bool) (*redis.Client, *roundTrips, *Coalescer) {
	rdb := srv.Client(t)
	var c *Coalescer
	if coalesce {
		c = New(rdb, 1)
		rdb.AddHook(c)
	}
	rt := &roundTrips{}
	rdb.AddHook(rt)
	// The first command dials; counted from here on.
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	rt.singles.Store(0)
	return rdb, rt, c
}

var failing = redis.NewScript(`if ARGV[1] == 'fail' then return redis.error_reply('TEST refused') end return ARGV[1]`)

// TestConcurrentCommandsShareRoundTrips: commands issued at the same time
// by many goroutines go in far fewer round trips than commands, and each
// gets its own answer: a value, redis.Nil for a missing key, a script's
// own error.
func TestConcurrentCommandsShareRoundTrips(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb, rt, c := client(t, srv, true)
		ctx := context.Background()
		const workers, rounds = 40, 5
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, workers*rounds*4)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < rounds; i++ {
					k := fmt.Sprintf("k:%d:%d", w, i)
					if err := rdb.Set(ctx, k, k, 0).Err(); err != nil {
						errs <- err
					}
					if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
						errs <- fmt.Errorf("get %s = %q, %v", k, v, err)
					}
					if _, err := rdb.Get(ctx, "missing:"+k).Result(); !errors.Is(err, redis.Nil) {
						errs <- fmt.Errorf("get of a missing key: %v, want redis.Nil", err)
					}
					arg := k
					if w%2 == 0 {
						arg = "fail"
					}
					v, err := failing.Run(ctx, rdb, nil, arg).Text()
					switch {
					case arg == "fail" && (err == nil || err.Error() != "TEST refused"):
						errs <- fmt.Errorf("failing script: %q, %v; want its own error", v, err)
					case arg != "fail" && (err != nil || v != arg):
						errs <- fmt.Errorf("script = %q, %v; want %q", v, err, arg)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		cmds := int64(workers * rounds * 4)
		st := c.Stats()
		t.Logf("%d commands in %d round trips (%d alone, %d batches of %d); stats %+v", cmds, rt.total(), rt.singles.Load(), rt.pipelines.Load(), rt.piped.Load(), st)
		if rt.total() > cmds/2 {
			t.Errorf("%d commands took %d round trips, want at most half", cmds, rt.total())
		}
		if st.Alone+st.Batched < cmds || st.Batches != rt.pipelines.Load() {
			t.Errorf("stats %+v do not add up to %d commands, %d pipelines", st, cmds, rt.pipelines.Load())
		}
	})
}

// TestLoneCommandGoesAtOnce: a command issued while nothing is in flight
// goes on its own, as without the hook.
func TestLoneCommandGoesAtOnce(t *testing.T) {
	srv := redistest.Mini(t)
	rdb, rt, _ := client(t, srv, true)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := rdb.Get(ctx, "nothing").Err(); !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	if rt.singles.Load() != 3 || rt.pipelines.Load() != 0 {
		t.Errorf("3 lone gets: %d singles, %d pipelines; want 3 singles", rt.singles.Load(), rt.pipelines.Load())
	}
}

// TestBlockingCommandsGoAlone: a blocking read is not a flight others wait
// for.
func TestBlockingCommandsGoAlone(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb, _, _ := client(t, srv, true)
		ctx := context.Background()
		blocked := make(chan error, 1)
		go func() { blocked <- rdb.BLPop(ctx, 2*time.Second, "empty-list").Err() }()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := rdb.Set(ctx, fmt.Sprint("b:", i), 1, 0).Err(); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if d := time.Since(start); d > time.Second {
			t.Errorf("sets took %v beside a blocking read, want them not to wait for it", d)
		}
		if err := <-blocked; !errors.Is(err, redis.Nil) {
			t.Errorf("blpop: %v", err)
		}
	})
}

// TestWithoutCoalescing is the baseline TestConcurrentCommandsShareRoundTrips
// is measured against: a round trip per command.
func TestWithoutCoalescing(t *testing.T) {
	srv := redistest.Mini(t)
	rdb, rt, _ := client(t, srv, false)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = rdb.Set(ctx, fmt.Sprint("n:", w), 1, 0).Err() }()
	}
	wg.Wait()
	if rt.total() != 20 {
		t.Errorf("20 sets without the hook: %d round trips", rt.total())
	}
}

// TestEndedContextIsNotSent: a command whose context ends while it waits
// for a flight is answered with the context's error at once and not sent,
// as go-redis does with a command whose context ended before it went; the
// others of its batch go.
func TestEndedContextIsNotSent(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		c, release, flying := heldFlight(t, rdb, rdb)
		ctx := context.Background()
		cctx, cancel := context.WithCancel(ctx)
		late := make(chan error, 1)
		kept := make(chan error, 1)
		waitFor(t, c, 0) // the get is in flight
		go func() { late <- rdb.Set(cctx, "late", 1, 0).Err() }()
		waitFor(t, c, 1)
		go func() { kept <- rdb.Set(ctx, "kept", 1, 0).Err() }()
		waitFor(t, c, 2)
		cancel()
		// It does not wait for the flight any longer.
		select {
		case err := <-late:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("set whose context ended while it waited: %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("a command whose context ended still waits for the flight")
		}
		waitFor(t, c, 1)
		close(release)
		if err := <-flying; !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		if err := <-kept; err != nil {
			t.Errorf("the other set of the batch: %v", err)
		}
		if n, _ := rdb.Exists(ctx, "late", "kept").Result(); n != 1 {
			t.Errorf("%d of late, kept exist; want kept only", n)
		}
	})
}

// heldFlight puts a Coalescer on rdb (its batches sent on send) and a GET
// in flight on it, held until release is closed; flying answers the GET.
func heldFlight(t *testing.T, rdb, send *redis.Client) (c *Coalescer, release chan struct{}, flying chan error) {
	t.Helper()
	c = New(send, 1)
	rdb.AddHook(c)
	release = make(chan struct{})
	rdb.AddHook(holdHook{key: "hold", release: release})
	flying = make(chan error, 1)
	go func() { flying <- rdb.Get(context.Background(), "hold").Err() }()
	return c, release, flying
}

// waitFor waits until n commands wait for the flight in the air.
func waitFor(t *testing.T, c *Coalescer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		w, busy := len(c.waiting), c.busy
		c.mu.Unlock()
		if w == n && busy == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting (%d in flight), want %d", w, busy, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdHook holds a GET of key until release is closed.
type holdHook struct {
	key     string
	release chan struct{}
}

func (h holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); cmd.Name() == "get" && len(a) == 2 && a[1] == h.key {
			<-h.release
		}
		return next(ctx, cmd)
	}
}

// TestBatchFailuresAreRetriedAlone: when a batch's command fails on the
// connection or is refused for now (READONLY during a failover), that
// command alone is sent again, through the client's own retries; the
// commands of the batch that had their answer are not sent twice (as they
// would be if go-redis retried the whole pipeline). A command's own error
// is final.
func TestBatchFailuresAreRetriedAlone(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		send := srv.Client(t)
		send.AddHook(failLater{})
		c, release, flying := heldFlight(t, rdb, send)
		ctx := context.Background()
		waitFor(t, c, 0)
		type res struct {
			v   int64
			err error
		}
		out := make([]chan res, 4)
		keys := []string{"first", "eof", "readonly", "own"}
		for i, k := range keys {
			out[i] = make(chan res, 1)
			go func() { v, err := rdb.Incr(ctx, k).Result(); out[i] <- res{v, err} }()
			waitFor(t, c, i+1)
		}
		close(release)
		if err := <-flying; !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		for i, k := range keys {
			r := <-out[i]
			switch {
			case k == "own" && (r.err == nil || r.err.Error() != "ERR own answer"):
				t.Errorf("incr %s: %d, %v; want its own error, final", k, r.v, r.err)
			case k != "own" && (r.err != nil || r.v != 1):
				t.Errorf("incr %s: %d, %v; want 1", k, r.v, r.err)
			}
			n, _ := rdb.Get(ctx, k).Int()
			if want := map[bool]int{true: 0, false: 1}[k == "own"]; n != want {
				t.Errorf("%s is %d on the server, want %d (run once)", k, n, want)
			}
		}
	})
}

// failLater runs a pipeline's first command only, and answers the others
// as a connection that dropped, a replica, and a command's own error.
type failLater struct{}

type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func (failLater) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failLater) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failLater) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) < 4 || cmds[0].Name() != "incr" {
			return next(ctx, cmds)
		}
		err := next(ctx, cmds[:1])
		cmds[1].SetErr(io.ErrUnexpectedEOF)
		cmds[2].SetErr(replyErr("READONLY You can't write against a read only replica."))
		cmds[3].SetErr(replyErr("ERR own answer"))
		return err
	}
}
