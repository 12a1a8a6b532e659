package orders

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

func sampleRequest(id string) providers.OrderRequest {
	return providers.OrderRequest{
		Provider: providers.Depal, OutOrderID: id,
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"},
		Items:   []providers.Item{{ProductID: 1, SkuID: "a", Quantity: 1}},
	}
}

func TestStore(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		ctx := context.Background()
		st := NewStore(rdb, Config{Retention: time.Hour})

		r, created, err := st.Create(ctx, sampleRequest("A-1"))
		if err != nil || !created {
			t.Fatalf("Create = %v, %v; want created", created, err)
		}
		if r.State != providers.StateReceived || r.Version != 1 {
			t.Fatalf("new record state %q version %d", r.State, r.Version)
		}
		again, created, err := st.Create(ctx, sampleRequest("A-1"))
		if err != nil || created || again.Version != 1 {
			t.Fatalf("second Create = %v (version %d), %v; want the existing record", created, again.Version, err)
		}

		// Concurrent updates: none lost.
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.Update(ctx, r.Key(), func(r *Record) error { r.PollStep++; return nil }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, err := st.Get(ctx, r.Key())
		if err != nil || got.PollStep != 20 {
			t.Fatalf("after 20 concurrent increments PollStep = %d (%v), want 20", got.PollStep, err)
		}

		// ErrNoChange writes nothing.
		if _, err := st.Update(ctx, r.Key(), func(*Record) error { return ErrNoChange }); err != nil {
			t.Fatal(err)
		}
		if g, _ := st.Get(ctx, r.Key()); g.Version != got.Version {
			t.Fatalf("ErrNoChange wrote: version %d -> %d", got.Version, g.Version)
		}

		// Two transitions in one update: two events, the record leaves the live index.
		_, err = st.Update(ctx, r.Key(), func(r *Record) error {
			r.Apply(providers.EventPreviewed, st.Now(), "")
			r.Fail("R500_004", "out of stock", st.Now())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := rdb.XRange(ctx, EventStream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, e := range evs {
			states = append(states, e.Values["state"].(string))
		}
		if want := []string{"received", "previewed", "failed"}; !equal(states, want) {
			t.Fatalf("event states = %v, want %v", states, want)
		}
		if e := evs[2].Values["error"]; e != "R500_004: out of stock" {
			t.Fatalf("failed event error = %q", e)
		}
		live, err := st.Live(ctx)
		if err != nil || len(live) != 0 {
			t.Fatalf("live after failure = %v, %v; want empty", live, err)
		}
		ttl := rdb.PTTL(ctx, RecordKey(r.Key())).Val()
		if ttl <= 0 || ttl > time.Hour {
			t.Fatalf("terminal record TTL = %v, want (0, 1h]", ttl)
		}

		if _, err := st.Get(ctx, Key{"depal", "nope"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get missing = %v, want ErrNotFound", err)
		}
		if _, err := st.Update(ctx, Key{"depal", "nope"}, func(*Record) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update missing = %v, want ErrNotFound", err)
		}
	})
}

func TestLiveCounts(t *testing.T) {
	srv := redistest.Mini(t)
	st := NewStore(srv.Client(t), Config{})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := st.Create(ctx, sampleRequest(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, Key{providers.Depal, "c"}, func(r *Record) error {
		r.Apply(providers.EventPreviewed, st.Now(), "")
		r.Apply(providers.EventCreated, st.Now(), "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := st.LiveCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["depal"]["received"] != 2 || got["depal"]["created"] != 1 {
		t.Fatalf("LiveCounts = %v", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
