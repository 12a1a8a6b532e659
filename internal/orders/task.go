package orders

import (
	"context"
	"crypto/sha1" //nolint:gosec // Redis names a script by its SHA-1
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Task is an asynq task enqueued in the same atomic step as a record write
// (Store.CreateThen, Store.UpdateThen): one round trip instead of two, and
// no crash between the write and the enqueue. It holds what asynq's own
// enqueue or schedule script would be run with, captured from an
// asynq.Client whose Redis client answers without sending anything, so
// the message is asynq's own encoding. The write script does what those
// scripts do (asynq v0.26's, checked by their SHA-1 at capture: a changed
// script is refused, and the caller enqueues the usual way).
type Task struct {
	// Queue is the task's queue; ID its id.
	Queue, ID string
	scheduled bool
	taskKey   string // asynq:{<queue>}:t:<id>
	listKey   string // the pending list, or the scheduled set
	msg       string // the encoded task message
	at        int64  // pending: pending_since, unix ns; scheduled: process_at, unix s
	// Announce, when set, is the Pub/Sub channel the write publishes the
	// queue's name on once the task is pending (package wake).
	Announce string
}

// ErrTaskCapture: asynq did not enqueue the way Task knows (another asynq
// version, a unique or grouped task); enqueue it the usual way.
var ErrTaskCapture = errors.New("orders: asynq's enqueue not captured")

// The scripts asynq v0.26 enqueues and schedules a task with (rdb.go
// enqueueCmd and scheduleCmd), by SHA-1. writeScript's task part does the
// same.
var (
	asynqEnqueueSHA  = scriptSHA("\nif redis.call(\"EXISTS\", KEYS[1]) == 1 then\n\treturn 0\nend\nredis.call(\"HSET\", KEYS[1],\n           \"msg\", ARGV[1],\n           \"state\", \"pending\",\n           \"pending_since\", ARGV[3])\nredis.call(\"LPUSH\", KEYS[2], ARGV[2])\nreturn 1\n")
	asynqScheduleSHA = scriptSHA("\nif redis.call(\"EXISTS\", KEYS[1]) == 1 then\n\treturn 0\nend\nredis.call(\"HSET\", KEYS[1],\n           \"msg\", ARGV[1],\n           \"state\", \"scheduled\")\nredis.call(\"ZADD\", KEYS[2], ARGV[2], ARGV[3])\nreturn 1\n")
)

func scriptSHA(src string) string {
	sum := sha1.Sum([]byte(src)) //nolint:gosec // Redis names a script by its SHA-1
	return hex.EncodeToString(sum[:])
}

// allQueuesKey is asynq's set of queue names (base.AllQueues), which its
// client adds a queue to before enqueuing into it.
const allQueuesKey = "asynq:queues"

// capturing is the asynq client NewTask captures with, made on first
// use: its Redis client sends nothing, it hands the script's keys and
// arguments to the Task in the context.
var capturing = sync.OnceValue(func() *asynq.Client {
	c := redis.NewClient(&redis.Options{Addr: "capture.invalid:1"})
	c.AddHook(captureHook{})
	return asynq.NewClientFromRedisClient(c)
})

type captureKey struct{}

// NewTask captures how asynq enqueues t (with its own options, and opts).
func NewTask(t *asynq.Task, opts ...asynq.Option) (*Task, error) {
	out := &Task{}
	ctx := context.WithValue(context.Background(), captureKey{}, out)
	info, err := capturing().EnqueueContext(ctx, t, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTaskCapture, err)
	}
	if out.taskKey == "" {
		return nil, fmt.Errorf("%w: no script seen", ErrTaskCapture)
	}
	out.Queue, out.ID = info.Queue, info.ID
	return out, nil
}

// captureHook answers asynq's client without a server: SADD of the queue
// name (done by the write script) and the enqueue or schedule script,
// whose keys and arguments it keeps.
type captureHook struct{}

func (captureHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (captureHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(context.Context, []redis.Cmder) error { return ErrTaskCapture }
}

func (captureHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		out, _ := ctx.Value(captureKey{}).(*Task)
		args := cmd.Args()
		switch c := cmd.(type) {
		case *redis.IntCmd:
			if cmd.Name() == "sadd" && len(args) == 3 && args[1] == allQueuesKey {
				c.SetVal(1)
				return nil
			}
		case *redis.Cmd:
			if cmd.Name() == "evalsha" && out != nil && len(args) == 8 && args[2] == 2 {
				if out.capture(args) {
					c.SetVal(int64(1))
					return nil
				}
			}
		}
		cmd.SetErr(fmt.Errorf("%w: %s", ErrTaskCapture, cmd.Name()))
		return cmd.Err()
	}
}

// capture keeps the keys and arguments of asynq's enqueue or schedule
// script: EVALSHA sha 2 taskKey listKey ARGV...
func (t *Task) capture(args []any) bool {
	sha, _ := args[1].(string)
	taskKey, _ := args[3].(string)
	listKey, _ := args[4].(string)
	msg, okMsg := args[5].([]byte)
	switch {
	case !okMsg || !strings.HasPrefix(taskKey, "asynq:{"):
		return false
	case sha == asynqEnqueueSHA && strings.HasSuffix(listKey, "}:pending"):
		id, _ := args[6].(string)
		at, ok := args[7].(int64)
		if !ok || id == "" {
			return false
		}
		t.at = at
	case sha == asynqScheduleSHA && strings.HasSuffix(listKey, "}:scheduled"):
		at, ok := args[6].(int64)
		id, _ := args[7].(string)
		if !ok || id == "" {
			return false
		}
		t.scheduled, t.at = true, at
	default:
		return false
	}
	t.taskKey, t.listKey, t.msg = taskKey, listKey, string(msg)
	return true
}

// argv is the task part of the write script's arguments (empty ones for
// nil: the finish part comes after it).
func (t *Task) argv() []any {
	if t == nil {
		return []any{"", "", "", "", "", "", "", "", ""}
	}
	kind := "p"
	if t.scheduled {
		kind = "s"
	}
	return []any{kind, t.taskKey, t.listKey, t.msg, t.at, t.ID, t.Queue, allQueuesKey, t.Announce}
}
