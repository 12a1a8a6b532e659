// Package orders keeps orderflow's order records and its event stream in
// Redis. A record is one JSON document per order (provider + outOrderId),
// stored compressed (stored.go); every change of state is written together with its event on the
// orderflow:events stream in one atomic script, guarded by the record's
// version so concurrent writers never lose an update.
package orders

import (
	"slices"
	"time"

	"orderflow/internal/redact"
	"orderflow/providers"
)

// Record is everything orderflow knows of one order. Its JSON is what
// `enqueue status --json` and GET /v1/orders/{provider}/{outOrderId` show.
type Record struct {
	// Version increments with every write; writers compare and swap on it.
	Version int64 `json:"version"`

	Provider   string                 `json:"provider"`
	OutOrderID string                 `json:"outOrderId"`
	Request    providers.OrderRequest `json:"request"`

	State providers.State `json:"state"`
	// ProviderOrderIDs are the provider's order ids (several when the
	// create was split).
	ProviderOrderIDs []string         `json:"providerOrderIds,omitempty"`
	Quote            *providers.Quote `json:"quote,omitempty"`
	Error            *ErrorInfo       `json:"error,omitempty"`
	// RawStatus is the last provider status word seen (per provider order
	// when split, "id=word" joined by commas).
	RawStatus string `json:"rawStatus,omitempty"`
	// ProviderState is the state the provider last reported for the
	// order (the least advanced part of a split one), whatever the
	// record's own state: a parked order keeps being followed.
	ProviderState providers.State `json:"providerState,omitempty"`
	// Parcels are the parcels of the order's provider orders, one per
	// provider order that has shipped, each tracked until signed for.
	Parcels []Parcel `json:"parcels,omitempty"`
	// Delivered is set once every provider order's parcel is signed for.
	Delivered bool `json:"delivered,omitempty"`

	// Parcel and ParcelStatus are the single parcel of records written
	// before Parcels existed; Store.Get moves them into Parcels.
	Parcel       *providers.ParcelRef `json:"parcel,omitempty"`
	ParcelStatus string               `json:"parcelStatus,omitempty"`

	// CreateAttempts counts creates recorded before sending: non-zero with
	// no ProviderOrderIDs means a create may have reached the provider, so
	// the next attempt looks the order up first.
	CreateAttempts int       `json:"createAttempts,omitempty"`
	CreateSentAt   time.Time `json:"createSentAt,omitzero"`
	// ClearedAt is when the provider last said, trusted, that it has no
	// order for this outOrderId, with CreateAttempts as it was then
	// (ClearedAttempts): a create deferred after that (the quota, the
	// breaker) goes again without asking again.
	ClearedAt       time.Time `json:"clearedAt,omitzero"`
	ClearedAttempts int       `json:"clearedAttempts,omitempty"`
	// CreateFailures counts create runs that ended in a failure (a lookup
	// or a create that did not answer): the pipeline's own budget, which
	// parks the order once spent.
	CreateFailures int `json:"createFailures,omitempty"`
	// Rejected lists the lines the provider refused in a partial create
	// (it made an order for the rest).
	Rejected []providers.RejectedItem `json:"rejected,omitempty"`
	// Adopted is set when the provider orders were found by a lookup, not
	// answered by a create: their lines are checked against the request
	// at the first poll that reports them (LinesChecked), since a lost
	// answer may have been a partial create's.
	Adopted      bool `json:"adopted,omitempty"`
	LinesChecked bool `json:"linesChecked,omitempty"`

	// PollStep is the place in the poll schedule of the next order poll
	// (back to 0 when the status changes); TrackStep the same for parcel
	// tracking. TrackDone is set once every provider order's parcel has
	// ended (signed for, or a failure branch).
	PollStep  int  `json:"pollStep,omitempty"`
	TrackStep int  `json:"trackStep,omitempty"`
	TrackDone bool `json:"trackDone,omitempty"`
	// PollSeq and TrackSeq number the order's polls and traces: the task
	// of the next one has the id order:poll:{provider}:{outOrderId}:{PollSeq}
	// (order:track:…:{TrackSeq}), scheduled by the run before it.
	PollSeq  int `json:"pollSeq,omitempty"`
	TrackSeq int `json:"trackSeq,omitempty"`

	// DeadlineLive is set when the deadline passed while the order lived
	// at the provider (paid or shipped, or a cancel refused): the order is
	// parked (DEADLINE_LIVE) and followed at the slowest poll step until
	// the provider ends it or a person decides.
	DeadlineLive bool `json:"deadlineLive,omitempty"`

	// CancelRequested is set when an upstream asked to cancel, or when
	// orderflow cancels the order itself (CancelFor says why: PRICE_GUARD,
	// DEADLINE); CancelRefused holds the provider's refusal, if any.
	// CancelDone is set once the provider accepted the cancel of every
	// provider order.
	CancelRequested bool   `json:"cancelRequested,omitempty"`
	CancelFor       string `json:"cancelFor,omitempty"`
	CancelRefused   string `json:"cancelRefused,omitempty"`
	CancelDone      bool   `json:"cancelDone,omitempty"`

	// QuotedAt is when the quote was made: a create with an older quote
	// than the worker's QUOTE_MAX_AGE previews again first.
	QuotedAt time.Time `json:"quotedAt,omitzero"`

	// Notified counts the History entries delivered to the order's
	// callbackUrl, in order.
	Notified int `json:"notified,omitempty"`
	// Deliveries are the last callback attempts (at most MaxDeliveries),
	// the newest last.
	Deliveries []Delivery `json:"deliveries,omitempty"`
	// Totals are the totals the provider stated after the preview's (the
	// create's answer, polls, pushes), each when it changed; at most
	// MaxTotals, the newest last.
	Totals []TotalSeen `json:"totals,omitempty"`

	ReceivedAt time.Time `json:"receivedAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	// Deadline is when the order expires: ReceivedAt plus the worker's
	// ORDER_DEADLINE, set by the worker when it first handles the order.
	Deadline time.Time    `json:"deadline,omitzero"`
	History  []Transition `json:"history"`
}

// ErrorInfo is why an order failed: the provider's code and message, or
// orderflow's own (e.g. VALIDATION, PRICE_GUARD, RETRIES_EXHAUSTED).
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Total and MaxTotal (yuan) are the amounts a price refusal
	// (PRICE_GUARD, PRICE_CHANGED) compared.
	Total    string `json:"total,omitempty"`
	MaxTotal string `json:"maxTotal,omitempty"`
}

// Transition is one entry of an order's history.
type Transition struct {
	State providers.State `json:"state"`
	At    time.Time       `json:"at"`
	// Note says why, where there is something to say (a raw status word,
	// a parcel word, an error code).
	Note string `json:"note,omitempty"`
	// Event is set on an entry that records something other than a move
	// (State is then the state the order stays in): EntryDecision,
	// EntryPriceChanged.
	Event string `json:"event,omitempty"`
	// Actor, Action and Reason record a person's decision (review,
	// retry, cancel): who, what, and why in their words.
	Actor  string `json:"actor,omitempty"`
	Action string `json:"action,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// History entries that are not moves (Transition.Event).
const (
	// EntryDecision: a person decided something (Actor, Action, Reason).
	EntryDecision = "decision"
	// EntryPriceChanged: the provider's total changed (Note says from
	// and to).
	EntryPriceChanged = "price_changed"
	// EntryReason: a parked order waits for another reason now (Note).
	EntryReason = "reason"
	// EntryCancelled: the provider accepted orderflow's cancel of an order
	// that had already ended (a create that landed after the deadline).
	EntryCancelled = "provider_cancelled"
)

// TotalSeen is one total the provider stated for the order, in fen.
type TotalSeen struct {
	At time.Time `json:"at"`
	// Source is where it was seen: "preview", "create", "poll", "push".
	Source string `json:"source"`
	Total  int64  `json:"total"`
}

// Delivery is one attempt to POST a history entry to the callbackUrl.
type Delivery struct {
	At  time.Time `json:"at"`
	Seq int       `json:"seq"`
	// Status is the HTTP status answered (0: no answer).
	Status int `json:"status,omitempty"`
	// Error says why it failed ("": delivered).
	Error string `json:"error,omitempty"`
}

// Parcel is the parcel of one provider order and where its tracking is.
type Parcel struct {
	// OrderID is the provider order the parcel belongs to.
	OrderID string `json:"orderId"`
	providers.ParcelRef
	// Status is the last parcel word (WAITACCEPT … SIGN).
	Status string `json:"status,omitempty"`
	// Done: tracking has ended (signed for, or a failure branch).
	Done      bool `json:"done,omitempty"`
	Delivered bool `json:"delivered,omitempty"`
}

// Bounds of the record's lists.
const (
	MaxDeliveries = 20
	MaxTotals     = 20
)

// Key names an order: provider and outOrderId.
type Key struct {
	Provider   string
	OutOrderID string
}

func (k Key) String() string { return k.Provider + "/" + k.OutOrderID }

// Key returns the record's key.
func (r *Record) Key() Key { return Key{r.Provider, r.OutOrderID} }

// Clone returns a copy of r that shares nothing a write could change:
// an update may change the copy and drop it.
func (r *Record) Clone() *Record {
	c := *r
	c.Request.Items = slices.Clone(r.Request.Items)
	c.ProviderOrderIDs = slices.Clone(r.ProviderOrderIDs)
	if r.Quote != nil {
		q := *r.Quote
		q.Lines = slices.Clone(r.Quote.Lines)
		c.Quote = &q
	}
	if r.Error != nil {
		e := *r.Error
		c.Error = &e
	}
	if r.Parcel != nil {
		p := *r.Parcel
		c.Parcel = &p
	}
	c.Parcels = slices.Clone(r.Parcels)
	c.Rejected = slices.Clone(r.Rejected)
	c.Deliveries = slices.Clone(r.Deliveries)
	c.Totals = slices.Clone(r.Totals)
	c.History = slices.Clone(r.History)
	return &c
}

// migrate moves fields of records written by earlier versions into their
// present place.
func (r *Record) migrate() {
	if r.Parcel != nil && len(r.Parcels) == 0 {
		id := ""
		if len(r.ProviderOrderIDs) > 0 {
			id = r.ProviderOrderIDs[0]
		}
		r.Parcels = []Parcel{{OrderID: id, ParcelRef: *r.Parcel, Status: r.ParcelStatus,
			Done: r.TrackDone, Delivered: r.Delivered}}
	}
	r.Parcel, r.ParcelStatus = nil, ""
}

// Terminal reports whether the order has ended.
func (r *Record) Terminal() bool { return r.State.Terminal() }

// Apply moves the record by event ev at time at, appending to the history
// (note says why: a raw status word, a parcel word, an error code). It
// reports whether the state changed: false when the transition table
// (providers.Transitions) does not allow ev in the record's state, which
// then stays as it is.
func (r *Record) Apply(ev providers.Event, at time.Time, note string) bool {
	to, ok := providers.Next(r.State, ev)
	if !ok {
		return false
	}
	r.State = to
	r.History = append(r.History, Transition{State: to, At: at.UTC(), Note: note})
	return true
}

// Park parks the record for a person with reason (the event parked), or,
// when it is parked already, records that reason as the one it now waits
// for (an EntryReason entry). It reports whether the record is parked.
func (r *Record) Park(reason string, at time.Time) bool {
	if r.Apply(providers.EventParked, at, reason) {
		return true
	}
	if r.State != providers.StateNeedsReview {
		return false
	}
	r.History = append(r.History, Transition{State: r.State, At: at.UTC(), Event: EntryReason, Note: reason})
	return true
}

// Fail moves the record to failed with an error code and message, where
// the table allows it. The message is cut to a bound, without control
// characters or anything that looks like a credential (it may quote a
// provider's answer).
func (r *Record) Fail(code, message string, at time.Time) bool {
	if _, ok := providers.Next(r.State, providers.EventFailed); !ok {
		return false
	}
	r.Error = &ErrorInfo{Code: code, Message: redact.ProviderText(message)}
	return r.Apply(providers.EventFailed, at, code)
}
