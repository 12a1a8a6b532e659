package sim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is fault injection. Every probability is per request (pushes: per
// message), between 0 and 1; zero injects nothing. Draws come from one
// generator seeded with Seed, so a sequential run is reproducible.
type Faults struct {
	// Seed seeds the generator (the same seed, the same faults in the
	// same request order).
	Seed int64
	// HTTP5xx: an HTTP 500, 502 or 503 answer WITHOUT doing the operation.
	HTTP5xx float64
	// Slow: the operation is done and answered after SlowDelay.
	Slow float64
	// SlowDelay is the wall-time delay of a slow answer; zero means 15s.
	SlowDelay time.Duration
	// Throttle: a throttled answer (Xportcn HTTP 429 + Retry-After: 1;
	// Depal code "600") without doing the operation.
	Throttle float64
	// CommitThenDrop, on create/submit only: the order is created, then the
	// connection is closed without an answer.
	CommitThenDrop float64
	// DuplicatePush: a push message is sent twice.
	DuplicatePush float64
	// ReorderPush: a push message is held back by PushRetry (sim time), so
	// a later message can arrive first.
	ReorderPush float64

	// LateCommit, on create/submit only: a provider that times out while
	// still processing. The answer waits until LateCommitDelay after the
	// request arrived or until the client gives up, whichever comes first,
	// and is never written (at the delay the connection is dropped); the
	// order is committed LateCommitDelay after arrival, so after the client
	// has given up. Until then lookups find nothing. A request the create
	// would refuse (bad cart, planned error, a used previewId) is answered
	// at once, without the fault.
	LateCommit float64
	// LateCommitDelay is the wall time from a late create's arrival to its
	// commit; zero means 2s.
	LateCommitDelay time.Duration
	// SearchLag (a duration, not a probability): lookups by outOrderId
	// (Xportcn list, Depal details by outOrderId) do not see an order until
	// SearchLag of wall time after it was committed, as a search index
	// lagging the writes; details by the provider order id see it at once.
	// Zero: no lag.
	SearchLag time.Duration
	// GatewayAfterCommit, on create/submit only: the order is committed,
	// then a gateway answers instead of the provider: HTTP 502, 504, 408 or
	// 499 (drawn) with an HTML body and no envelope.
	GatewayAfterCommit float64
	// EmptySuccess: on create/submit, the order is committed, then answered
	// with the success envelope and empty data (Depal data {}; Xportcn data
	// {} or null, drawn); on a lookup by outOrderId, the same empty success
	// instead of the answer.
	EmptySuccess float64
	// UnfilteredList: a lookup by outOrderId ignores its filter. Xportcn's
	// list returns every order of the provider, oldest first and paged (ours,
	// when it exists, among them and likely not first); Depal's details by
	// outOrderId answer the provider's oldest order, whoever's it is.
	UnfilteredList float64
	// PartialCreate, on create/submit of a cart of 2 lines or more: the
	// last line is refused (1688's 500_004, out of stock) and the order is
	// made for the others, answered with the order and a failedOfferList
	// naming the refused line (Xportcn's documented create shape; Depal's
	// submit answer carries the same 1688 failedOfferList, agreed with the
	// client since Depal documents none). It is one create, not a
	// duplicate.
	PartialCreate float64
	// HostileID, on create/submit only: the order is committed, then
	// answered with the success envelope naming HostileOrderID instead of
	// its id (a provider whose text cannot be trusted).
	HostileID float64
}

// HostileOrderID is the order id a HostileID answer names: a path
// traversal, a NUL, an escape sequence and 5,000 characters.
var HostileOrderID = "../\x00\x1b[31m" + strings.Repeat("9", 5000)

// DefaultLateCommitDelay is the LateCommitDelay used when it is zero.
const DefaultLateCommitDelay = 2 * time.Second

// The names injected faults are counted under in Counters.Faults.
const (
	// Fault5xx counts HTTP5xx answers.
	Fault5xx = "5xx"
	// FaultSlow counts Slow answers.
	FaultSlow = "slow"
	// FaultThrottle counts Throttle answers.
	FaultThrottle = "throttle"
	// FaultCommitThenDrop counts CommitThenDrop creates.
	FaultCommitThenDrop = "commit_then_drop"
	// FaultPushDuplicate counts DuplicatePush messages.
	FaultPushDuplicate = "push_duplicate"
	// FaultPushReorder counts ReorderPush messages.
	FaultPushReorder = "push_reorder"
	// FaultLateCommit counts LateCommit creates.
	FaultLateCommit = "late_commit"
	// FaultSearchLag counts lookups that hid an order for SearchLag.
	FaultSearchLag = "search_lag"
	// FaultGatewayAfterCommit counts GatewayAfterCommit answers.
	FaultGatewayAfterCommit = "gateway_after_commit"
	// FaultEmptySuccess counts EmptySuccess answers (creates and lookups).
	FaultEmptySuccess = "empty_success"
	// FaultUnfilteredList counts UnfilteredList lookups.
	FaultUnfilteredList = "unfiltered_list"
	// FaultPartialCreate counts PartialCreate creates that refused a line.
	FaultPartialCreate = "partial_create"
	// FaultHostileID counts HostileID answers.
	FaultHostileID = "hostile_id"
)

func (f Faults) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"HTTP5xx", f.HTTP5xx}, {"Slow", f.Slow}, {"Throttle", f.Throttle},
		{"CommitThenDrop", f.CommitThenDrop}, {"DuplicatePush", f.DuplicatePush}, {"ReorderPush", f.ReorderPush},
		{"LateCommit", f.LateCommit}, {"GatewayAfterCommit", f.GatewayAfterCommit}, {"EmptySuccess", f.EmptySuccess},
		{"UnfilteredList", f.UnfilteredList}, {"PartialCreate", f.PartialCreate}, {"HostileID", f.HostileID},
	} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("sim: Config.Faults.%s: a probability between 0 and 1, got %v", p.name, p.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SlowDelay", f.SlowDelay}, {"LateCommitDelay", f.LateCommitDelay}, {"SearchLag", f.SearchLag}} {
		if d.v < 0 {
			return fmt.Errorf("sim: Config.Faults.%s: must be >= 0, got %s", d.name, d.v)
		}
	}
	return nil
}

