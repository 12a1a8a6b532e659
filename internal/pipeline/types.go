package pipeline

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/tasks"
)

// Queues returns the queues of one provider with their priorities, for
// asynq.Config.Queues with StrictPriority.
func Queues(provider string) map[string]int {
	return map[string]int{
		tasks.Queue(provider, tasks.KindCreate):  3,
		tasks.Queue(provider, tasks.KindPreview): 2,
		tasks.Queue(provider, tasks.KindPoll):    1,
	}
}

// Retry limits per type.
const (
	createMaxRetry = 20
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

// ref is the payload of every task but preview: which order.
type ref tasks.Ref

func (r ref) key() orders.Key { return orders.Key{Provider: r.Provider, OutOrderID: r.OutOrderID} }

// TaskID is the asynq task id of a task type for an order.
func TaskID(taskType string, k orders.Key) string {
	return tasks.TaskID(taskType, k.Provider, k.OutOrderID)
}

// NewCancelTask returns the task that asks the provider to cancel an order.
func NewCancelTask(k orders.Key) *asynq.Task {
	return newRefTask(tasks.TypeCancel, k, tasks.KindCreate, loopMaxRetry)
}

func newRefTask(taskType string, k orders.Key, kind string, maxRetry int, opts ...asynq.Option) *asynq.Task {
	b, _ := json.Marshal(ref{Provider: k.Provider, OutOrderID: k.OutOrderID}) // two strings: cannot fail
	opts = append([]asynq.Option{
		asynq.TaskID(TaskID(taskType, k)),
		asynq.Queue(tasks.Queue(k.Provider, kind)),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(tasks.Timeout),
	}, opts...)
	return asynq.NewTask(taskType, b, opts...)
}

func newCreateTask(k orders.Key) *asynq.Task {
	return newRefTask(tasks.TypeCreate, k, tasks.KindCreate, createMaxRetry)
}

func newPollTask(k orders.Key, in time.Duration) *asynq.Task {
	return newRefTask(tasks.TypePoll, k, tasks.KindPoll, loopMaxRetry, asynq.ProcessIn(in))
}

func newTrackTask(k orders.Key) *asynq.Task {
	return newRefTask(tasks.TypeTrack, k, tasks.KindPoll, loopMaxRetry)
}

func newExpireTask(k orders.Key, at time.Time) *asynq.Task {
	return newRefTask(tasks.TypeExpire, k, tasks.KindPoll, loopMaxRetry, asynq.ProcessAt(at))
}
