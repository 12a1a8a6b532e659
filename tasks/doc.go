// Package tasks is orderflow's task contract and pipeline: the asynq task
// types, their payloads, queues and retry classes, and the handlers.
//
// A type string is never renamed once deployed: tasks of the old name would
// wait in Redis for a handler that no longer exists.
//
//	type            queue              retry class
//	order:preview   {provider}:preview  transient errors retried (MaxRetry 20), then failed
//	order:create    {provider}:create   reconciles (lookup by outOrderId) before every re-send;
//	                                    an outcome it cannot learn parks the order in needs_review
//	order:poll      {provider}:poll     never fails: waits between polls are deferrals
//	order:track     {provider}:poll     like order:poll, until the parcel is signed for
//	order:cancel    {provider}:create   deferred until the create outcome is known
//	order:expire    {provider}:poll     runs once at the order deadline
//	order:notify    orderflow:notify   POSTs state changes to the order's callbackUrl, in
//	                                    order; failures retried with backoff (MaxRetry 30)
//
// A deferral (a wait: rate limit, open breaker, provider throttling, the
// next poll) is retried by asynq without counting an attempt, because
// IsFailure says it is not a failure and RetryDelay reads the wait from it.
// Deferrals are bounded by the order deadline: an order still live then is
// expired. A payload that cannot be decoded, or a task type no handler
// knows, is archived at once with the reason (asynq.SkipRetry).
//
// Within one provider the queues are served in strict priority: create,
// then preview, then poll. Each provider has its own queues (and the worker
// runs a server per provider) so one provider cannot take the other's slots.
package tasks
