package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
)

// TestWriteFinishesItsRun: a write that ends an asynq task's run
// completes the task in its own atomic step, once the Finisher has seen
// asynq complete a task with the script it knows: asynq's own completion
// is then answered without being sent, and asynq counts the task
// processed once, with nothing left active and no complaint. A write
// whose next task is held, or whose run is not its last step, leaves the
// completion to asynq.
func TestWriteFinishesItsRun(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		fin := NewFinisher()
		rdb.AddHook(fin)
		sent := &sentDones{}
		rdb.AddHook(sent)
		ctx := context.Background()
		st := NewStore(rdb, Config{Retention: time.Hour, Finisher: fin})
		insp := asynq.NewInspectorFromRedisClient(rdb)
		r, _, err := st.Create(ctx, sampleRequest("F-1"))
		if err != nil {
			t.Fatal(err)
		}

		// Each run bumps the record and enqueues its successor (in q2,
		// which no server serves); run "held" finds its successor's id
		// taken, run "notlast" is not its run's last step.
		held, err := NewTask(asynq.NewTask("test:next", nil, asynq.TaskID("next-held"), asynq.Queue("q2")))
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, held.taskKey, "msg", "x", "state", "archived").Err(); err != nil {
			t.Fatal(err)
		}
		ran := make(chan string, 10)
		mux := asynq.NewServeMux()
		mux.HandleFunc("test:run", func(ctx context.Context, task *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			_, _, err := st.UpdateThen(ctx, r.Key(), nil, func(r *Record) error { r.PollStep++; return nil },
				func(*Record) (*Task, bool) {
					if id == "held" {
						return held, true
					}
					next, err := NewTask(asynq.NewTask("test:next", nil, asynq.TaskID("next-"+id), asynq.Queue("q2")))
					if err != nil {
						t.Error(err)
					}
					return next, id != "notlast"
				})
			ran <- id
			return err
		})
		logs := &asynqLog{}
		server := asynq.NewServerFromRedisClient(rdb, asynq.Config{Queues: map[string]int{"q": 1}, Concurrency: 1,
			TaskCheckInterval: 10 * time.Millisecond, Logger: logs, LogLevel: asynq.WarnLevel})
		if err := server.Start(mux); err != nil {
			t.Fatal(err)
		}
		defer server.Shutdown()
		runs := int64(0)
		run := func(id string) {
			t.Helper()
			runs++
			if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("test:run", nil, asynq.TaskID(id), asynq.Queue("q"))); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-ran:
				if got != id {
					t.Fatalf("ran %s, want %s", got, id)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("task %s did not run", id)
			}
			// asynq completes the task after the handler returns.
			deadline := time.Now().Add(10 * time.Second)
			for {
				// Gone (the write may have completed it), and asynq's own
				// completion of it sent or answered.
				_, err := insp.GetTaskInfo("q", id)
				if errors.Is(err, asynq.ErrTaskNotFound) && fin.Elided()+sent.n.Load() == runs {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("task %s still there: %v", id, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}

		run("first") // no completion seen yet: asynq completes it itself
		if fin.Elided() != 0 || sent.n.Load() != 1 {
			t.Fatalf("first run: %d completions answered, %d sent; want 0 and 1", fin.Elided(), sent.n.Load())
		}
		for i := 1; i <= 3; i++ {
			run(fmt.Sprint("run-", i))
		}
		if fin.Elided() != 3 || sent.n.Load() != 1 {
			t.Errorf("after three runs: %d completions answered, %d sent; want 3 and 1", fin.Elided(), sent.n.Load())
		}
		run("held")
		run("notlast")
		if fin.Elided() != 3 || sent.n.Load() != 3 {
			t.Errorf("held and not-last runs: %d completions answered, %d sent; want 3 and 3", fin.Elided(), sent.n.Load())
		}

		info, err := insp.GetQueueInfo("q")
		if err != nil {
			t.Fatal(err)
		}
		if info.Processed != 6 || info.ProcessedTotal != 6 || info.Active != 0 || info.Pending != 0 || info.Failed != 0 {
			t.Errorf("queue q: processed %d (total %d), active %d, pending %d, failed %d; want 6, 6 and nothing left",
				info.Processed, info.ProcessedTotal, info.Active, info.Pending, info.Failed)
		}
		if n, err := rdb.ZCard(ctx, "asynq:{q}:lease").Result(); err != nil || n != 0 {
			t.Errorf("leases left: %d, %v", n, err)
		}
		for _, id := range []string{"next-first", "next-run-1", "next-run-2", "next-run-3", "next-notlast"} {
			if _, err := insp.GetTaskInfo("q2", id); err != nil {
				t.Errorf("successor %s: %v", id, err)
			}
		}
		if got, err := st.Get(ctx, r.Key()); err != nil || got.PollStep != 6 {
			t.Errorf("record: step %v, %v; want 6 writes", got, err)
		}
		if w := logs.text(); w != "" {
			t.Errorf("asynq complained:\n%s", w)
		}
	})
}

