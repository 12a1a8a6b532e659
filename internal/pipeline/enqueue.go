package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/tasks"
)

// Enqueuer is what the pipeline needs of an asynq client.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// TaskInspector is what the pipeline needs of an *asynq.Inspector.
type TaskInspector interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
	RunTask(queue, id string) error
}

// Step is a task with the queue and id it was built with (asynq keeps
// them private to the task).
type Step struct {
	Task      *asynq.Task
	Queue, ID string
}

// Enqueue enqueues a step unless a live task holds its id (then it is
// already on its way). An archived task holding the id is a step that gave
// up earlier: it is removed and the step enqueued in its place, so an old
// failure never silently blocks a new request.
func Enqueue(ctx context.Context, enq Enqueuer, insp TaskInspector, s Step) error {
	for try := 0; ; try++ {
		_, err := enq.EnqueueContext(ctx, s.Task)
		if err == nil {
			return nil
		}
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue %s: %w", s.Task.Type(), err)
		}
		held, ierr := insp.GetTaskInfo(s.Queue, s.ID)
		switch {
		case errors.Is(ierr, asynq.ErrTaskNotFound) && try < 3:
			continue // gone meanwhile: enqueue again
		case ierr != nil:
			return fmt.Errorf("enqueue %s: inspect the task holding id %s: %w", s.Task.Type(), s.ID, ierr)
		case held.State != asynq.TaskStateArchived || try >= 3:
			return nil
		}
		if err := insp.DeleteTask(s.Queue, s.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("enqueue %s: remove the archived task holding id %s: %w", s.Task.Type(), s.ID, err)
		}
	}
}

// PreviewStep is the first step of an order (tasks.NewPreviewTask).
func PreviewStep(req providers.OrderRequest) (Step, error) {
	t, err := tasks.NewPreviewTask(req)
	if err != nil {
		return Step{}, err
	}
	return Step{Task: t, Queue: tasks.Queue(req.Provider, tasks.KindPreview),
		ID: tasks.TaskID(tasks.TypePreview, req.Provider, req.OutOrderID)}, nil
}

// PollNow makes an order's waiting poll run at once (a provider push, a
// cancel). It is best effort: a poll that is running, or an order that is
// not being polled, is left as it is.
func PollNow(ctx context.Context, st *orders.Store, r TaskInspector, k orders.Key) error {
	rec, err := st.Get(ctx, k)
	if err != nil {
		return err
	}
	return r.RunTask(tasks.Queue(k.Provider, tasks.KindPoll), pollID(k, rec.PollSeq))
}
