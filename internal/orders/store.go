package orders

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/providers"
)

// Redis keys. Never rename one once deployed.
const (
	// EventStream is the stream every state change is appended to.
	EventStream = "orderflow:events"
	// liveKey is a hash "provider/outOrderId" -> state of every order that
	// has not ended: what `watch` follows and the orders-in-state gauge counts.
	liveKey = "orderflow:orders:live"
	// receivedKey is a sorted set of the same orders, scored by the time
	// they were received (unix ms): what the deadline sweep reads.
	receivedKey  = "orderflow:orders:received"
	recordPrefix = "orderflow:order:"
	// countsKey is a hash "provider/state" -> how many live orders are in
	// that state (fields of ended states are never written), plus the
	// field countsMarker, so that the hash exists once built.
	countsKey    = "orderflow:counts"
	countsMarker = "_built"
	// statePrefix + provider + ":" + state is a sorted set of the
	// outOrderIds of that provider's orders in that state, scored by the
	// time (unix ms) they entered it: what list pages through.
	statePrefix = "orderflow:state:"
	// parcelPrefix + provider + ":" + billNo -> outOrderId of the order
	// whose parcel has that tracking number; it expires with the record.
	parcelPrefix = "orderflow:parcel:"
)

// Sentinels.
var (
	// ErrNotFound: no record for that key.
	ErrNotFound = errors.New("orders: not found")
	// ErrNoChange, returned by an Update function, writes nothing.
	ErrNoChange = errors.New("orders: no change")
	// ErrConflict: the record changed under an Update too many times in a row.
	ErrConflict = errors.New("orders: too many concurrent updates")
	// ErrTransition: an Update made a state change the transition table
	// (providers.Transitions) does not allow; nothing was written.
	ErrTransition = errors.New("orders: transition not allowed")
)

// Config configures a Store. Zero values take the documented defaults.
type Config struct {
	// Retention is how long a record is kept after its order ended; zero: 720h.
	Retention time.Duration
	// StreamMaxLen trims the event stream to about this many entries;
	// zero: 1,000,000.
	StreamMaxLen int64
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Finisher, when set, lets a write that ends an asynq task's run
	// complete the task (UpdateThen); nil: asynq completes every task.
	Finisher *Finisher
}

// Store reads and writes order records. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Retention <= 0 {
		cfg.Retention = 720 * time.Hour
	}
	if cfg.StreamMaxLen <= 0 {
		cfg.StreamMaxLen = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: rdb, cfg: cfg}
}

// Retention is how long a record is kept after its order ended.
func (s *Store) Retention() time.Duration { return s.cfg.Retention }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.cfg.Now() }

// RecordKey is the Redis key of an order record.
func RecordKey(k Key) string { return recordPrefix + k.Provider + ":" + k.OutOrderID }

