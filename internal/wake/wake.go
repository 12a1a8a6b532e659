// Package wake lets an idle worker take a new task at once instead of at
// its next look. asynq finds work by polling: an idle server runs its
// dequeue script on every queue every TaskCheckInterval, which costs Redis
// a round trip per queue per look in every pod, idle or not. A Waker
// turns the polling of chosen single-queue servers into waiting: when such
// a queue's dequeue finds nothing, the Waker holds the answer back (the
// connection is already free) until a task is announced for the queue or
// MaxWait passes, and on an announcement runs the dequeue again and hands
// the task over. asynq is none the wiser: it sees a dequeue that took a
// while.
//
// Announcements come from producers (Announce, a PUBLISH on Channel after
// the enqueue), and from the Waker's own process: a task its client
// enqueues, or its servers' forwarder moves from scheduled or retry to
// pending. A missed announcement (a dropped subscription, a producer that
// does not announce) costs at most MaxWait.
package wake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is the Pub/Sub channel announcements go to; the message is the
// queue's name. Never rename it once deployed.
const Channel = "orderflow:wake"

// Announce tells idle workers that queue has a task pending.
func Announce(ctx context.Context, rdb redis.UniversalClient, queue string) error {
	if err := rdb.Publish(ctx, Channel, queue).Err(); err != nil {
		return fmt.Errorf("wake: announce %s: %w", queue, err)
	}
	return nil
}

// Waker holds back the empty dequeues of its queues until a task is
// announced. Install it as a hook of the go-redis client the asynq
// servers run on (redis.Client.AddHook) and Start it. Safe for concurrent
// use.
type Waker struct {
	queues  map[string]bool
	maxWait time.Duration
	skip    map[string]*quiet // SkipEmpty's queues

	mu     sync.Mutex
	gens   map[string]chan struct{} // closed by the queue's next announcement
	closed chan struct{}
	once   sync.Once
	sub    *redis.PubSub
}

// New returns a Waker for queues: an empty dequeue of one of them waits up
// to maxWait for an announcement. Each must be the only queue of its
// asynq server (a server with several queues probes them in turn, and a
// wait on one would hold up the others).
func New(queues []string, maxWait time.Duration) *Waker {
	w := &Waker{queues: map[string]bool{}, maxWait: maxWait, skip: map[string]*quiet{}, gens: map[string]chan struct{}{}, closed: make(chan struct{})}
	for _, q := range queues {
		w.queues[q] = true
	}
	return w
}

// SkipEmpty makes the Waker answer the dequeues of queues, which share
// their server with others, from memory while they are known to be
// empty: after a dequeue of one found nothing, the next ones are answered
// "nothing" without asking Redis until a task is announced for the queue
// or within (at most maxWait) has passed. A server with a busy queue and a
// mostly empty one (polls, and create retries, cancels and decisions)
// then probes the empty one a few times a second instead of before most
// dequeues of the busy one. Call it before the servers start.
func (w *Waker) SkipEmpty(queues []string, within time.Duration) {
	for _, q := range queues {
		w.skip[q] = &quiet{within: min(within, w.maxWait)}
	}
}

// quiet is what a SkipEmpty queue's last dequeue learned.
type quiet struct {
	within time.Duration
	mu     sync.Mutex
	empty  bool          // the last dequeue asked found nothing
	at     time.Time     // when it was sent
	since  chan struct{} // closed by an announcement after it was sent
}

// skips reports whether q's dequeue may be answered "nothing" from memory.
func (q *quiet) skips(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.empty || now.Sub(q.at) >= q.within {
		return false
	}
	select {
	case <-q.since:
		return false
	default:
		return true
	}
}

func (q *quiet) learn(empty bool, at time.Time, since chan struct{}) {
	q.mu.Lock()
	q.empty, q.at, q.since = empty, at, since
	q.mu.Unlock()
}

