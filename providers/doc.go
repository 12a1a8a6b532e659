// Package providers is the one interface the pipeline uses to place and follow
// orders at a purchasing agent, and the canonical model behind it: the order
// request of docs/interface.md, quotes and amounts in integer fen, provider
// orders, order states mapped from 1688's status words, parcels, and the error
// classes every caller steers by (see errors.go).
//
// The provider packages (providers/xportcn, providers/depal) hide signing,
// envelopes and money units; providers/sim is a simulator that speaks both
// wire APIs so the clients are tested over real HTTP.
//
// # Lookup's three answers
//
// Provider.Lookup(outOrderID) answers one of:
//
//   - found: a Placement naming only orders whose outOrderId is exactly
//     outOrderID. An entry without an outOrderId, or with another one, is
//     never adopted: a list that ignored its filter would otherwise make
//     other customers' orders ours.
//   - ErrNotFound: only when the provider said so explicitly and
//     unambiguously: a valid envelope with an empty list (Xportcn), its
//     envelope code 404, or Depal's code 640.
//   - anything else: don't know. In particular ErrAmbiguous, wrapped in a
//     *TransientError, for an answer that cannot tell: a success envelope
//     without the list or without an order id, or a list whose entries
//     are none of them ours.
//
// Even ErrNotFound can be stale: providers serve searches from an index
// that lags their writes, and an order whose create timed out may be
// committed after the caller gave up.
//
// # Answers that are not the provider's
//
// An answer that is not the provider's valid envelope (HTTP 408, 499 or
// 5xx, any other non-2xx status without a parseable envelope, an HTML or
// non-JSON body, JSON without the envelope's code) is a gateway's, not the
// provider's refusal: for a create it is a *UnknownOutcomeError (the order
// may exist), for every other operation a *TransientError; never a
// *PermanentError. A create answered success without an order id is a
// *UnknownOutcomeError too. A create that made orders for some lines and
// refused others returns the Placement with Rejected filled.
package providers
