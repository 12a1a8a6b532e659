package orders

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// TestTaskWithWrite: a task captured from asynq is enqueued by the record
// write exactly as asynq's client enqueues it (the inspector sees it with
// its queue, payload, retry and timeout, a server runs it), pending or
// scheduled; the queue is announced; a task already holding the id is
// left alone and reported, the record still written.
func TestTaskWithWrite(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		ctx := context.Background()
		st := NewStore(rdb, Config{Retention: time.Hour})
		insp := asynq.NewInspectorFromRedisClient(rdb)

		sub := rdb.Subscribe(ctx, "test:wake")
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}

		// Pending, announced, with the create.
		task, err := NewTask(asynq.NewTask("test:step", []byte(`{"n":1}`), asynq.TaskID("step-1"), asynq.Queue("q1"),
			asynq.MaxRetry(7), asynq.Timeout(42*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		task.Announce = "test:wake"
		r, created, queued, err := st.CreateThen(ctx, sampleRequest("T-1"), task)
		if err != nil || !created || !queued {
			t.Fatalf("CreateThen = created %v, queued %v, %v", created, queued, err)
		}
		info, err := insp.GetTaskInfo("q1", "step-1")
		if err != nil {
			t.Fatal(err)
		}
		if info.State != asynq.TaskStatePending || info.Type != "test:step" || string(info.Payload) != `{"n":1}` ||
			info.MaxRetry != 7 || info.Timeout != 42*time.Second {
			t.Errorf("task info %+v", info)
		}
		select {
		case m := <-sub.Channel():
			if m.Payload != "q1" {
				t.Errorf("announced %q, want q1", m.Payload)
			}
		case <-time.After(5 * time.Second):
			t.Error("no announcement")
		}
		queues, err := insp.Queues()
		if err != nil || len(queues) != 1 || queues[0] != "q1" {
			t.Errorf("queues %v, %v; want [q1]", queues, err)
		}

		// A duplicate create enqueues nothing.
		again, err := NewTask(asynq.NewTask("test:step", nil, asynq.TaskID("step-2"), asynq.Queue("q1")))
		if err != nil {
			t.Fatal(err)
		}
		if _, created, queued, err := st.CreateThen(ctx, sampleRequest("T-1"), again); err != nil || created || queued {
			t.Fatalf("second CreateThen = created %v, queued %v, %v", created, queued, err)
		}
		if _, err := insp.GetTaskInfo("q1", "step-2"); !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("a duplicate create enqueued its task: %v", err)
		}

		// Scheduled, with an update; then the same id again: held.
		sched, err := NewTask(asynq.NewTask("test:later", nil, asynq.TaskID("later-1"), asynq.Queue("q2"), asynq.ProcessIn(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		bump := func(r *Record) error { r.PollStep++; return nil }
		r, queued, err = st.UpdateThen(ctx, r.Key(), r, bump, func(*Record) (*Task, bool) { return sched, false })
		if err != nil || !queued || r.PollStep != 1 {
			t.Fatalf("UpdateThen = queued %v, step %d, %v", queued, r.PollStep, err)
		}
		info, err = insp.GetTaskInfo("q2", "later-1")
		if err != nil {
			t.Fatal(err)
		}
		if info.State != asynq.TaskStateScheduled || time.Until(info.NextProcessAt) < 59*time.Minute {
			t.Errorf("scheduled task %+v", info)
		}
		r, queued, err = st.UpdateThen(ctx, r.Key(), r, bump, func(*Record) (*Task, bool) { return sched, false })
		if err != nil || queued || r.PollStep != 2 {
			t.Fatalf("UpdateThen over a held id = queued %v, step %d, %v; want written, not queued", queued, r.PollStep, err)
		}

		// An asynq server runs what the write enqueued.
		ran := make(chan string, 1)
		srvr := asynq.NewServerFromRedisClient(rdb, asynq.Config{Queues: map[string]int{"q1": 1}, Concurrency: 1,
			TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
		mux := asynq.NewServeMux()
		mux.HandleFunc("test:step", func(_ context.Context, t *asynq.Task) error { ran <- string(t.Payload()); return nil })
		if err := srvr.Start(mux); err != nil {
			t.Fatal(err)
		}
		defer srvr.Shutdown()
		select {
		case p := <-ran:
			if p != `{"n":1}` {
				t.Errorf("ran payload %q", p)
			}
		case <-time.After(10 * time.Second):
			t.Error("the server did not run the task")
		}
	})
}

// TestTaskCaptureRefusesOtherScripts: a script that is not asynq v0.26's
// enqueue or schedule (another version, a unique task) is not captured,
// so the caller enqueues the usual way.
func TestTaskCaptureRefusesOtherScripts(t *testing.T) {
	if _, err := NewTask(asynq.NewTask("test:u", nil, asynq.Queue("q"), asynq.Unique(time.Minute))); !errors.Is(err, ErrTaskCapture) {
		t.Errorf("unique task: %v, want ErrTaskCapture", err)
	}
	var tk Task
	args := []any{"evalsha", "0000000000000000000000000000000000000000", 2, "asynq:{q}:t:x", "asynq:{q}:pending", []byte("m"), "x", int64(1)}
	if tk.capture(args) {
		t.Error("a script of unknown SHA-1 was captured")
	}
	args[1] = asynqEnqueueSHA
	if !tk.capture(args) || tk.scheduled || tk.at != 1 {
		t.Errorf("asynq's enqueue not captured: %+v", tk)
	}
	var nilTask *Task
	if a := nilTask.argv(); len(a) != len((&Task{}).argv()) || a[0] != "" {
		t.Errorf("no task: argv %q, want as many empty ones as a task's", a)
	}
}

// TestRecordOnlyWritesIgnoreTasks: a write without a task (every caller
// before Task existed, and one whose task could not be captured) answers
// as before and reports nothing queued, so the caller enqueues.
func TestRecordOnlyWritesIgnoreTasks(t *testing.T) {
	srv := redistest.Mini(t)
	st := NewStore(srv.Client(t), Config{})
	ctx := context.Background()
	r, created, queued, err := st.CreateThen(ctx, sampleRequest("N-1"), nil)
	if err != nil || !created || queued {
		t.Fatalf("CreateThen without task = created %v, queued %v, %v; want created, nothing queued", created, queued, err)
	}
	r, queued, err = st.UpdateThen(ctx, r.Key(), r, func(r *Record) error { r.State = providers.StateReceived; return nil }, nil)
	if err != nil || queued || r.Version != 2 {
		t.Fatalf("UpdateThen without task = queued %v, version %d, %v", queued, r.Version, err)
	}
}
