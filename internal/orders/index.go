package orders

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/providers"
)

// ErrCursor: a list cursor that this store did not hand out.
var ErrCursor = errors.New("orders: bad cursor")

// MaxListLimit is the most orders one List page holds.
const MaxListLimit = 1000

// ListQuery selects orders for List.
type ListQuery struct {
	// States to list; none: every state.
	States []providers.State
	// Provider to list; "": every provider.
	Provider string
	// Since keeps only orders that entered their state at or after it;
	// zero: no bound.
	Since time.Time
	// Limit is the page size (1 … MaxListLimit); zero: 50.
	Limit int
	// Cursor is the Next of the page before; "": the first page.
	Cursor string
}

// Page is one page of List: the records, newest entry into their state
// first, and the cursor of the next page ("" when there is none).
type Page struct {
	Orders []*Record
	Next   string
}

// pageScript reads one page from each of several per-state indexes, after
// a cursor, in one atomic step. The order is (score descending, then
// "provider/outOrderId" descending, compared bytewise), which within one
// index is Redis's own reverse order; the cursor (score, provider, id) is
// the last entry of the page before, whether or not it is still there.
//
// KEYS[i] -> per-state index i (a sorted set of outOrderIds)
// ARGV[1] -> cursor score ("": from the start)
// ARGV[2] -> cursor provider
// ARGV[3] -> cursor outOrderId
// ARGV[4] -> limit per index
// ARGV[3+2i] -> the provider of index i
// ARGV[4+2i] -> the lowest score index i may answer ("-inf": no bound)
// Returns i, outOrderId, score for up to limit entries of each index.
var pageScript = redis.NewScript(`
local function lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local out = {}
local lim = tonumber(ARGV[4])
local cs, cp, cid = ARGV[1], ARGV[2], ARGV[3]
for i, key in ipairs(KEYS) do
  local prov, min = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local start = 0
  if cs ~= '' then
    if lt(prov, cp) then
      start = redis.call('ZCOUNT', key, '(' .. cs, '+inf')
    elseif lt(cp, prov) then
      start = redis.call('ZCOUNT', key, cs, '+inf')
    else
      local sc = redis.call('ZSCORE', key, cid)
      if sc and tonumber(sc) == tonumber(cs) then
        start = redis.call('ZREVRANK', key, cid) + 1
      else
        start = redis.call('ZCOUNT', key, '(' .. cs, '+inf')
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, cs, cs)) do
          if lt(cid, m) then start = start + 1 end
        end
      end
    end
  end
  local page = redis.call('ZREVRANGE', key, start, start + lim - 1, 'WITHSCORES')
  local lo = tonumber(min)
  for j = 1, #page, 2 do
    if tonumber(page[j + 1]) < lo then break end
    out[#out + 1] = i
    out[#out + 1] = page[j]
    out[#out + 1] = page[j + 1]
  end
end
return out
`)

type entry struct {
	score int64
	key   Key
}

// after reports whether e comes after c in list order.
func (e entry) after(c entry) bool {
	if e.score != c.score {
		return e.score < c.score
	}
	return bytes.Compare([]byte(e.key.String()), []byte(c.key.String())) < 0
}

func encodeCursor(e entry) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(e.score, 10) + ":" + e.key.String()))
}

func decodeCursor(c string) (entry, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return entry{}, ErrCursor
	}
	score, key, ok := strings.Cut(string(b), ":")
	p, id, ok2 := strings.Cut(key, "/")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || !ok2 || err != nil || p == "" || id == "" {
		return entry{}, ErrCursor
	}
	return entry{n, Key{p, id}}, nil
}