// writeScript writes a record if its stored version is the expected one,
// appends its events to the stream, and keeps the live index, the counts,
// the per-state index, the parcel index and the retention in step, all in
// one atomic step.
//
// KEYS[1] -> the record (a string "<version>:<doc>", or a hash {v, doc} of
// an earlier release, which the write replaces; see stored.go)
// KEYS[2] -> the event stream
// KEYS[3] -> the live index hash
// KEYS[4] -> the live orders by time received (sorted set)
// KEYS[5] -> the counts hash (fields provider/state)
// KEYS[6] -> the per-state index of the state written (sorted set)
// KEYS[7] -> the per-state index of the state before (sorted set; KEYS[6]
//
//	again on a create)
//
// KEYS[8…] -> the parcel index keys of the record's bill numbers, then the
// provider order keys of its provider order ids (each set to the
// outOrderId, kept while the order lives, then as long as the record)
// ARGV[1] -> expected version ("0": the record must not exist)
// ARGV[2] -> new version (ARGV[3] starts with it)
// ARGV[3] -> the record as stored ("<new version>:<doc>", encodeRecord)
// ARGV[4] -> TTL in ms after which the record expires ("0": keep)
// ARGV[5] -> live index field (and sorted set member)
// ARGV[6] -> live index value ("": the order ended, remove it from both)
// ARGV[7] -> stream MAXLEN (approximate)
// ARGV[8] -> time received, unix ms (the sorted set's score)
// ARGV[9] -> number of events n; then n groups, each the number m of its
//
//	field/value strings then those m strings
//
// ARGV[a]   -> (a: just after the events) the state before ("" on a create)
// ARGV[a+1] -> "1" when the state before was live (counted)
// ARGV[a+2] -> now, unix ms (the per-state index score on a move)
// ARGV[a+3] -> outOrderId (the per-state index member)
// ARGV[a+4] -> provider
// ARGV[a+5] -> the state written
// ARGV[a+6] -> trim KEYS[6] below this score ("": a live state, keep)
// ARGV[a+7] -> an asynq task to enqueue once written: "p" pending, "s"
// scheduled, "" (or absent) none; then its hash key, its pending list or
// the scheduled set, the encoded message, pending_since (unix ns) or
// process_at (unix s), the task id, the queue, asynq's set of queues, and
// the Pub/Sub channel to announce the queue on ("": none). It does what
// asynq's enqueue and schedule scripts do (Task). The task's keys are
// arguments, not KEYS: orderflow's Redis is not a cluster, and the record
// keys above stay as they were.
// ARGV[a+16] -> the id of the asynq task whose run this write ends ("":
// none), then its queue's lease set, active list and the task's hash, the
// queue's processed counts (today's, the total), today's count's expiry
// (unix s) and the largest int64: once written (and the task, if any,
// enqueued), the write completes that task as asynq's own completion
// (its doneCmd) does, if it is still active (Finisher).
// Returns 1 when written (and the task enqueued), 2 when written but a
// task with the id exists (nothing enqueued, nothing completed), 3 when
// written, the task enqueued and the running task completed, 0 on a
// version mismatch.
//
// The counts are kept only once the counts hash exists (countsScript
// builds it from the live index the first time it is read), so a write
// never starts a partial hash.
var writeScript = redis.NewScript(`
local cur = redis.pcall('GETRANGE', KEYS[1], 0, 20)
if type(cur) == 'table' then
  -- WRONGTYPE: a hash, as earlier releases wrote the record
  cur = redis.call('HGET', KEYS[1], 'v') or '0'
elseif cur == '' then
  cur = '0'
else
  cur = string.match(cur, '^(%d+):') or ''
end
if cur ~= ARGV[1] then return 0 end
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[3], ARGV[5])
  redis.call('ZREM', KEYS[4], ARGV[5])
else
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
  if ARGV[1] == '0' then redis.call('ZADD', KEYS[4], ARGV[8], ARGV[5]) end
end
local n = tonumber(ARGV[9])
local a = 10
for i = 1, n do
  local m = tonumber(ARGV[a])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', unpack(ARGV, a + 1, a + m))
  a = a + 1 + m
end
local from, fromLive, now, id, prov, to, trim =
  ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5], ARGV[a+6]
if from ~= to then
  if from ~= '' then redis.call('ZREM', KEYS[7], id) end
  redis.call('ZADD', KEYS[6], now, id)
  if redis.call('EXISTS', KEYS[5]) == 1 then
    if fromLive == '1' then redis.call('HINCRBY', KEYS[5], prov .. '/' .. from, -1) end
    if ARGV[6] ~= '' then redis.call('HINCRBY', KEYS[5], prov .. '/' .. to, 1) end
  end
else
  redis.call('ZADD', KEYS[6], 'NX', now, id)
end
if trim ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. trim) end
for i = 8, #KEYS do
  if ARGV[4] ~= '0' then
    redis.call('SET', KEYS[i], id, 'PX', ARGV[4])
  else
    redis.call('SET', KEYS[i], id)
  end
end
local t = a + 7
local res = 1
if ARGV[t] ~= nil and ARGV[t] ~= '' then
  if redis.call('EXISTS', ARGV[t+1]) == 1 then
    res = 2
  else
    if ARGV[t] == 'p' then
      redis.call('HSET', ARGV[t+1], 'msg', ARGV[t+3], 'state', 'pending', 'pending_since', ARGV[t+4])
      redis.call('LPUSH', ARGV[t+2], ARGV[t+5])
    else
      redis.call('HSET', ARGV[t+1], 'msg', ARGV[t+3], 'state', 'scheduled')
      redis.call('ZADD', ARGV[t+2], ARGV[t+4], ARGV[t+5])
    end
    redis.call('SADD', ARGV[t+7], ARGV[t+6])
    if ARGV[t+8] ~= '' then redis.call('PUBLISH', ARGV[t+8], ARGV[t+6]) end
  end
end
local f = t + 9
if res ~= 1 or ARGV[f] == nil or ARGV[f] == '' then return res end
if not redis.call('ZSCORE', ARGV[f+1], ARGV[f]) or redis.call('EXISTS', ARGV[f+3]) == 0 or
    redis.call('LREM', ARGV[f+2], 0, ARGV[f]) == 0 then
  return res
end
redis.call('ZREM', ARGV[f+1], ARGV[f])
redis.call('DEL', ARGV[f+3])
if redis.call('INCR', ARGV[f+4]) == 1 then redis.call('EXPIREAT', ARGV[f+4], ARGV[f+6]) end
local total = redis.call('GET', ARGV[f+5])
if tonumber(total) == tonumber(ARGV[f+7]) then
  redis.call('SET', ARGV[f+5], 1)
else
  redis.call('INCR', ARGV[f+5])
end
return 3
`)

