package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/tasks"
)

// Observer is told of every processed task and every order transition; the
// metrics package implements it.
type Observer interface {
	TaskProcessed(taskType, outcome string, d time.Duration)
	OrderTransition(provider, from, to string)
	// StepRepaired: the repair sweep re-queued a live order's lost step.
	StepRepaired(provider, taskType string)
}

// DefaultPollSchedule is POLL_SCHEDULE's default.
var DefaultPollSchedule = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute,
	5 * time.Minute, 15 * time.Minute, time.Hour}

// Config holds the handlers' dependencies. Zero values take the documented
// defaults; Store, Providers and Enqueuer are required.
type Config struct {
	Store     *orders.Store
	Providers map[string]providers.Provider
	Enqueuer  Enqueuer
	// PollSchedule is the waits between polls, the last repeating; nil:
	// DefaultPollSchedule.
	PollSchedule []time.Duration
	// Deadline is ORDER_DEADLINE: how long an order may stay live; zero: 720h.
	Deadline time.Duration
	// QuoteMaxAge is QUOTE_MAX_AGE: a create whose quote is older previews
	// the order again first; zero: DefaultQuoteMaxAge.
	QuoteMaxAge time.Duration
	// SettleWindow is CREATE_SETTLE_WINDOW: after a create was sent (or
	// after the Redis server changed, which may have lost the record of a
	// send), the provider's "not found" is trusted only once this long has
	// passed; zero: DefaultSettleWindow.
	SettleWindow time.Duration
	// CallbackSecret is CALLBACK_SECRET, the HMAC key of the signature on
	// callbacks; empty: callbacks are sent unsigned.
	CallbackSecret string
	// HTTPClient sends callbacks; nil: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Inspector finds, re-runs and removes an order's tasks (a prompt poll
	// after a cancel, a task id held by an archived task, the scheduled
	// poll of an order that ended); *asynq.Inspector is one. Required.
	Inspector TaskInspector
	// Observer, when set, is told of tasks and transitions.
	Observer Observer
	// Logger; nil: discard.
	Logger *slog.Logger
}

// Handlers runs the pipeline's tasks.
type Handlers struct {
	cfg Config
	log *slog.Logger

	// stageCreate hands every create over to a create task, as before
	// createInline: tests that stage what happens between an order's
	// preview and its create set it.
	stageCreate bool

	repairMu     sync.Mutex
	repairCursor uint64 // where the repair sweep goes on in the live index
}

// New checks cfg and returns the handlers.
func New(cfg Config) (*Handlers, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("pipeline: Config.Store is required")
	case len(cfg.Providers) == 0:
		return nil, errors.New("pipeline: Config.Providers needs at least one provider")
	case cfg.Enqueuer == nil:
		return nil, errors.New("pipeline: Config.Enqueuer is required")
	case cfg.Inspector == nil:
		return nil, errors.New("pipeline: Config.Inspector is required")
	}
	if len(cfg.PollSchedule) == 0 {
		cfg.PollSchedule = DefaultPollSchedule
	}
	for i, d := range cfg.PollSchedule {
		if d <= 0 {
			return nil, fmt.Errorf("pipeline: Config.PollSchedule[%d] must be positive, got %s", i, d)
		}
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 720 * time.Hour
	}
	if cfg.QuoteMaxAge <= 0 {
		cfg.QuoteMaxAge = DefaultQuoteMaxAge
	}
	if cfg.SettleWindow <= 0 {
		cfg.SettleWindow = DefaultSettleWindow
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handlers{cfg: cfg, log: log}, nil
}

