package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

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
	// TypeDecide carries a person's decision on an order (enqueue review,
	// enqueue retry) to a worker, which answers in the task's result.
	TypeDecide = "order:decide"
)

// Types lists every task type.
var Types = []string{TypePreview, TypeCreate, TypePoll, TypeTrack, TypeCancel, TypeExpire, TypeNotify, TypeDecide}

// QueueNotify is the queue of callback deliveries, served apart from the
// providers' queues so a slow upstream never holds a provider slot.
const QueueNotify = "orderflow:notify"

// Queue kinds: each provider has a queue of each kind.
const (
	KindCreate  = "create"
	KindPreview = "preview"
	KindPoll    = "poll"
)

// Queue is the name of a provider's queue of a kind, e.g. "depal:create".
func Queue(provider, kind string) string { return provider + ":" + kind }

// Timeout is the timeout of every order task: a worker's drain must exceed
// it, and a pod's grace period the drain.
const Timeout = 2 * time.Minute

// PreviewMaxRetry is the preview task's retry limit.
const PreviewMaxRetry = 20

// Ref is the payload of every task type but order:preview (whose payload
// is the providers.OrderRequest itself): which order.
type Ref struct {
	Provider   string `json:"provider"`
	OutOrderID string `json:"outOrderId"`
	// Seq is, for order:poll and order:track, the run's place in the
	// order's chain of polls (each run schedules the next).
	Seq int `json:"seq,omitempty"`
}

// TaskID is the asynq task id of a task type for an order: re-enqueueing
// the same step of the same order is a no-op while the task exists.
func TaskID(taskType, provider, outOrderID string) string {
	return taskType + ":" + provider + ":" + outOrderID
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
	return asynq.NewTask(TypePreview, b,
		asynq.TaskID(TaskID(TypePreview, order.Provider, order.OutOrderID)),
		asynq.Queue(Queue(order.Provider, KindPreview)),
		asynq.MaxRetry(PreviewMaxRetry),
		asynq.Timeout(Timeout)), nil
}