// countsScript builds the counts hash and the per-state index of the live
// orders from the live index, once: when the counts hash already exists it
// does nothing, so two pods cannot both add. Records written before the
// counts existed are counted this way; the per-state index gets those
// orders scored by their time received (the time they entered their state
// is not known), without changing an entry a write already made.
//
// KEYS[1] -> the counts hash
// KEYS[2] -> the live index hash
// KEYS[3] -> the live orders by time received (sorted set)
// ARGV[1] -> the per-state index key prefix ("orderflow:state:")
// ARGV[2] -> now, unix ms (the score of an order not in KEYS[3])
// Returns 1 when it built the counts, 0 when they existed.
var countsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local live = redis.call('HGETALL', KEYS[2])
local counts = {}
for i = 1, #live, 2 do
  local key, state = live[i], live[i+1]
  local slash = string.find(key, '/', 1, true)
  if slash then
    local prov, id = string.sub(key, 1, slash - 1), string.sub(key, slash + 1)
    local f = prov .. '/' .. state
    counts[f] = (counts[f] or 0) + 1
    local score = redis.call('ZSCORE', KEYS[3], key) or ARGV[2]
    redis.call('ZADD', ARGV[1] .. prov .. ':' .. state, 'NX', score, id)
  end
end
redis.call('HSET', KEYS[1], '` + countsMarker + `', '1')
for f, c in pairs(counts) do redis.call('HSET', KEYS[1], f, c) end
return 1
`)

// Get returns the record for k, or ErrNotFound.
func (s *Store) Get(ctx context.Context, k Key) (*Record, error) {
	vals, err := s.readStored(ctx, []Key{k})
	if err != nil {
		return nil, fmt.Errorf("orders: get %s: %w", k, err)
	}
	if vals[0] == nil {
		return nil, ErrNotFound
	}
	return decodeRecord(k, *vals[0])
}

// readStored reads the stored records of ks (nil: no record) in one round
// trip, whatever their form (see stored.go): a string, or the doc of a
// hash of an earlier release, read in a second round trip when there is
// any.
func (s *Store) readStored(ctx context.Context, ks []Key) ([]*string, error) {
	out := make([]*string, len(ks))
	todo := make([]int, len(ks))
	for i := range todo {
		todo[i] = i
	}
	for try := 0; len(todo) > 0; try++ {
		if try == 4 {
			return nil, fmt.Errorf("read %s: the record changed form under every read", ks[todo[0]])
		}
		var c redis.Cmdable = s.rdb
		var pipe redis.Pipeliner
		if len(todo) > 1 {
			pipe = s.rdb.Pipeline()
			c = pipe
		}
		cmds := make([]*redis.StringCmd, len(todo))
		for j, i := range todo {
			if try%2 == 0 {
				cmds[j] = c.Get(ctx, RecordKey(ks[i]))
			} else {
				cmds[j] = c.HGet(ctx, RecordKey(ks[i]), "doc")
			}
		}
		if pipe != nil {
			_, _ = pipe.Exec(ctx) // each command's own error is looked at below
		}
		var again []int
		for j, i := range todo {
			v, err := cmds[j].Result()
			switch {
			case err == nil:
				out[i] = &v
			case errors.Is(err, redis.Nil):
			case redis.HasErrorPrefix(err, "WRONGTYPE"):
				// A hash of an earlier release (or, read as one, a record
				// rewritten as a string meanwhile): read it the other way.
				again = append(again, i)
			default:
				return nil, err
			}
		}
		todo = again
	}
	return out, nil
}

// Create stores a new record in state received (with its event) unless one
// exists for the key. It returns the stored record and whether it was
// created by this call; an existing record is returned as it is.
func (s *Store) Create(ctx context.Context, req providers.OrderRequest) (*Record, bool, error) {
	r, created, _, err := s.CreateThen(ctx, req, nil)
	return r, created, err
}

// CreateThen is Create, enqueueing task (when not nil) in the same atomic
// step when it creates the record. queued is false when the record was
// not created, or when a task with the id already exists: enqueue it the
// usual way then (an archived task may hold the id).
func (s *Store) CreateThen(ctx context.Context, req providers.OrderRequest, task *Task) (r *Record, created, queued bool, err error) {
	now := s.cfg.Now().UTC()
	r = &Record{
		Provider:   req.Provider,
		OutOrderID: req.OutOrderID,
		Request:    req,
		ReceivedAt: now,
	}
	r.State = providers.StateReceived
	r.History = []Transition{{State: providers.StateReceived, At: now}}
	for {
		n, err := s.writeEvents(ctx, r, 0, providers.StateUnknown, r.History, task, false)
		if err != nil {
			return nil, false, false, err
		}
		if n != wroteNot {
			return r, true, n == wroteQueued && task != nil, nil
		}
		old, err := s.Get(ctx, r.Key())
		if errors.Is(err, ErrNotFound) {
			continue // expired between the two calls: try again
		}
		return old, false, false, err
	}
}

// Update reads the record for k, applies fn, and writes it back if the
// record did not change meanwhile (else it retries fn on the new record).
// fn returns ErrNoChange to write nothing. History entries fn appends
// become events on the stream in the same atomic step.
func (s *Store) Update(ctx context.Context, k Key, fn func(r *Record) error) (*Record, error) {
	return s.UpdateFrom(ctx, k, nil, fn)
}

// UpdateFrom is Update starting from cur, the record as the caller last
// read or wrote it (nil: read it): fn is applied to a copy of cur and
// written if the stored version is still cur's, which saves reading the
// record again; if it changed meanwhile, Update's loop goes on from a
// fresh read. cur itself is not changed.
func (s *Store) UpdateFrom(ctx context.Context, k Key, cur *Record, fn func(r *Record) error) (*Record, error) {
	r, _, err := s.UpdateThen(ctx, k, cur, fn, nil)
	return r, err
}

// UpdateThen is UpdateFrom, enqueueing the task then names for the record
// as fn left it (nil: none) in the same atomic step as the write. queued
// is false when nothing was written, then gave no task, or a task with
// its id already exists: enqueue it the usual way then (an archived task
// may hold the id).
//
// When then also answers last (the write is the last step of the asynq
// task running in ctx: its handler returns nil once it is made), the
// write completes that task too, given a Config.Finisher that knows how;
// it does not when the task it enqueues is held (the caller enqueues it
// after the write). Only for tasks without retention or unique key (asynq
// keeps those otherwise, and does not tell a handler): the pipeline's
// polls.
func (s *Store) UpdateThen(ctx context.Context, k Key, cur *Record, fn func(r *Record) error, then func(r *Record) (next *Task, last bool)) (_ *Record, queued bool, _ error) {
	for try := 0; try < 50; try++ {
		var r *Record
		cached := try == 0 && cur != nil && cur.Key() == k
		if cached {
			r = cur.Clone()
		} else {
			var err error
			if r, err = s.Get(ctx, k); err != nil {
				return nil, false, err
			}
		}
		prev, from := r.Version, r.State
		hist := len(r.History)
		if err := fn(r); err != nil {
			if errors.Is(err, ErrNoChange) && cached {
				continue // "nothing to do" is decided on the stored record, not a copy
			}
			if errors.Is(err, ErrNoChange) {
				return r, false, nil
			}
			return r, false, err
		}
		if err := checkMoves(from, r.History[hist:]); err != nil {
			return nil, false, fmt.Errorf("orders: update %s: %w", k, err)
		}
		var task *Task
		var last bool
		if then != nil {
			task, last = then(r)
		}
		n, err := s.writeEvents(ctx, r, prev, from, r.History[hist:], task, last)
		if err != nil {
			return nil, false, err
		}
		if n != wroteNot {
			return r, n != wroteHeld && task != nil, nil
		}
	}
	return nil, false, fmt.Errorf("orders: update %s: %w", k, ErrConflict)
}

// checkMoves refuses a write whose new history entries make a move the
// transition table does not allow.
func checkMoves(from providers.State, added []Transition) error {
	for _, t := range added {
		if t.Event != "" && t.State == from {
			continue // an entry that records something else than a move
		}
		if !providers.CanMove(from, t.State) {
			return fmt.Errorf("%w: %s -> %s", ErrTransition, from, t.State)
		}
		from = t.State
	}
	return nil
}

// EventFields are the field/value strings of the event stream entry of
// history entry ev of r: provider, outOrderId, state, at, providerOrderId,
// error (an ended order's), and, where set, event, note, actor, action and
// reason.
func EventFields(r *Record, ev Transition) []string {
	errText := ""
	if ev.State.Terminal() && r.Error != nil {
		errText = r.Error.Code + ": " + r.Error.Message
	}
	f := []string{
		"provider", r.Provider,
		"outOrderId", r.OutOrderID,
		"state", string(ev.State),
		"at", ev.At.UTC().Format(time.RFC3339Nano),
		"providerOrderId", strings.Join(r.ProviderOrderIDs, ","),
		"error", errText,
	}
	for _, kv := range [][2]string{{"event", ev.Event}, {"note", ev.Note}, {"actor", ev.Actor}, {"action", ev.Action}, {"reason", ev.Reason}} {
		if kv[1] != "" && (kv[0] != "note" || ev.Event != "" || ev.Actor != "") {
			f = append(f, kv[0], kv[1])
		}
	}
	return f
}

// StateKey is the Redis key of the per-state index of provider's orders
// in state st.
func StateKey(provider string, st providers.State) string {
	return statePrefix + provider + ":" + string(st)
}

func parcelKey(provider, billNo string) string { return parcelPrefix + provider + ":" + billNo }

// writeScript's answers.
const (
	wroteNot      = 0 // version mismatch: nothing written
	wroteQueued   = 1 // written, and the task (if any) enqueued
	wroteHeld     = 2 // written; a task with the id exists, nothing enqueued
	wroteFinished = 3 // written, the task (if any) enqueued, the running task completed
)

// writeEvents writes r over version prev (from: the state before), with
// its new history entries events and, once written, task (nil: none);
// finish: and completes the asynq task running in ctx (Finisher.finish
// says whether it may). It answers wroteNot, wroteQueued, wroteHeld or
// wroteFinished.
func (s *Store) writeEvents(ctx context.Context, r *Record, prev int64, from providers.State, events []Transition, task *Task, finish bool) (int, error) {
	r.migrate()
	r.Version = prev + 1
	now := s.cfg.Now().UTC()
	r.UpdatedAt = now
	doc, err := encodeRecord(r)
	if err != nil {
		return wroteNot, err
	}
	ttl, live := "0", string(r.State)
	if r.Terminal() {
		ttl, live = strconv.FormatInt(s.cfg.Retention.Milliseconds(), 10), ""
	}
	args := []any{prev, r.Version, doc, ttl, r.Key().String(), live, s.cfg.StreamMaxLen, r.ReceivedAt.UnixMilli(), len(events)}
	for _, ev := range events {
		fields := EventFields(r, ev)
		args = append(args, len(fields))
		for _, f := range fields {
			args = append(args, f)
		}
	}
	fromLive, trim := "0", ""
	if from != providers.StateUnknown && !from.Terminal() {
		fromLive = "1"
	}
	if r.Terminal() {
		trim = strconv.FormatInt(now.Add(-s.cfg.Retention).UnixMilli(), 10)
	}
	args = append(args, string(from), fromLive, now.UnixMilli(), r.OutOrderID, r.Provider, string(r.State), trim)
	args = append(args, task.argv()...)
	if finish {
		// asynq's counts go by the wall clock, whatever the store's.
		args = append(args, s.cfg.Finisher.finish(ctx, time.Now())...)
	}
	to := StateKey(r.Provider, r.State)
	before := to
	if from != providers.StateUnknown {
		before = StateKey(r.Provider, from)
	}
	keys := []string{RecordKey(r.Key()), EventStream, liveKey, receivedKey, countsKey, to, before}
	for _, p := range r.Parcels {
		if p.BillNo != "" {
			keys = append(keys, parcelKey(r.Provider, p.BillNo))
		}
	}
	for _, id := range r.ProviderOrderIDs {
		keys = append(keys, providerOrderKey(r.Provider, id))
	}
	n, err := writeScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return wroteNot, fmt.Errorf("orders: write %s: %w", r.Key(), err)
	}
	switch n {
	case wroteNot, wroteQueued, wroteHeld:
	case wroteFinished:
		s.cfg.Finisher.finished(ctx, time.Now())
	default:
		return wroteNot, fmt.Errorf("orders: write %s: the script answered %d", r.Key(), n)
	}
	return n, nil
}

// Live returns every order that has not ended, with its state. It reads
// the live index in chunks (HSCAN), so a large index never blocks Redis;
// an order that moves meanwhile may show either state.
func (s *Store) Live(ctx context.Context) (map[Key]providers.State, error) {
	out := map[Key]providers.State{}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, liveKey, cursor, "*", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("orders: live: %w", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if p, id, ok := strings.Cut(kv[i], "/"); ok {
				out[Key{p, id}] = providers.State(kv[i+1])
			}
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// StreamEvent is one entry of the event stream, as far as followers need.
type StreamEvent struct {
	ID    string
	Key   Key
	State providers.State
}

// LastEventID is the id of the newest entry of the event stream ("0-0"
// when it is empty): follow from there with EventsAfter.
func (s *Store) LastEventID(ctx context.Context) (string, error) {
	evs, err := s.rdb.XRevRangeN(ctx, EventStream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("orders: last event: %w", err)
	}
	if len(evs) == 0 {
		return "0-0", nil
	}
	return evs[0].ID, nil
}

// EventsAfter returns up to count entries of the event stream after id,
// oldest first, and the id to go on from.
func (s *Store) EventsAfter(ctx context.Context, id string, count int64) ([]StreamEvent, string, error) {
	evs, err := s.rdb.XRangeN(ctx, EventStream, "("+id, "+", count).Result()
	if err != nil {
		return nil, id, fmt.Errorf("orders: events after %s: %w", id, err)
	}
	out := make([]StreamEvent, 0, len(evs))
	for _, e := range evs {
		p, _ := e.Values["provider"].(string)
		o, _ := e.Values["outOrderId"].(string)
		st, _ := e.Values["state"].(string)
		out = append(out, StreamEvent{ID: e.ID, Key: Key{p, o}, State: providers.State(st)})
		id = e.ID
	}
	return out, id, nil
}

// ScanLive returns some live orders from cursor on (start with 0) and the
// cursor to go on from (0: the scan is through), about count at a time.
func (s *Store) ScanLive(ctx context.Context, cursor uint64, count int64) ([]Key, uint64, error) {
	kv, next, err := s.rdb.HScan(ctx, liveKey, cursor, "*", count).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("orders: scan live: %w", err)
	}
	out := make([]Key, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if p, id, ok := strings.Cut(kv[i], "/"); ok {
			out = append(out, Key{p, id})
		}
	}
	return out, next, nil
}

// ReceivedBefore returns up to limit live orders received before t, the
// oldest first.
func (s *Store) ReceivedBefore(ctx context.Context, t time.Time, limit int64) ([]Key, error) {
	ms, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: receivedKey, Start: "-inf", Stop: "(" + strconv.FormatInt(t.UnixMilli(), 10),
		ByScore: true, Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("orders: received before %s: %w", t.Format(time.RFC3339), err)
	}
	out := make([]Key, 0, len(ms))
	for _, m := range ms {
		if p, id, ok := strings.Cut(m, "/"); ok {
			out = append(out, Key{p, id})
		}
	}
	return out, nil
}

// LiveCounts returns, per provider, how many live orders are in each
// state: one read of the counts hash (built from the live index the first
// time, see countsScript). A state whose orders have all moved on may be
// there with 0.
func (s *Store) LiveCounts(ctx context.Context) (map[string]map[string]int64, error) {
	m, err := s.counts(ctx)
	if err != nil {
		return nil, err
	}
	return parseCounts(m), nil
}

// counts reads the counts hash, building it first when it is absent.
func (s *Store) counts(ctx context.Context) (map[string]string, error) {
	for try := 0; ; try++ {
		m, err := s.rdb.HGetAll(ctx, countsKey).Result()
		if err != nil {
			return nil, fmt.Errorf("orders: counts: %w", err)
		}
		if len(m) > 0 || try > 0 {
			return m, nil
		}
		if err := s.BuildCounts(ctx); err != nil {
			return nil, err
		}
	}
}

// BuildCounts builds the counts hash from the live index unless it exists
// (see countsScript). Reading the counts does it when needed.
func (s *Store) BuildCounts(ctx context.Context) error {
	keys := []string{countsKey, liveKey, receivedKey}
	if err := countsScript.Run(ctx, s.rdb, keys, statePrefix, s.cfg.Now().UnixMilli()).Err(); err != nil {
		return fmt.Errorf("orders: build counts: %w", err)
	}
	return nil
}

func parseCounts(m map[string]string) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for f, v := range m {
		p, st, ok := strings.Cut(f, "/")
		if !ok {
			continue // the marker
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		if out[p] == nil {
			out[p] = map[string]int64{}
		}
		out[p][st] = n
	}
	return out
}

// providerOrderKey maps a provider order id to its outOrderId, so a
// provider push naming only its own id finds the order.
func providerOrderKey(provider, orderID string) string {
	return "orderflow:porder:" + provider + ":" + orderID
}

// Link records which order the provider order ids belong to, for ttl. A
// record written with its ProviderOrderIDs links them itself (kept as
// long as the record); Link is for ids known apart from a record write.
func (s *Store) Link(ctx context.Context, k Key, orderIDs []string, ttl time.Duration) error {
	pipe := s.rdb.Pipeline()
	for _, id := range orderIDs {
		pipe.Set(ctx, providerOrderKey(k.Provider, id), k.OutOrderID, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("orders: link %s: %w", k, err)
	}
	return nil
}

// FindByProviderOrder returns the key of the order a provider order id
// belongs to, or ErrNotFound.
func (s *Store) FindByProviderOrder(ctx context.Context, provider, orderID string) (Key, error) {
	id, err := s.rdb.Get(ctx, providerOrderKey(provider, orderID)).Result()
	if errors.Is(err, redis.Nil) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("orders: find %s order %s: %w", provider, orderID, err)
	}
	return Key{Provider: provider, OutOrderID: id}, nil
}

// PastDeadline takes a live order off the deadline sweep's list (the
// received-time sorted set): its deadline has been dealt with and it is
// followed on. It stays live (listed, counted) until it ends.
func (s *Store) PastDeadline(ctx context.Context, k Key) error {
	if err := s.rdb.ZRem(ctx, receivedKey, k.String()).Err(); err != nil {
		return fmt.Errorf("orders: past deadline %s: %w", k, err)
	}
	return nil
}