// List returns a page of the orders in the states asked for, from the
// per-state indexes: the newest entry into its state first. An index
// entry whose record has gone (an ended order past its retention) is
// skipped; ended orders' entries older than the retention are never
// answered. A page may be short of Limit only when it is the last.
func (s *Store) List(ctx context.Context, q ListQuery) (Page, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 0 || q.Limit > MaxListLimit {
		return Page{}, fmt.Errorf("orders: list limit %d not in 1…%d", q.Limit, MaxListLimit)
	}
	states := q.States
	if len(states) == 0 {
		states = providers.States
	}
	provs := providers.Names
	if q.Provider != "" {
		provs = []string{q.Provider}
	}
	var cur *entry
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		cur = &c
	}
	var keys []string
	args := []any{"", "", "", q.Limit}
	if cur != nil {
		args[0], args[1], args[2] = cur.score, cur.key.Provider, cur.key.OutOrderID
	}
	now := s.cfg.Now()
	for _, p := range provs {
		for _, st := range slices.Compact(slices.Clone(states)) {
			lo := int64(-1) << 62
			if !q.Since.IsZero() {
				lo = q.Since.UnixMilli()
			}
			if st.Terminal() {
				lo = max(lo, now.Add(-s.cfg.Retention).UnixMilli())
			}
			keys = append(keys, StateKey(p, st))
			args = append(args, p, lo)
		}
	}
	var page Page
	for round := 0; round < 20 && len(page.Orders) < q.Limit; round++ {
		got, more, err := s.listEntries(ctx, keys, args, q.Limit-len(page.Orders), cur)
		if err != nil {
			return Page{}, err
		}
		recs, err := s.getMany(ctx, got)
		if err != nil {
			return Page{}, err
		}
		page.Orders = append(page.Orders, recs...)
		page.Next = ""
		if !more || len(got) == 0 {
			break
		}
		last := got[len(got)-1]
		cur = &last
		args[0], args[1], args[2] = last.score, last.key.Provider, last.key.OutOrderID
		page.Next = encodeCursor(last)
	}
	return page, nil
}

// listEntries reads up to limit index entries after cur, in list order,
// and whether there may be more.
func (s *Store) listEntries(ctx context.Context, keys []string, args []any, limit int, cur *entry) ([]entry, bool, error) {
	args[3] = limit
	res, err := pageScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("orders: list: %w", err)
	}
	var all []entry
	perKey := map[int64]int{}
	for i := 0; i+2 < len(res); i += 3 {
		ix, _ := res[i].(int64)
		id, _ := res[i+1].(string)
		sc, _ := res[i+2].(string)
		score, err := strconv.ParseFloat(sc, 64)
		if err != nil {
			continue
		}
		perKey[ix]++
		p, _ := args[2+2*ix].(string)
		e := entry{int64(score), Key{p, id}}
		if cur != nil && !e.after(*cur) {
			continue // cannot happen: the script starts after the cursor
		}
		all = append(all, e)
	}
	more := false
	for _, n := range perKey {
		if n >= limit {
			more = true
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		switch {
		case b.after(a):
			return -1
		case a.after(b):
			return 1
		}
		return 0
	})
	if len(all) > limit {
		all, more = all[:limit], true
	}
	return all, more, nil
}