// TestFinisherNeedsAsynqsOwnDone: the write completes no task until
// asynq was seen completing one with the script it knows, nor ever after
// a completion with another script (another asynq version); a task that
// is no longer active (its lease ran out, another worker took it) is not
// completed by the write.
func TestFinisherNeedsAsynqsOwnDone(t *testing.T) {
	ctx := context.Background()
	ctx = asynqTaskContext(t, ctx, "id-1", "q")
	fin := NewFinisher()
	if a := fin.finish(ctx, time.Now()); len(a) != 1 {
		t.Errorf("before any completion: finish part %v, want none", a)
	}
	done := func(sha string) redis.Cmder {
		cmd := redis.NewCmd(ctx, "evalsha", sha, 5, "asynq:{q}:active", "asynq:{q}:lease", "asynq:{q}:t:id-0",
			"asynq:{q}:processed:2026-12-01", "asynq:{q}:processed", "id-0", int64(1), int64(1<<63-1))
		return cmd
	}
	sentNext := 0
	next := func(context.Context, redis.Cmder) error { sentNext++; return nil }
	hook := fin.ProcessHook(next)
	_ = hook(ctx, done(asynqDoneSHA))
	if a := fin.finish(ctx, time.Now()); len(a) != 8 || a[0] != "id-1" || a[3] != "asynq:{q}:t:id-1" {
		t.Errorf("after asynq's own completion: finish part %v", a)
	}
	_ = hook(ctx, done(strings.Repeat("0", 40)))
	if a := fin.finish(ctx, time.Now()); len(a) != 1 {
		t.Errorf("after another script's completion: finish part %v, want none", a)
	}
	if sentNext != 2 {
		t.Errorf("%d completions sent, want both (none was the write's)", sentNext)
	}

	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		fin := NewFinisher()
		fin.known = true
		st := NewStore(rdb, Config{Finisher: fin})
		r, _, err := st.Create(ctx, sampleRequest("F-2"))
		if err != nil {
			t.Fatal(err)
		}
		// The task's hash exists, but it is not active (nor leased).
		if err := rdb.HSet(ctx, "asynq:{q}:t:id-1", "msg", "x", "state", "pending").Err(); err != nil {
			t.Fatal(err)
		}
		n, err := st.writeEvents(ctx, r.Clone(), r.Version, r.State, nil, nil, true)
		if err != nil || n != wroteQueued {
			t.Errorf("write finishing a task not active = %d, %v; want %d (written, nothing completed)", n, err, wroteQueued)
		}
		if ok, _ := rdb.Exists(ctx, "asynq:{q}:t:id-1").Result(); ok != 1 {
			t.Error("the write deleted a task it did not complete")
		}
	})
}

// asynqTaskContext is the context asynq runs task id of queue q with.
func asynqTaskContext(t *testing.T, ctx context.Context, id, q string) context.Context {
	t.Helper()
	ch := make(chan context.Context, 1)
	mr := redistest.Mini(t)
	rdb := mr.Client(t)
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:ctx", func(ctx context.Context, _ *asynq.Task) error { ch <- ctx; return nil })
	server := asynq.NewServerFromRedisClient(rdb, asynq.Config{Queues: map[string]int{q: 1}, Concurrency: 1,
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	if err := server.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer server.Shutdown()
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("test:ctx", nil, asynq.TaskID(id), asynq.Queue(q))); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-ch:
		return context.WithoutCancel(c)
	case <-time.After(10 * time.Second):
		t.Fatal("no task ran")
	}
	return ctx
}

// sentDones counts asynq's completions sent to Redis.
type sentDones struct{ n atomic.Int64 }

func (s *sentDones) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *sentDones) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *sentDones) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if _, _, ok := doneShape(cmd.Args()); ok && cmd.Name() == "evalsha" {
			s.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// asynqLog keeps what asynq logs at warning and above.
type asynqLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *asynqLog) add(args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.b, args...)
}
func (l *asynqLog) text() string  { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *asynqLog) Debug(...any)  {}
func (l *asynqLog) Info(...any)   {}
func (l *asynqLog) Warn(a ...any) { l.add(a...) }
func (l *asynqLog) Error(a ...any) {
	l.add(a...)
}
func (l *asynqLog) Fatal(a ...any) { l.add(a...) }