// Start subscribes to Channel on rdb; announcements are heard until Close.
func (w *Waker) Start(ctx context.Context, rdb redis.UniversalClient) error {
	sub := rdb.Subscribe(ctx, Channel)
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		return fmt.Errorf("wake: subscribe to %s: %w", Channel, err)
	}
	w.sub = sub
	ch := sub.Channel()
	go func() {
		for m := range ch {
			w.Wake(m.Payload)
		}
	}()
	return nil
}

// Close releases every waiting dequeue (with its empty answer) and stops
// listening; later dequeues no longer wait.
func (w *Waker) Close() {
	w.once.Do(func() {
		close(w.closed)
		if w.sub != nil {
			_ = w.sub.Close()
		}
	})
}

// Wake releases the dequeues waiting on queue.
func (w *Waker) Wake(queue string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.gens[queue]; ok {
		close(ch)
		delete(w.gens, queue)
	}
}

// next is the channel the queue's next announcement closes.
func (w *Waker) next(queue string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := w.gens[queue]
	if ch == nil {
		ch = make(chan struct{})
		w.gens[queue] = ch
	}
	return ch
}

// DialHook implements redis.Hook.
func (w *Waker) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (w *Waker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook: it holds back the empty dequeues of
// the Waker's queues, and announces (in this process) what an enqueue or
// the forwarder puts in a pending list.
func (w *Waker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		kind, q := scriptOf(cmd)
		switch {
		case kind == dequeue && w.skip[q] != nil:
			qs, now := w.skip[q], time.Now()
			if qs.skips(now) {
				cmd.SetErr(redis.Nil)
				return redis.Nil
			}
			ch := w.next(q) // before the dequeue: an announcement from now on counts
			err := next(ctx, cmd)
			qs.learn(errors.Is(err, redis.Nil), now, ch)
			return err
		case kind == dequeue && w.queues[q]:
			ch := w.next(q) // before the dequeue: an announcement from now on counts
			err := next(ctx, cmd)
			if !errors.Is(err, redis.Nil) {
				return err
			}
			t := time.NewTimer(w.maxWait)
			defer t.Stop()
			select {
			case <-ch:
				// The same script and arguments: the task's lease, which
				// asynq counted from before the wait, is up to maxWait
				// shorter than its 30 s (asynq extends leases every few
				// seconds).
				return next(ctx, cmd)
			case <-t.C:
			case <-w.closed:
			}
			return err
		case kind == push:
			err := next(ctx, cmd)
			if c, ok := cmd.(*redis.Cmd); ok && err == nil {
				if n, _ := c.Int64(); n > 0 {
					w.Wake(q)
				}
			}
			return err
		}
		return next(ctx, cmd)
	}
}

// Kinds of asynq script, by their keys.
const (
	other = iota
	// dequeue: KEYS pending, paused, active, lease.
	dequeue
	// push: KEYS <something>, pending; answers how many tasks it put in
	// pending (enqueue: the task's hash; forward: the scheduled or retry set).
	push
)

// scriptOf recognises asynq's dequeue, enqueue and forward scripts by the
// shape of their keys, and names their queue.
func scriptOf(cmd redis.Cmder) (int, string) {
	if n := cmd.Name(); n != "evalsha" && n != "eval" {
		return other, ""
	}
	args := cmd.Args()
	if len(args) < 5 {
		return other, ""
	}
	key := func(i int) string { s, _ := args[3+i].(string); return s }
	switch fmt.Sprint(args[2]) {
	case "4":
		if len(args) < 7 {
			return other, ""
		}
		q, ok := queueOf(key(0), "pending")
		if ok && strings.HasSuffix(key(1), "}:paused") && strings.HasSuffix(key(2), "}:active") && strings.HasSuffix(key(3), "}:lease") {
			return dequeue, q
		}
	case "2":
		if q, ok := queueOf(key(1), "pending"); ok && strings.HasPrefix(key(0), "asynq:{"+q+"}:") {
			return push, q
		}
	}
	return other, ""
}

// queueOf reads the queue from asynq's key "asynq:{<queue>}:<suffix>".
func queueOf(key, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "asynq:{")
	if !ok {
		return "", false
	}
	q, ok := strings.CutSuffix(rest, "}:"+suffix)
	return q, ok && q != ""
}
