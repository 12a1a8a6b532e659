// Package pipeline runs orderflow's order tasks (their contract is package
// tasks): preview, create with reconcile, poll, track, cancel, the
// deadline, and callback delivery, over the order store.
//
// Waits are schedule, not failures: a step that waits for the next poll
// enqueues its successor as a scheduled task under a per-step task id
// before it completes, so a crash at any point leaves either the step to
// re-run or its successor queued. A deferral (a rate limit, an open
// breaker, provider throttling) is retried by asynq without counting an
// attempt, because IsFailure says it is not a failure and RetryDelay reads
// the wait from it. A payload that cannot be decoded, or a task type no
// handler knows, is archived at once with the reason (asynq.SkipRetry).
//
// The preview task goes on to create the order (createInline); a create
// it cannot finish goes on in a create task. Each provider has its own
// queues, and the worker runs two servers per provider, so one provider
// cannot take the other's slots, nor new orders (IntakeQueue) those of
// orders under way (FollowQueues, weighted: create retries, cancels and
// decisions, then polls, but not strictly, so polling keeps moving).
package pipeline