// opKind is what a request is, for the faults that apply to it.
type opKind int

const (
	kindOther  opKind = iota
	kindCreate        // Xportcn create, Depal submit
	kindLookup        // Xportcn list, Depal details (a lookup when by outOrderId)
)

// faultPlan is what happens to one request.
type faultPlan struct {
	status5xx int           // non-zero: answer this HTTP status, do nothing
	throttle  bool          // answer throttled, do nothing
	slow      time.Duration // non-zero: do the operation, answer this much later
	drop      bool          // create only: do it, then drop the connection

	late       time.Duration // create only: commit this long after arrival, answer nothing
	gateway    int           // create only: do it, then answer this HTTP status with HTML
	empty      bool          // create or lookup: answer success with empty data
	emptyNull  bool          // with empty, at Xportcn: data null rather than {}
	unfiltered bool          // lookup only: ignore the outOrderId filter
	partial    bool          // create only: refuse the last line of 2+, make the rest
	hostile    bool          // create only: do it, then answer HostileOrderID as its id
}

// injector draws faults.
type injector struct {
	cfg atomic.Pointer[Faults]
	mu  sync.Mutex
	rng *rand.Rand
}

func newInjector(f Faults) *injector {
	in := &injector{}
	in.set(f)
	return in
}

// set replaces the faults and reseeds the generator.
func (in *injector) set(f Faults) {
	clamp := func(p *float64) {
		if !(*p >= 0) {
			*p = 0
		}
		if *p > 1 {
			*p = 1
		}
	}
	for _, p := range []*float64{&f.HTTP5xx, &f.Slow, &f.Throttle, &f.CommitThenDrop, &f.DuplicatePush, &f.ReorderPush,
		&f.LateCommit, &f.GatewayAfterCommit, &f.EmptySuccess, &f.UnfilteredList, &f.PartialCreate, &f.HostileID} {
		clamp(p)
	}
	if f.SlowDelay <= 0 {
		f.SlowDelay = 15 * time.Second
	}
	if f.LateCommitDelay <= 0 {
		f.LateCommitDelay = DefaultLateCommitDelay
	}
	if f.SearchLag < 0 {
		f.SearchLag = 0
	}
	in.mu.Lock()
	in.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x6f72646572666c6f))
	in.mu.Unlock()
	in.cfg.Store(&f)
}

func (in *injector) get() Faults { return *in.cfg.Load() }

// plan draws the faults of one request of kind k. With no fault
// configured that applies to k it costs one atomic load. The faults of
// earlier versions are drawn first and in the same order, so a seed draws
// the same of them whatever the newer faults are set to.
func (in *injector) plan(k opKind) faultPlan {
	f := in.cfg.Load()
	create, lookup := k == kindCreate, k == kindLookup
	if f.HTTP5xx == 0 && f.Throttle == 0 && f.Slow == 0 &&
		(!create || f.CommitThenDrop == 0 && f.LateCommit == 0 && f.GatewayAfterCommit == 0 && f.EmptySuccess == 0 && f.PartialCreate == 0 && f.HostileID == 0) &&
		(!lookup || f.EmptySuccess == 0 && f.UnfilteredList == 0) {
		return faultPlan{}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var p faultPlan
	if f.HTTP5xx > 0 && in.rng.Float64() < f.HTTP5xx {
		p.status5xx = [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[in.rng.IntN(3)]
		return p
	}
	if f.Throttle > 0 && in.rng.Float64() < f.Throttle {
		p.throttle = true
		return p
	}
	if f.Slow > 0 && in.rng.Float64() < f.Slow {
		p.slow = f.SlowDelay
	}
	if create && f.CommitThenDrop > 0 && in.rng.Float64() < f.CommitThenDrop {
		p.drop = true
	}
	// The answer faults of a create exclude each other: drop, then late
	// commit, then gateway, then empty success.
	if create && !p.drop && f.LateCommit > 0 && in.rng.Float64() < f.LateCommit {
		p.late = f.LateCommitDelay
	}
	if create && !p.drop && p.late == 0 && f.GatewayAfterCommit > 0 && in.rng.Float64() < f.GatewayAfterCommit {
		p.gateway = [...]int{http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusRequestTimeout, statusClientClosed}[in.rng.IntN(4)]
	}
	if (create && !p.drop && p.late == 0 && p.gateway == 0 || lookup) && f.EmptySuccess > 0 && in.rng.Float64() < f.EmptySuccess {
		p.empty, p.emptyNull = true, in.rng.IntN(2) == 1
	}
	if create && f.PartialCreate > 0 && in.rng.Float64() < f.PartialCreate {
		p.partial = true
	}
	if create && !p.drop && p.late == 0 && p.gateway == 0 && !p.empty && f.HostileID > 0 && in.rng.Float64() < f.HostileID {
		p.hostile = true
	}
	if lookup && !p.empty && f.UnfilteredList > 0 && in.rng.Float64() < f.UnfilteredList {
		p.unfiltered = true
	}
	return p
}

// statusClientClosed is nginx's 499 "client closed request".
const statusClientClosed = 499

// roll draws one push fault of probability p.
func (in *injector) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.Float64() < p
}
