// Package providers is the one interface the pipeline uses to place and follow
// orders at a purchasing agent, and the canonical model behind it: the order
// request of INTERFACE.md, quotes and amounts in integer fen, provider orders,
// order states mapped from 1688's status words, parcels, and the error classes
// every caller steers by (see errors.go).
//
// The provider packages (providers/xportcn, providers/depal) hide signing,
// envelopes and money units; providers/sim is a simulator that speaks both
// wire APIs so the clients are tested over real HTTP.
package providers
