// Package contract holds only tests: each real provider client
// (providers/xportcn, providers/depal) is run against the simulator
// (providers/sim) over real HTTP on loopback, for every operation and every
// error class, so a client and the simulator cannot drift apart from the
// shapes of docs/providers.md.
package contract