// getMany reads the records of es in one round trip (two when some are
// of an earlier release's form), skipping those gone.
func (s *Store) getMany(ctx context.Context, es []entry) ([]*Record, error) {
	if len(es) == 0 {
		return nil, nil
	}
	ks := make([]Key, len(es))
	for i, e := range es {
		ks[i] = e.key
	}
	vals, err := s.readStored(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("orders: list: %w", err)
	}
	out := make([]*Record, 0, len(es))
	for i, v := range vals {
		if v == nil {
			continue
		}
		r, err := decodeRecord(ks[i], *v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// FindByParcel returns the key of the order whose parcel has tracking
// number billNo at provider, or ErrNotFound.
func (s *Store) FindByParcel(ctx context.Context, provider, billNo string) (Key, error) {
	id, err := s.rdb.Get(ctx, parcelKey(provider, billNo)).Result()
	if errors.Is(err, redis.Nil) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("orders: find %s parcel %s: %w", provider, billNo, err)
	}
	return Key{Provider: provider, OutOrderID: id}, nil
}

// Find returns the records of the orders that own id as a provider order
// id or as a parcel tracking number, at any provider (none: an empty
// slice). An index entry whose record has gone is skipped.
func (s *Store) Find(ctx context.Context, id string) ([]*Record, error) {
	var ks []string
	var owners []string
	for _, p := range providers.Names {
		ks = append(ks, providerOrderKey(p, id), parcelKey(p, id))
		owners = append(owners, p, p)
	}
	vals, err := s.rdb.MGet(ctx, ks...).Result()
	if err != nil {
		return nil, fmt.Errorf("orders: find %s: %w", id, err)
	}
	var es []entry
	for i, v := range vals {
		out, ok := v.(string)
		if !ok {
			continue
		}
		e := entry{key: Key{owners[i], out}}
		if !slices.Contains(es, e) {
			es = append(es, e)
		}
	}
	return s.getMany(ctx, es)
}

// Entered is an order and when it entered its state.
type Entered struct {
	Record *Record
	At     time.Time
}

// Oldest returns up to limit orders in state st (at every provider), the
// one that entered it first first, from the per-state indexes. An index
// entry whose record has gone is skipped; ended orders that entered their
// state more than the retention ago are never answered.
func (s *Store) Oldest(ctx context.Context, st providers.State, limit int) ([]Entered, error) {
	if limit < 1 || limit > MaxListLimit {
		return nil, fmt.Errorf("orders: oldest limit %d not in 1…%d", limit, MaxListLimit)
	}
	lo := "-inf"
	if st.Terminal() {
		lo = strconv.FormatInt(s.cfg.Now().Add(-s.cfg.Retention).UnixMilli(), 10)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(providers.Names))
	for i, p := range providers.Names {
		cmds[i] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: StateKey(p, st), Start: lo, Stop: "+inf", ByScore: true, Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("orders: oldest %s: %w", st, err)
	}
	var es []entry
	for i, c := range cmds {
		for _, z := range c.Val() {
			id, _ := z.Member.(string)
			es = append(es, entry{int64(z.Score), Key{providers.Names[i], id}})
		}
	}
	// Oldest first: the reverse of list order.
	slices.SortFunc(es, func(a, b entry) int {
		switch {
		case a.after(b):
			return -1
		case b.after(a):
			return 1
		}
		return 0
	})
	es = es[:min(len(es), limit)]
	recs, err := s.getMany(ctx, es)
	if err != nil {
		return nil, err
	}
	at := make(map[Key]int64, len(es))
	for _, e := range es {
		at[e.key] = e.score
	}
	out := make([]Entered, 0, len(recs))
	for _, r := range recs {
		out = append(out, Entered{Record: r, At: time.UnixMilli(at[r.Key()]).UTC()})
	}
	return out, nil
}

// CountEntered counts provider's orders that entered state st at or after
// since (zero: ever, within the retention for an ended state), from the
// per-state index: one ZCOUNT.
func (s *Store) CountEntered(ctx context.Context, provider string, st providers.State, since time.Time) (int64, error) {
	lo := int64(-1) << 62
	if !since.IsZero() {
		lo = since.UnixMilli()
	}
	if st.Terminal() {
		lo = max(lo, s.cfg.Now().Add(-s.cfg.Retention).UnixMilli())
	}
	n, err := s.rdb.ZCount(ctx, StateKey(provider, st), strconv.FormatInt(lo, 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("orders: count %s %s: %w", provider, st, err)
	}
	return n, nil
}

// CursorBefore is a List cursor whose page starts with the orders that
// entered their state at or before t: the first page of "older than".
func CursorBefore(t time.Time) string {
	// A key above every real one (providers and outOrderIds are ASCII):
	// every order entered at t itself comes after it.
	return encodeCursor(entry{t.UnixMilli(), Key{"\xff", "\xff"}})
}