// ProcessTask dispatches a task to its handler. It is an asynq.Handler: a
// type no handler knows is archived at once with the reason, never retried
// and never silently acknowledged.
func (h *Handlers) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	var err error
	switch t.Type() {
	case tasks.TypePreview:
		err = h.preview(ctx, t)
	case tasks.TypeCreate:
		err = h.withRef(ctx, t, h.create)
	case tasks.TypePoll:
		err = h.withRef(ctx, t, h.poll)
	case tasks.TypeTrack:
		err = h.withRef(ctx, t, h.track)
	case tasks.TypeCancel:
		err = h.withRef(ctx, t, h.cancel)
	case tasks.TypeExpire:
		err = h.withRef(ctx, t, h.expire)
	case tasks.TypeNotify:
		err = h.notify(ctx, t)
	case tasks.TypeDecide:
		err = h.decideTask(ctx, t)
	default:
		err = skip("unknown task type %q: no handler; archived", t.Type())
	}
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, asynq.SkipRetry):
		outcome = "archived"
	case !IsFailure(err):
		outcome = "deferred"
	default:
		outcome = "retry"
	}
	if h.cfg.Observer != nil {
		h.cfg.Observer.TaskProcessed(t.Type(), outcome, time.Since(start))
	}
	if outcome == "archived" || outcome == "retry" {
		var k *orders.Key
		var r ref // every payload, the preview's order too, names provider and outOrderId
		if json.Unmarshal(t.Payload(), &r) == nil && r.Provider != "" {
			k = &orders.Key{Provider: r.Provider, OutOrderID: r.OutOrderID}
		}
		h.logger(ctx, t, k).Warn("task failed", "outcome", outcome, "err", err)
	}
	return err
}

// job is one task run on one order.
type job struct {
	key  orders.Key
	seq  int // poll and track: the run's place in the order's chain
	task *asynq.Task
	log  *slog.Logger
	p    providers.Provider
	// cur is the order's record as this run last read or wrote it.
	cur *orders.Record
	// epoch is the Redis epoch read with the record at epochRead (wall
	// clock), when it was (see Handlers.epoch).
	epoch, epochRead time.Time
	// pending is a change this run made but has not written yet (the
	// preview's result, written with the create's attempt): the job's
	// next write applies it first (it reports whether it applied; it
	// does not once the order has moved on). See Handlers.flush.
	pending func(r *orders.Record) bool
}

func (h *Handlers) logger(ctx context.Context, t *asynq.Task, k *orders.Key) *slog.Logger {
	l := h.log.With("task", t.Type())
	if k != nil {
		l = l.With("provider", k.Provider, "outOrderId", k.OutOrderID)
	}
	if n, ok := asynq.GetRetryCount(ctx); ok {
		l = l.With("attempt", n+1)
	}
	return l
}

func (h *Handlers) withRef(ctx context.Context, t *asynq.Task, fn func(context.Context, *job) error) error {
	var r ref
	if err := json.Unmarshal(t.Payload(), &r); err != nil {
		return skip("malformed %s payload: %v", t.Type(), err)
	}
	if !providers.Known(r.Provider) || !providers.ValidOutOrderID(r.OutOrderID) {
		return skip("malformed %s payload: provider %q / outOrderId %q invalid", t.Type(), r.Provider, r.OutOrderID)
	}
	j, err := h.newJob(ctx, t, r.key())
	if err != nil {
		return err
	}
	j.seq = r.Seq
	return fn(ctx, j)
}

func (h *Handlers) newJob(ctx context.Context, t *asynq.Task, k orders.Key) (*job, error) {
	p := h.cfg.Providers[k.Provider]
	if p == nil {
		return nil, skip("%s: provider %q is not served by this worker", t.Type(), k.Provider)
	}
	return &job{key: k, task: t, log: h.logger(ctx, t, &k), p: p}, nil
}

// update applies fn to the order's record, reports the transition, and
// has the new history entries delivered to the callbackUrl.
//
// It starts from the record as the job last read or wrote it (the write is
// still guarded by the record's version), so a step does not read the
// record twice.
func (h *Handlers) update(ctx context.Context, j *job, fn func(r *orders.Record) error) (*orders.Record, error) {
	return h.updateThen(ctx, j, fn, nil, nil)
}

