package pipeline

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/tasks"
)

// Queues returns every queue of one provider: its intake queue and the
// queues of its orders under way.
func Queues(provider string) map[string]int {
	q := FollowQueues(provider)
	q[IntakeQueue(provider)] = 1
	return q
}

// IntakeQueue is a provider's queue of new orders (the preview task, which
// goes on to create the order): served by a server of its own, so new
// orders and orders under way each keep their own worker slots.
func IntakeQueue(provider string) string { return tasks.Queue(provider, tasks.KindPreview) }

// FollowQueues returns the queues of a provider's orders under way with
// their weights, for asynq.Config.Queues (not strict priority): create
// retries, cancels and decisions are picked first most often, but polls
// keep two picks in seven during a backlog of them.
func FollowQueues(provider string) map[string]int {
	return map[string]int{
		tasks.Queue(provider, tasks.KindCreate): 5,
		tasks.Queue(provider, tasks.KindPoll):   2,
	}
}

// Retry limits per type.
const (
	// createMaxRetry is beyond any budget the create step spends: the step
	// parks an order by its own count (createBudget, outcomeBudget), so
	// asynq's counter, or its recoverer after a kill, never archives a
	// create first.
	createMaxRetry = 1 << 16
	// loopMaxRetry bounds real failures of the looping tasks (poll, track,
	// cancel); their waits are deferrals and do not count.
	loopMaxRetry = 25
	// notifyMaxRetry: with backoff capped at 5 min, about two hours of
	// retries before the delivery is archived (visible in the web UI).
	notifyMaxRetry = 30
)

// LongestTimeout is the longest timeout of any task: a worker's drain
// (SHUTDOWN_TIMEOUT) must exceed it, and a pod's grace period the drain.
const LongestTimeout = tasks.Timeout

// ref is the payload of every task but preview: which order, and for
// poll and track the step's place in the order's chain.
type ref tasks.Ref

func (r ref) key() orders.Key { return orders.Key{Provider: r.Provider, OutOrderID: r.OutOrderID} }

// TaskID is the asynq task id of a task type for an order.
func TaskID(taskType string, k orders.Key) string {
	return tasks.TaskID(taskType, k.Provider, k.OutOrderID)
}

// pollID and trackID are the ids of the seq-th poll and track of an order:
// each run enqueues its successor under the next id before it completes.
func pollID(k orders.Key, seq int) string  { return seqID(tasks.TypePoll, k, seq) }
func trackID(k orders.Key, seq int) string { return seqID(tasks.TypeTrack, k, seq) }

func seqID(taskType string, k orders.Key, seq int) string {
	return TaskID(taskType, k) + ":" + strconv.Itoa(seq)
}

// NewCancelTask returns the step that asks the provider to cancel an order.
func NewCancelTask(k orders.Key) Step {
	return refStep(tasks.TypeCancel, TaskID(tasks.TypeCancel, k), ref{Provider: k.Provider, OutOrderID: k.OutOrderID}, tasks.KindCreate, loopMaxRetry)
}

func refStep(taskType, id string, r ref, kind string, maxRetry int, opts ...asynq.Option) Step {
	b, _ := json.Marshal(r) // strings and an int: cannot fail
	q := tasks.Queue(r.Provider, kind)
	opts = append([]asynq.Option{
		asynq.TaskID(id),
		asynq.Queue(q),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(tasks.Timeout),
	}, opts...)
	return Step{Task: asynq.NewTask(taskType, b, opts...), Queue: q, ID: id}
}

func keyRef(k orders.Key) ref { return ref{Provider: k.Provider, OutOrderID: k.OutOrderID} }

func newCreateTask(k orders.Key, opts ...asynq.Option) Step {
	return refStep(tasks.TypeCreate, TaskID(tasks.TypeCreate, k), keyRef(k), tasks.KindCreate, createMaxRetry, opts...)
}

func newPollTask(k orders.Key, seq int, in time.Duration) Step {
	r := keyRef(k)
	r.Seq = seq
	return refStep(tasks.TypePoll, pollID(k, seq), r, tasks.KindPoll, loopMaxRetry, asynq.ProcessIn(in))
}

func newTrackTask(k orders.Key, seq int, in time.Duration) Step {
	r := keyRef(k)
	r.Seq = seq
	return refStep(tasks.TypeTrack, trackID(k, seq), r, tasks.KindPoll, loopMaxRetry, asynq.ProcessIn(in))
}

// NewExpireTask returns the step that ends an order past its deadline
// (enqueued by the deadline sweep).
func NewExpireTask(k orders.Key) Step {
	return refStep(tasks.TypeExpire, TaskID(tasks.TypeExpire, k), keyRef(k), tasks.KindPoll, loopMaxRetry)
}
