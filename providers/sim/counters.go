package sim

import (
	"encoding/json"
	"net/http"
	"sync"
)

// Counters is a snapshot of what the simulator saw and did. It is also
// served as JSON at GET /sim/counters.
type Counters struct {
	// Requests counts calls by provider and operation, answered or not.
	Requests map[string]map[string]int64 `json:"requests"`
	// QuotaViolations counts, by provider, requests over its quota.
	QuotaViolations map[string]int64 `json:"quotaViolations"`
	// Duplicates counts outOrderIds (per provider) with more than one
	// create call that made an order. The parts of one split create are one
	// create, and so is a partial create; a late commit counts when it is
	// made.
	Duplicates int64 `json:"duplicates"`
	// SignatureFailures counts, by provider, refused signatures, keys,
	// secrets, headers and timestamps.
	SignatureFailures map[string]int64 `json:"signatureFailures"`
	// TokenExpired counts Depal calls answered 510.
	TokenExpired int64 `json:"tokenExpired"`
	// Faults counts injected faults by name (the Fault* constants): "5xx",
	// "slow", "throttle", "commit_then_drop", "push_duplicate",
	// "push_reorder", "late_commit", "gateway_after_commit",
	// "empty_success", "unfiltered_list", "partial_create", and
	// "search_lag" (lookups that hid at least one order still lagging).
	// A fault is counted when it took effect, not when it was drawn (a
	// partial create of a one-line cart is no fault).
	Faults map[string]int64 `json:"faults"`
	// OrdersCreated counts, by provider, provider orders created (each
	// part of a split create counts).
	OrdersCreated map[string]int64 `json:"ordersCreated"`
	// Pushes counts push deliveries attempted (each retry counts).
	Pushes int64 `json:"pushes"`
}

// RequestsTo is how many calls reached provider, over every operation.
func (c Counters) RequestsTo(provider string) int64 {
	var n int64
	for _, v := range c.Requests[provider] {
		n += v
	}
	return n
}

// counters is the live, mutex-guarded Counters.
type counters struct {
	mu sync.Mutex
	c  Counters
}

func newCounters() *counters {
	return &counters{c: Counters{
		Requests:          map[string]map[string]int64{},
		QuotaViolations:   map[string]int64{},
		SignatureFailures: map[string]int64{},
		Faults:            map[string]int64{},
		OrdersCreated:     map[string]int64{},
	}}
}

func (c *counters) request(provider, op string) {
	c.mu.Lock()
	m := c.c.Requests[provider]
	if m == nil {
		m = map[string]int64{}
		c.c.Requests[provider] = m
	}
	m[op]++
	c.mu.Unlock()
}

func (c *counters) add(m map[string]int64, key string, n int64) {
	c.mu.Lock()
	m[key] += n
	c.mu.Unlock()
}

func (c *counters) quotaViolation(provider string) { c.add(c.c.QuotaViolations, provider, 1) }
func (c *counters) signatureFailure(provider string) {
	c.add(c.c.SignatureFailures, provider, 1)
}
func (c *counters) fault(kind string)              { c.add(c.c.Faults, kind, 1) }
func (c *counters) created(provider string, n int) { c.add(c.c.OrdersCreated, provider, int64(n)) }
func (c *counters) duplicate()                     { c.mu.Lock(); c.c.Duplicates++; c.mu.Unlock() }
func (c *counters) tokenExpired()                  { c.mu.Lock(); c.c.TokenExpired++; c.mu.Unlock() }
func (c *counters) push()                          { c.mu.Lock(); c.c.Pushes++; c.mu.Unlock() }

// snapshot deep-copies the counters.
func (c *counters) snapshot() Counters {
	cp := func(m map[string]int64) map[string]int64 {
		o := make(map[string]int64, len(m))
		for k, v := range m {
			o[k] = v
		}
		return o
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Counters{
		Requests:          make(map[string]map[string]int64, len(c.c.Requests)),
		QuotaViolations:   cp(c.c.QuotaViolations),
		Duplicates:        c.c.Duplicates,
		SignatureFailures: cp(c.c.SignatureFailures),
		TokenExpired:      c.c.TokenExpired,
		Faults:            cp(c.c.Faults),
		OrdersCreated:     cp(c.c.OrdersCreated),
		Pushes:            c.c.Pushes,
	}
	for p, m := range c.c.Requests {
		s.Requests[p] = cp(m)
	}
	return s
}

func (c *counters) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.snapshot())
}
