package orders

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Finisher lets a record write that is the last step of an asynq task's
// run also complete the task (asynq's "done": off the active list and the
// lease set, the task's hash deleted, the queue's processed counts up),
// in the write's atomic step: one round trip fewer per run, and no crash
// can leave the run's write made but the run still active (to be run
// again). The handler then returns nil, and asynq completes the task as
// usual; the Finisher, installed as a hook of the go-redis client the
// asynq servers run on, answers that completion without sending it.
//
// It finishes tasks only once it has seen asynq complete a task with the
// script it knows (asynq v0.26's doneCmd, by SHA-1): under another asynq
// version the write never finishes a task, and asynq completes each one
// itself. Safe for concurrent use.
type Finisher struct {
	mu       sync.Mutex
	known    bool                 // a done with asynqDoneSHA was seen, and none other
	mismatch bool                 // a done-shaped script with another SHA was seen
	done     map[string]time.Time // queue + "\x00" + id -> when its write finished it
	elided   int64
}

// asynqDoneSHA is the SHA-1 of asynq v0.26's doneCmd (rdb.go), which
// completes a task without retention or unique key; the write script's
// finish part does what it does.
var asynqDoneSHA = scriptSHA(`
if redis.call("LREM", KEYS[1], 0, ARGV[1]) == 0 then
  return redis.error_reply("NOT FOUND")
end
if redis.call("ZREM", KEYS[2], ARGV[1]) == 0 then
  return redis.error_reply("NOT FOUND")
end
if redis.call("DEL", KEYS[3]) == 0 then
  return redis.error_reply("NOT FOUND")
end
local n = redis.call("INCR", KEYS[4])
if tonumber(n) == 1 then
	redis.call("EXPIREAT", KEYS[4], ARGV[2])
end
local total = redis.call("GET", KEYS[5])
if tonumber(total) == tonumber(ARGV[3]) then
	redis.call("SET", KEYS[5], 1)
else
	redis.call("INCR", KEYS[5])
end
return redis.status_reply("OK")
`)

// asynqStatsTTL is how long asynq keeps a day's processed count (its
// rdb.statsTTL).
const asynqStatsTTL = 90 * 24 * time.Hour

// finishedTTL bounds how long a finished task waits for asynq's
// completion to be answered: asynq completes it as soon as the handler
// returns, or never (its lease ran out, and asynq leaves the task alone).
const finishedTTL = 5 * time.Minute

// NewFinisher returns a Finisher; pass it to the store (Config.Finisher)
// and to the asynq servers' client (AddHook).
func NewFinisher() *Finisher {
	return &Finisher{done: map[string]time.Time{}}
}

// Elided is how many of asynq's completions it answered so far.
func (f *Finisher) Elided() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.elided
}

// finish is the write script's finish part for the task running in ctx
// ("" and no key when none may be finished: no task, or no known done).
func (f *Finisher) finish(ctx context.Context, now time.Time) []any {
	none := []any{""}
	if f == nil {
		return none
	}
	f.mu.Lock()
	on := f.known && !f.mismatch
	f.mu.Unlock()
	id, okID := asynq.GetTaskID(ctx)
	q, okQ := asynq.GetQueueName(ctx)
	if !on || !okID || !okQ || id == "" {
		return none
	}
	prefix := "asynq:{" + q + "}:"
	return []any{id, prefix + "lease", prefix + "active", prefix + "t:" + id,
		prefix + "processed:" + now.UTC().Format("2006-01-02"), prefix + "processed",
		now.Add(asynqStatsTTL).Unix(), int64(1<<63 - 1)}
}

// finished records that the write finished the task running in ctx.
func (f *Finisher) finished(ctx context.Context, now time.Time) {
	id, _ := asynq.GetTaskID(ctx)
	q, _ := asynq.GetQueueName(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, at := range f.done {
		if now.Sub(at) > finishedTTL {
			delete(f.done, k)
		}
	}
	f.done[q+"\x00"+id] = now
}

// DialHook implements redis.Hook.
func (f *Finisher) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (f *Finisher) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook: asynq's completion of a task a write
// finished is answered "OK" without being sent; the first completions
// tell whether asynq completes tasks the way the write does.
func (f *Finisher) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c, ok := cmd.(*redis.Cmd)
		if !ok || cmd.Name() != "evalsha" {
			return next(ctx, cmd)
		}
		if key, sha, ok := doneShape(cmd.Args()); ok {
			f.mu.Lock()
			_, mine := f.done[key]
			if mine {
				delete(f.done, key)
				f.elided++
			}
			if sha == asynqDoneSHA {
				f.known = true
			} else {
				f.mismatch = true
			}
			f.mu.Unlock()
			if mine {
				c.SetVal("OK")
				return nil
			}
		}
		return next(ctx, cmd)
	}
}

// doneShape tells asynq's completion of a task by its keys and arguments
// (EVALSHA sha 5 active lease task processed-today processed id expire
// max), answering the task's queue + "\x00" + id.
func doneShape(args []any) (key, sha string, ok bool) {
	if len(args) != 11 || strconv.Itoa(toInt(args[2])) != "5" {
		return "", "", false
	}
	sha, _ = args[1].(string)
	active, _ := args[3].(string)
	lease, _ := args[4].(string)
	task, _ := args[5].(string)
	id, _ := args[8].(string)
	const pre = "asynq:{"
	if len(active) < len(pre)+len("}:active") || active[:len(pre)] != pre || active[len(active)-len("}:active"):] != "}:active" {
		return "", "", false
	}
	q := active[len(pre) : len(active)-len("}:active")]
	if id == "" || lease != pre+q+"}:lease" || task != pre+q+"}:t:"+id {
		return "", "", false
	}
	return q + "\x00" + id, sha, true
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	}
	return -1
}
