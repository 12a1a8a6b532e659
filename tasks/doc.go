// Package tasks is orderflow's task contract: the asynq task types, their
// payloads, queue names and retry classes. Upstream Go programs import it
// to enqueue orders with their own asynq client:
//
//	t, err := tasks.NewPreviewTask(order) // validated; a *providers.FieldError names the field
//	_, err = client.Enqueue(t)            // a re-submission of the same order is a no-op
//
// It depends only on asynq and the provider model; the pipeline that runs
// these tasks lives inside the worker (orderflow/internal/pipeline).
//
// A type string is never renamed once deployed: tasks of the old name would
// wait in Redis for a handler that no longer exists.
//
//	type            queue               payload               retry class
//	order:preview   {provider}:preview  providers.OrderRequest transient errors retried, then failed
//	order:create    {provider}:create   Ref                   reconciles (lookup by outOrderId) before
//	                                                          every re-send; an outcome it cannot learn
//	                                                          parks the order in needs_review
//	order:poll      {provider}:poll     Ref                   one run per poll; the next is scheduled
//	order:track     {provider}:poll     Ref                   like order:poll, until the parcel is signed
//	order:cancel    {provider}:create   Ref                   waits for the create outcome
//	order:expire    {provider}:poll     Ref                   the order deadline
//	order:notify    orderflow:notify    Ref + upto            POSTs state changes to the callbackUrl
//
// The full contract (order JSON, states, commands, HTTP, events, metrics,
// settings) is docs/interface.md in the repository.
package tasks
