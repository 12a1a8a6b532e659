package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/orders"
	"orderflow/providers"
)

// Task types. Never rename one once deployed.
const (
	TypePreview = "order:preview"
	TypeCreate  = "order:create"
	TypePoll    = "order:poll"
	TypeTrack   = "order:track"
	TypeCancel  = "order:cancel"
	TypeExpire  = "order:expire"
	TypeNotify  = "order:notify"
)

// QueueNotify is the queue of callback deliveries, served apart from the
// providers' queues so a slow upstream never holds a provider slot.
const QueueNotify = "orderflow:notify"

// Types lists every task type.
var Types = []string{TypePreview, TypeCreate, TypePoll, TypeTrack, TypeCancel, TypeExpire, TypeNotify}

// Queue kinds, in the priority a provider's server serves them.
const (
	KindCreate  = "create"
	KindPreview = "preview"
	KindPoll    = "poll"
)

// Queue is the name of a provider's queue of a kind, e.g. "depal:create".
func Queue(provider, kind string) string { return provider + ":" + kind }

// Queues returns the queues of one provider with their priorities, for
// asynq.Config.Queues with StrictPriority.
func Queues(provider string) map[string]int {
	return map[string]int{
		Queue(provider, KindCreate):  3,
		Queue(provider, KindPreview): 2,
		Queue(provider, KindPoll):    1,
	}
}

// Retry limits and timeouts per type.
const (
	previewMaxRetry = 20
	createMaxRetry  = 20
	// loopMaxRetry bounds real failures of the looping tasks (poll, track,
	// cancel); their waits are deferrals and do not count.
	loopMaxRetry = 25
	// notifyMaxRetry: with backoff capped at 5 min, about two hours of
	// retries before the delivery is archived (visible in the web UI).
	notifyMaxRetry = 30
	callTimeout    = 2 * time.Minute
)

// LongestTimeout is the longest timeout of any task: a worker's drain
// (SHUTDOWN_TIMEOUT) must exceed it, and a pod's grace period the drain.
const LongestTimeout = callTimeout

// ref is the payload of every task but preview: which order.
type ref struct {
	Provider   string `json:"provider"`
	OutOrderID string `json:"outOrderId"`
}

func (r ref) key() orders.Key { return orders.Key{Provider: r.Provider, OutOrderID: r.OutOrderID} }

// TaskID is the asynq task id of a task type for an order: re-enqueueing
// the same step of the same order is a no-op while the task exists.
func TaskID(taskType string, k orders.Key) string {
	return taskType + ":" + k.Provider + ":" + k.OutOrderID
}

// NewPreviewTask returns the first task of an order: the one upstream Go
// programs enqueue. The order is validated first; a *providers.FieldError
// names the field that is wrong. Its task id makes a re-submission of the
// same order (provider + outOrderId) a no-op while the task exists.
func NewPreviewTask(order providers.OrderRequest) (*asynq.Task, error) {
	if err := order.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(order)
	if err != nil {
		return nil, fmt.Errorf("tasks: encode order: %w", err)
	}
	k := orders.Key{Provider: order.Provider, OutOrderID: order.OutOrderID}
	return asynq.NewTask(TypePreview, b,
		asynq.TaskID(TaskID(TypePreview, k)),
		asynq.Queue(Queue(order.Provider, KindPreview)),
		asynq.MaxRetry(previewMaxRetry),
		asynq.Timeout(callTimeout)), nil
}

// NewCancelTask returns the task that asks the provider to cancel an order.
func NewCancelTask(k orders.Key) *asynq.Task {
	return newRefTask(TypeCancel, k, KindCreate, loopMaxRetry)
}

func newRefTask(taskType string, k orders.Key, kind string, maxRetry int, opts ...asynq.Option) *asynq.Task {
	b, _ := json.Marshal(ref{Provider: k.Provider, OutOrderID: k.OutOrderID}) // two strings: cannot fail
	opts = append([]asynq.Option{
		asynq.TaskID(TaskID(taskType, k)),
		asynq.Queue(Queue(k.Provider, kind)),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(callTimeout),
	}, opts...)
	return asynq.NewTask(taskType, b, opts...)
}

func newCreateTask(k orders.Key) *asynq.Task {
	return newRefTask(TypeCreate, k, KindCreate, createMaxRetry)
}

func newPollTask(k orders.Key, in time.Duration) *asynq.Task {
	return newRefTask(TypePoll, k, KindPoll, loopMaxRetry, asynq.ProcessIn(in))
}

func newTrackTask(k orders.Key) *asynq.Task {
	return newRefTask(TypeTrack, k, KindPoll, loopMaxRetry)
}

func newExpireTask(k orders.Key, at time.Time) *asynq.Task {
	return newRefTask(TypeExpire, k, KindPoll, loopMaxRetry, asynq.ProcessAt(at))
}
