package orders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// clock is a settable store clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func move(t *testing.T, st *Store, k Key, evs ...providers.Event) {
	t.Helper()
	if _, err := st.Update(context.Background(), k, func(r *Record) error {
		for _, ev := range evs {
			if !r.Apply(ev, st.Now(), "") {
				return fmt.Errorf("%s: %s not allowed in %s", k, ev, r.State)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func request(p, id string) providers.OrderRequest {
	r := sampleRequest(id)
	r.Provider = p
	return r
}

func TestCountsKeptByWrites(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		ctx := context.Background()
		st := NewStore(srv.Client(t), Config{Retention: time.Hour})
		if got, err := st.LiveCounts(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store counts = %v, %v", got, err)
		}
		for _, id := range []string{"a", "b", "c", "d"} {
			if _, _, err := st.Create(ctx, request(providers.Depal, id)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := st.Create(ctx, request(providers.Xportcn, "a")); err != nil {
			t.Fatal(err)
		}
		if _, created, _ := st.Create(ctx, request(providers.Depal, "a")); created {
			t.Fatal("duplicate created")
		}
		move(t, st, Key{providers.Depal, "b"}, providers.EventPreviewed)
		move(t, st, Key{providers.Depal, "c"}, providers.EventPreviewed, providers.EventCreated)
		move(t, st, Key{providers.Depal, "d"}, providers.EventCancelled)
		// A write without a state change counts nothing.
		if _, err := st.Update(ctx, Key{providers.Depal, "c"}, func(r *Record) error { r.PollStep++; return nil }); err != nil {
			t.Fatal(err)
		}
		// Concurrent moves: each counted once.
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Update(ctx, Key{providers.Depal, "a"}, func(r *Record) error {
					if r.State != providers.StateReceived {
						return ErrNoChange
					}
					r.Apply(providers.EventPreviewed, st.Now(), "")
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, err := st.LiveCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]int64{
			"depal":   {"received": 0, "previewed": 2, "created": 1},
			"xportcn": {"received": 1},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("LiveCounts = %v, want %v", got, want)
		}
	})
}

// TestCountsBuiltForOldRecords: records written before the counts existed
// (the live index there, no counts hash, no per-state index) are counted
// once, even when several pods ask at the same time, and listed.
func TestCountsBuiltForOldRecords(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		ctx := context.Background()
		rdb := srv.Client(t)
		st := NewStore(rdb, Config{Retention: time.Hour})
		for i := 0; i < 30; i++ {
			p := providers.Names[i%2]
			if _, _, err := st.Create(ctx, request(p, fmt.Sprintf("o-%02d", i))); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				move(t, st, Key{p, fmt.Sprintf("o-%02d", i)}, providers.EventPreviewed)
			}
		}
		// Make it look like the old version wrote it all.
		var old []string
		for _, p := range providers.Names {
			for _, s := range providers.States {
				old = append(old, StateKey(p, s))
			}
		}
		if err := rdb.Del(ctx, append(old, countsKey)...).Err(); err != nil {
			t.Fatal(err)
		}
		if n := rdb.HLen(ctx, liveKey).Val(); n != 30 {
			t.Fatalf("live index has %d, want 30", n)
		}
		// A write by the new version before anyone read the counts.
		move(t, st, Key{providers.Depal, "o-01"}, providers.EventPreviewed)

		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := NewStore(srv.Client(t), Config{}).BuildCounts(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, err := st.LiveCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// xportcn: even i (15), previewed when i%6==0 (0,6,12,18,24): 5.
		// depal: odd i (15), previewed when i%3==0 (3,9,15,21,27) and o-01: 6.
		want := map[string]map[string]int64{
			"depal":   {"received": 9, "previewed": 6},
			"xportcn": {"received": 10, "previewed": 5},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("LiveCounts = %v, want %v", got, want)
		}
		// Later writes keep them.
		move(t, st, Key{providers.Xportcn, "o-02"}, providers.EventFailed)
		got, _ = st.LiveCounts(ctx)
		if got["xportcn"]["received"] != 9 {
			t.Fatalf("after a failure LiveCounts = %v", got)
		}
		page, err := st.List(ctx, ListQuery{States: []providers.State{providers.StatePreviewed}, Provider: providers.Depal, Limit: 100})
		if err != nil || len(page.Orders) != 6 || page.Next != "" {
			t.Fatalf("list previewed after the build = %d orders, next %q, %v", len(page.Orders), page.Next, err)
		}
	})
}

func keysOf(rs []*Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key().String()
	}
	return out
}

func TestListPages(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		ctx := context.Background()
		clk := newClock()
		st := NewStore(srv.Client(t), Config{Retention: time.Hour, Now: clk.Now})
		// 12 orders, in pairs sharing a millisecond (ties), both providers.
		var all []string
		for i := 0; i < 12; i++ {
			p := providers.Names[i%2]
			id := fmt.Sprintf("L-%02d", i)
			if _, _, err := st.Create(ctx, request(p, id)); err != nil {
				t.Fatal(err)
			}
			all = append(all, p+"/"+id)
			if i%2 == 1 {
				clk.Add(time.Millisecond)
			}
		}
		// Newest first; within a millisecond "provider/id" descending.
		var want []string
		for i := 11; i >= 0; i -= 2 {
			a, b := all[i-1], all[i]
			if a < b {
				a, b = b, a
			}
			want = append(want, a, b)
		}
		q := ListQuery{States: []providers.State{providers.StateReceived}, Limit: 5}
		var got []string
		for pages := 0; ; pages++ {
			page, err := st.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, keysOf(page.Orders)...)
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
			if pages == 0 {
				// Concurrent writes between pages: the cursor's own order
				// moves away, a new order arrives; nothing is skipped.
				last := page.Orders[len(page.Orders)-1]
				move(t, st, last.Key(), providers.EventPreviewed)
				if _, _, err := st.Create(ctx, request(providers.Depal, "NEW")); err != nil {
					t.Fatal(err)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("pages = %v\nwant    %v", got, want)
		}

		// --provider, --since.
		page, err := st.List(ctx, ListQuery{States: []providers.State{providers.StateReceived}, Provider: providers.Xportcn,
			Since: clk.Now().Add(-2 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if g := keysOf(page.Orders); fmt.Sprint(g) != "[xportcn/L-10 xportcn/L-08]" {
			t.Fatalf("since 2ms, xportcn = %v", g)
		}
		if _, err := st.List(ctx, ListQuery{Cursor: "nonsense!"}); !errors.Is(err, ErrCursor) {
			t.Fatalf("bad cursor = %v", err)
		}
	})
}

func TestListEndedRetention(t *testing.T) {
	srv := redistest.Mini(t)
	ctx := context.Background()
	clk := newClock()
	rdb := srv.Client(t)
	st := NewStore(rdb, Config{Retention: time.Hour, Now: clk.Now})
	for _, id := range []string{"E-1", "E-2", "E-3"} {
		if _, _, err := st.Create(ctx, request(providers.Depal, id)); err != nil {
			t.Fatal(err)
		}
		move(t, st, Key{providers.Depal, id}, providers.EventCancelled)
		clk.Add(20 * time.Minute)
	}
	list := func() []string {
		page, err := st.List(ctx, ListQuery{States: []providers.State{providers.StateCancelled}})
		if err != nil {
			t.Fatal(err)
		}
		return keysOf(page.Orders)
	}
	if g := fmt.Sprint(list()); g != "[depal/E-3 depal/E-2 depal/E-1]" {
		t.Fatalf("cancelled = %s", g)
	}
	// A record gone before its index entry is skipped.
	rdb.Del(ctx, RecordKey(Key{providers.Depal, "E-2"}))
	if g := fmt.Sprint(list()); g != "[depal/E-3 depal/E-1]" {
		t.Fatalf("cancelled, E-2 gone = %s", g)
	}
	// Past the retention the entry is not answered, and the next write to
	// the set trims it.
	clk.Add(5 * time.Minute) // E-1 ended 65 min ago
	if g := fmt.Sprint(list()); g != "[depal/E-3]" {
		t.Fatalf("cancelled, E-1 past retention = %s", g)
	}
	if _, _, err := st.Create(ctx, request(providers.Depal, "E-4")); err != nil {
		t.Fatal(err)
	}
	move(t, st, Key{providers.Depal, "E-4"}, providers.EventCancelled)
	if _, err := rdb.ZScore(ctx, StateKey(providers.Depal, providers.StateCancelled), "E-1").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("E-1 still in the cancelled index: %v", err)
	}
}

func TestFind(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		ctx := context.Background()
		st := NewStore(srv.Client(t), Config{Retention: time.Hour})
		r, _, err := st.Create(ctx, request(providers.Xportcn, "F-1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Link(ctx, r.Key(), []string{"9001", "9002"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Update(ctx, r.Key(), func(r *Record) error {
			r.Parcel = &providers.ParcelRef{Carrier: "SF", BillNo: "SF123"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"9002", "SF123"} {
			got, err := st.Find(ctx, id)
			if err != nil || len(got) != 1 || got[0].Key() != r.Key() {
				t.Fatalf("Find(%s) = %v, %v", id, keysOf(got), err)
			}
		}
		if got, err := st.Find(ctx, "nope"); err != nil || len(got) != 0 {
			t.Fatalf("Find(nope) = %v, %v", keysOf(got), err)
		}
		// The parcel index expires with the ended record.
		move(t, st, r.Key(), providers.EventFailed)
		if ttl := srv.Client(t).PTTL(ctx, parcelKey(providers.Xportcn, "SF123")).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("parcel index TTL = %v, want (0, 1h]", ttl)
		}
	})
}
