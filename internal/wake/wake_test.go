package wake_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
	"orderflow/internal/wake"
)

const queue = "wq:preview"

// rig is an asynq server on one queue that looks only every second on its
// own (TaskCheckInterval 1s), with a Waker on its client, and a producer
// on a client of its own (another process, as far as the Waker knows).
type rig struct {
	waker    *wake.Waker
	producer *redis.Client
	client   *asynq.Client
	started  chan time.Time
	srv      *asynq.Server
}

func newRig(t *testing.T, s *redistest.Server) *rig {
	t.Helper()
	rdb := s.Client(t)
	w := wake.New([]string{queue}, time.Second)
	rdb.AddHook(w)
	if err := w.Start(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	r := &rig{waker: w, producer: s.Client(t), started: make(chan time.Time, 100)}
	r.client = asynq.NewClientFromRedisClient(r.producer)
	r.srv = asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 2, Queues: map[string]int{queue: 1},
		TaskCheckInterval: time.Second, LogLevel: asynq.ErrorLevel, ShutdownTimeout: time.Second,
	})
	if err := r.srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		r.started <- time.Now()
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); r.srv.Shutdown() })
	time.Sleep(200 * time.Millisecond) // the server's first look is under way
	return r
}

// pickup enqueues a task, announces it, and returns how long the server
// took to start it.
func (r *rig) pickup(t *testing.T, announce bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	if _, err := r.client.Enqueue(asynq.NewTask("wake:test", nil), asynq.Queue(queue)); err != nil {
		t.Fatal(err)
	}
	if announce {
		if err := wake.Announce(context.Background(), r.producer, queue); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case at := <-r.started:
		return at.Sub(t0)
	case <-time.After(5 * time.Second):
		t.Fatal("task not started within 5s")
		return 0
	}
}

func servers(t *testing.T) map[string]func(testing.TB) *redistest.Server {
	return map[string]func(testing.TB) *redistest.Server{
		"miniredis": func(tb testing.TB) *redistest.Server { return redistest.Mini(tb) },
		"redis":     func(tb testing.TB) *redistest.Server { return redistest.Real(tb) },
	}
}

// An announced task is started at once by a server that, polling, would
// look only every second: every pickup at a random phase well under the
// half second a poll every second averages.
func TestAnnouncedTaskIsTakenAtOnce(t *testing.T) {
	for name, start := range servers(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, start(t))
			var got []time.Duration
			for range 12 {
				time.Sleep(time.Duration(rand.Int64N(int64(300 * time.Millisecond))))
				got = append(got, r.pickup(t, true))
			}
			slices.Sort(got)
			t.Logf("pickups: %v", got)
			if p := got[len(got)-2]; p > 150*time.Millisecond {
				t.Fatalf("second-slowest pickup %s, want under 150ms (polling every second would average 500ms)", p)
			}
		})
	}
}

// Without an announcement a task still starts, at the server's next look
// (within the wait and a check interval).
func TestUnannouncedTaskWaitsForTheNextLook(t *testing.T) {
	r := newRig(t, redistest.Mini(t))
	if d := r.pickup(t, false); d > 3*time.Second {
		t.Fatalf("unannounced task started after %s, want within 3s", d)
	}
}

// An idle server holding its look costs Redis about one dequeue a second,
// where polling every 10ms costs a hundred.
func TestIdleServerWaits(t *testing.T) {
	s := redistest.Mini(t)
	rdb := s.Client(t)
	var dequeues atomic.Int64
	rdb.AddHook(counter{&dequeues, queue})
	w := wake.New([]string{queue}, time.Second)
	rdb.AddHook(w)
	if err := w.Start(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel, ShutdownTimeout: time.Second})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	w.Close()
	t0 := time.Now()
	srv.Shutdown()
	if d := time.Since(t0); d > 900*time.Millisecond {
		t.Errorf("shutdown took %s: Close did not release the waiting look", d)
	}
	if n := dequeues.Load(); n > 8 {
		t.Fatalf("%d dequeues in 3s idle at a 10ms check interval, want at most 8", n)
	}
}

// counter counts asynq dequeue scripts (4 keys, the first a pending list)
// of queue q.
type counter struct {
	n *atomic.Int64
	q string
}

func (c counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 3 && (cmd.Name() == "evalsha" || cmd.Name() == "eval") && a[3] == "asynq:{"+c.q+"}:pending" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// A server's mostly empty queue (SkipEmpty) is asked a few times a second
// while its busy queue is drained, not before most dequeues; a task put
// in it by this process is taken at once, one announced by another at
// once, one nobody announced within the skip window.
func TestSkipEmptyQueue(t *testing.T) {
	const busy, quiet = "wq:poll", "wq:create"
	s := redistest.Mini(t)
	rdb := s.Client(t)
	w := wake.New(nil, time.Second)
	w.SkipEmpty([]string{quiet}, 300*time.Millisecond)
	rdb.AddHook(w) // outermost: the counter below sees only what is sent
	var probes, busyDequeues atomic.Int64
	rdb.AddHook(counter{&probes, quiet})
	rdb.AddHook(counter{&busyDequeues, busy})
	if err := w.Start(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	ran := make(chan string, 1000)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{quiet: 5, busy: 2},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel, ShutdownTimeout: time.Second})
	if err := srv.Start(asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
		ran <- t.Type()
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); srv.Shutdown() })

	other := asynq.NewClientFromRedisClient(s.Client(t)) // another process, as far as the Waker knows
	const n = 300
	for range n {
		if _, err := other.Enqueue(asynq.NewTask("busy", nil), asynq.Queue(busy)); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	for range n {
		select {
		case <-ran:
		case <-time.After(20 * time.Second):
			t.Fatal("busy tasks not run")
		}
	}
	d := time.Since(t0)
	if p, max := probes.Load(), int64(d/(300*time.Millisecond))+10; p > max {
		t.Errorf("%d probes of the empty queue while %d busy tasks ran in %s (%d dequeues), want at most %d", p, n, d.Round(time.Millisecond), busyDequeues.Load(), max)
	}

	take := func(name string, enqueue func() error, within time.Duration) {
		t.Helper()
		time.Sleep(100 * time.Millisecond) // the quiet queue known empty again
		t0 := time.Now()
		if err := enqueue(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ran:
			if d := time.Since(t0); d > within {
				t.Errorf("%s: taken after %s, want within %s", name, d.Round(time.Millisecond), within)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not taken", name)
		}
	}
	own := asynq.NewClientFromRedisClient(rdb)
	task := asynq.NewTask("quiet", nil, asynq.Queue(quiet))
	take("this process's", func() error { _, err := own.Enqueue(task); return err }, 150*time.Millisecond)
	take("announced", func() error {
		if _, err := other.Enqueue(task); err != nil {
			return err
		}
		return wake.Announce(context.Background(), s.Client(t), quiet)
	}, 150*time.Millisecond)
	take("unannounced", func() error { _, err := other.Enqueue(task); return err }, 600*time.Millisecond)
}
