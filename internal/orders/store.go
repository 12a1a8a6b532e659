package orders

import (
	"context"
	"encoding/json"
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
// appends its events to the stream, and keeps the live index and the
// retention in step, all in one atomic step.
//
// KEYS[1] -> the record hash (fields v: version, doc: JSON)
// KEYS[2] -> the event stream
// KEYS[3] -> the live index hash
// KEYS[4] -> the live orders by time received (sorted set)
// ARGV[1] -> expected version ("0": the record must not exist)
// ARGV[2] -> new version
// ARGV[3] -> record JSON
// ARGV[4] -> TTL in ms after which the record expires ("0": keep)
// ARGV[5] -> live index field (and sorted set member)
// ARGV[6] -> live index value ("": the order ended, remove it from both)
// ARGV[7] -> stream MAXLEN (approximate)
// ARGV[8] -> time received, unix ms (the sorted set's score)
// ARGV[9] -> number of events n; then n groups of 12: field/value pairs
// Returns 1 when written, 0 on a version mismatch.
var writeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if (cur or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3])
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[3], ARGV[5])
  redis.call('ZREM', KEYS[4], ARGV[5])
else
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
  if ARGV[1] == '0' then redis.call('ZADD', KEYS[4], ARGV[8], ARGV[5]) end
end
local n = tonumber(ARGV[9])
for i = 0, n - 1 do
  local b = 10 + i * 12
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
    ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4], ARGV[b+5],
    ARGV[b+6], ARGV[b+7], ARGV[b+8], ARGV[b+9], ARGV[b+10], ARGV[b+11])
end
return 1
`)

// Get returns the record for k, or ErrNotFound.
func (s *Store) Get(ctx context.Context, k Key) (*Record, error) {
	doc, err := s.rdb.HGet(ctx, RecordKey(k), "doc").Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("orders: get %s: %w", k, err)
	}
	var r Record
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return nil, fmt.Errorf("orders: decode %s: %w", k, err)
	}
	return &r, nil
}

// Create stores a new record in state received (with its event) unless one
// exists for the key. It returns the stored record and whether it was
// created by this call; an existing record is returned as it is.
func (s *Store) Create(ctx context.Context, req providers.OrderRequest) (*Record, bool, error) {
	now := s.cfg.Now().UTC()
	r := &Record{
		Provider:   req.Provider,
		OutOrderID: req.OutOrderID,
		Request:    req,
		ReceivedAt: now,
	}
	r.State = providers.StateReceived
	r.History = []Transition{{State: providers.StateReceived, At: now}}
	for {
		ok, err := s.write(ctx, r, 0)
		if err != nil {
			return nil, false, err
		}
		if ok {
			return r, true, nil
		}
		old, err := s.Get(ctx, r.Key())
		if errors.Is(err, ErrNotFound) {
			continue // expired between the two calls: try again
		}
		return old, false, err
	}
}

// Update reads the record for k, applies fn, and writes it back if the
// record did not change meanwhile (else it retries fn on the new record).
// fn returns ErrNoChange to write nothing. History entries fn appends
// become events on the stream in the same atomic step.
func (s *Store) Update(ctx context.Context, k Key, fn func(r *Record) error) (*Record, error) {
	for try := 0; try < 50; try++ {
		r, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		prev, from := r.Version, r.State
		hist := len(r.History)
		if err := fn(r); err != nil {
			if errors.Is(err, ErrNoChange) {
				return r, nil
			}
			return r, err
		}
		if err := checkMoves(from, r.History[hist:]); err != nil {
			return nil, fmt.Errorf("orders: update %s: %w", k, err)
		}
		ok, err := s.writeEvents(ctx, r, prev, r.History[hist:])
		if err != nil {
			return nil, err
		}
		if ok {
			return r, nil
		}
	}
	return nil, fmt.Errorf("orders: update %s: %w", k, ErrConflict)
}

// checkMoves refuses a write whose new history entries make a move the
// transition table does not allow.
func checkMoves(from providers.State, added []Transition) error {
	for _, t := range added {
		if !providers.CanMove(from, t.State) {
			return fmt.Errorf("%w: %s -> %s", ErrTransition, from, t.State)
		}
		from = t.State
	}
	return nil
}

func (s *Store) write(ctx context.Context, r *Record, prev int64) (bool, error) {
	return s.writeEvents(ctx, r, prev, r.History)
}

func (s *Store) writeEvents(ctx context.Context, r *Record, prev int64, events []Transition) (bool, error) {
	r.Version = prev + 1
	r.UpdatedAt = s.cfg.Now().UTC()
	doc, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("orders: encode %s: %w", r.Key(), err)
	}
	ttl, live := "0", string(r.State)
	if r.Terminal() {
		ttl, live = strconv.FormatInt(s.cfg.Retention.Milliseconds(), 10), ""
	}
	args := []any{prev, r.Version, doc, ttl, r.Key().String(), live, s.cfg.StreamMaxLen, r.ReceivedAt.UnixMilli(), len(events)}
	for _, ev := range events {
		errText := ""
		if ev.State.Terminal() && r.Error != nil {
			errText = r.Error.Code + ": " + r.Error.Message
		}
		args = append(args,
			"provider", r.Provider,
			"outOrderId", r.OutOrderID,
			"state", string(ev.State),
			"at", ev.At.UTC().Format(time.RFC3339Nano),
			"providerOrderId", strings.Join(r.ProviderOrderIDs, ","),
			"error", errText)
	}
	keys := []string{RecordKey(r.Key()), EventStream, liveKey, receivedKey}
	n, err := writeScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("orders: write %s: %w", r.Key(), err)
	}
	return n == 1, nil
}

// Live returns every order that has not ended, with its state.
func (s *Store) Live(ctx context.Context) (map[Key]providers.State, error) {
	m, err := s.rdb.HGetAll(ctx, liveKey).Result()
	if err != nil {
		return nil, fmt.Errorf("orders: live: %w", err)
	}
	out := make(map[Key]providers.State, len(m))
	for k, v := range m {
		p, id, ok := strings.Cut(k, "/")
		if !ok {
			continue
		}
		out[Key{p, id}] = providers.State(v)
	}
	return out, nil
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

// LiveCounts returns, per provider, how many live orders are in each state.
func (s *Store) LiveCounts(ctx context.Context) (map[string]map[string]int64, error) {
	live, err := s.Live(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int64{}
	for k, st := range live {
		if out[k.Provider] == nil {
			out[k.Provider] = map[string]int64{}
		}
		out[k.Provider][string(st)]++
	}
	return out, nil
}

// providerOrderKey maps a provider order id to its outOrderId, so a
// provider push naming only its own id finds the order.
func providerOrderKey(provider, orderID string) string {
	return "orderflow:porder:" + provider + ":" + orderID
}

// Link records which order the provider order ids belong to, for ttl.
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
