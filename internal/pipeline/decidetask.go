package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/tasks"
)

// decideRef is the payload of order:decide: a decision on an order, to be
// carried out before NotAfter or not at all (a person waits for the
// answer; a decision carried out hours later would surprise them).
type decideRef struct {
	ref
	Decision Decision  `json:"decision"`
	NotAfter time.Time `json:"notAfter"`
}

// DecideAnswer is the result an order:decide task writes: what Decide
// answered, or why it could not.
type DecideAnswer struct {
	Decided
	// Error is why the decision could not be carried out (a malformed
	// decision, an unknown order, the provider or Redis failing).
	Error string `json:"error,omitempty"`
	// Invalid is set when Error is the person's mistake (ErrDecision).
	Invalid bool `json:"invalid,omitempty"`
}

// decideRetention keeps an answered decision's result for the waiting
// `enqueue` to read.
const decideRetention = 10 * time.Minute

// NewDecideStep returns the task that carries decision d on order k to a
// worker; it is dropped unanswered when no worker takes it within wait.
// Its id is unique per request.
func NewDecideStep(k orders.Key, d Decision, now time.Time, wait time.Duration) Step {
	id := fmt.Sprintf("%s:%d", TaskID(tasks.TypeDecide, k), now.UnixNano())
	b, _ := json.Marshal(decideRef{ref: keyRef(k), Decision: d, NotAfter: now.Add(wait).UTC()})
	q := tasks.Queue(k.Provider, tasks.KindCreate)
	t := asynq.NewTask(tasks.TypeDecide, b, asynq.TaskID(id), asynq.Queue(q), asynq.MaxRetry(0),
		asynq.Timeout(tasks.Timeout), asynq.Retention(decideRetention), asynq.Deadline(now.Add(wait)))
	return Step{Task: t, Queue: q, ID: id}
}

// decideTask carries out a decision enqueued by `enqueue review` and
// writes the answer as the task's result. It is never retried: a person
// is waiting and decides again if it failed.
func (h *Handlers) decideTask(ctx context.Context, t *asynq.Task) error {
	var dr decideRef
	if err := json.Unmarshal(t.Payload(), &dr); err != nil {
		return skip("malformed %s payload: %v", t.Type(), err)
	}
	if time.Now().After(dr.NotAfter) {
		return skip("%s: decision on %s not carried out: nobody waits for it any more (since %s)", t.Type(), dr.key(), dr.NotAfter.Format(time.RFC3339))
	}
	res, err := h.Decide(ctx, dr.key(), dr.Decision)
	ans := DecideAnswer{Decided: res}
	if err != nil {
		ans.Error, ans.Invalid = err.Error(), errors.Is(err, ErrDecision)
	}
	b, _ := json.Marshal(ans)
	if _, werr := t.ResultWriter().Write(b); werr != nil {
		return fmt.Errorf("%s: write the answer: %w", t.Type(), werr)
	}
	return nil
}