// updateThen is update, then enqueues the step next names for the record
// written (ok false: none), in the same round trip as the write when it
// can (orders.Task), else the usual way (Enqueue).
//
// last, when set, tells whether the write ends the run, the record as fn
// left it: nothing else is to be done once it is made, and the handler
// returns nil. The write then also completes the run's task
// (orders.Finisher) when it moved no state, added no history (nothing to
// notify) and carries next's step.
func (h *Handlers) updateThen(ctx context.Context, j *job, fn func(r *orders.Record) error, next func(r *orders.Record) (Step, bool), last func(r *orders.Record) bool) (*orders.Record, error) {
	k, log := j.key, j.log
	var from providers.State
	var hist int
	// step is what next named for the record written (asked: next was
	// asked, i.e. something was written).
	var step *Step
	var asked bool
	var then func(r *orders.Record) (*orders.Task, bool)
	if next != nil {
		then = func(r *orders.Record) (*orders.Task, bool) {
			asked = true
			s, ok := next(r)
			if !ok {
				return nil, false
			}
			step = &s
			t, err := orders.NewTask(s.Task)
			if err != nil {
				return nil, false
			}
			return t, last != nil && r.State == from && len(r.History) == hist && last(r)
		}
	}
	r, queued, err := h.cfg.Store.UpdateThen(ctx, k, j.cur, func(r *orders.Record) error {
		from, hist, step, asked = r.State, len(r.History), nil, false
		applied := j.pending != nil && j.pending(r)
		if err := fn(r); !errors.Is(err, orders.ErrNoChange) || !applied {
			return err
		}
		return nil // the pending change alone is still a write
	}, then)
	if err != nil {
		return r, err
	}
	j.pending = nil // written, or no longer applies
	if next != nil && !queued {
		if !asked { // nothing written: the step for the record as it is
			if s, ok := next(r); ok {
				step = &s
			}
		}
		if step != nil {
			if err := h.enqueue(ctx, *step); err != nil {
				return r, err
			}
		}
	}
	j.cur = r
	if r.State != from {
		log.Info("order state", "from", from, "to", r.State)
		h.dropScheduled(k, log, r)
		if h.cfg.Observer != nil {
			h.cfg.Observer.OrderTransition(k.Provider, string(from), string(r.State))
		}
	}
	if len(r.History) > hist {
		return r, h.notifyLater(ctx, r)
	}
	return r, nil
}

// flush writes the job's pending change, if any is left.
func (h *Handlers) flush(ctx context.Context, j *job) error {
	if j.pending == nil {
		return nil
	}
	_, err := h.update(ctx, j, func(*orders.Record) error { return orders.ErrNoChange })
	return err
}

// enqueue enqueues a follow-up step (see Enqueue).
func (h *Handlers) enqueue(ctx context.Context, s Step) error {
	return Enqueue(ctx, h.cfg.Enqueuer, h.cfg.Inspector, s)
}

// lastAttempt reports whether a failure now would exhaust the task's
// retries (never for a create run inside a preview task: a create task
// takes over what that run leaves).
func lastAttempt(ctx context.Context) bool {
	if inline, _ := ctx.Value(inlineCreate{}).(bool); inline {
		return false
	}
	n, ok1 := asynq.GetRetryCount(ctx)
	m, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= m
}

// deadline is when an order received at receivedAt expires.
func (h *Handlers) deadline(r *orders.Record) time.Time { return r.ReceivedAt.Add(h.cfg.Deadline) }

// dropScheduled removes the waiting poll and track of an order that has
// just ended, so no task outlives its order (the running task is left to
// finish).
func (h *Handlers) dropScheduled(k orders.Key, log *slog.Logger, r *orders.Record) {
	if !r.Terminal() {
		return
	}
	q := tasks.Queue(k.Provider, tasks.KindPoll)
	for _, id := range []string{pollID(k, r.PollSeq), trackID(k, r.TrackSeq)} {
		if err := h.cfg.Inspector.DeleteTask(q, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			log.Debug("waiting task of an ended order not removed", "id", id, "err", err)
		}
	}
}

// load reads the order and takes the deadline's step when it is due (see
// atDeadline). It returns nil when there is nothing more to do (terminal).
func (h *Handlers) load(ctx context.Context, j *job) (*orders.Record, error) {
	r, err := h.cfg.Store.Get(ctx, j.key)
	if errors.Is(err, orders.ErrNotFound) {
		return nil, skip("%s: no order record for %s (expired from retention?)", j.task.Type(), j.key)
	}
	if err != nil {
		return nil, err
	}
	j.cur = r
	if r.Terminal() {
		// A re-run after a crash between the last write and its
		// notification: make sure the upstream still hears of it.
		return nil, h.notifyLater(ctx, r)
	}
	done, err := h.atDeadline(ctx, j, r)
	if err != nil || done {
		return nil, err
	}
	return r, nil
}

// expire takes the deadline's step of an order past its deadline. The
// deadline sweep enqueues it for live orders received before the deadline.
func (h *Handlers) expire(ctx context.Context, j *job) error {
	r, err := h.load(ctx, j)
	if err != nil || r == nil {
		return err
	}
	if r.DeadlineLive {
		// Parked and followed on: off the deadline sweep's list.
		return h.cfg.Store.PastDeadline(ctx, j.key)
	}
	return nil
}
