package orders

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// TestListAndFindAtScale loads 10^5 orders into a real Redis and checks
// that list and find answer from the indexes, fast.
func TestListAndFindAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 10^5 orders")
	}
	const n, linked, workers = 100_000, 1000, 32
	srv := redistest.Real(t)
	ctx := context.Background()
	rdb := srv.Client(t)
	st := NewStore(rdb, Config{Retention: time.Hour, StreamMaxLen: 1000})

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				r, _, err := st.Create(ctx, request(providers.Names[i%2], fmt.Sprintf("S-%06d", i)))
				if err != nil {
					t.Error(err)
					return
				}
				if i%(n/linked) != 0 {
					continue
				}
				if err := st.Link(ctx, r.Key(), []string{fmt.Sprintf("P%06d", i)}, time.Hour); err != nil {
					t.Error(err)
					return
				}
				if _, err := st.Update(ctx, r.Key(), func(r *Record) error {
					r.Parcel = &providers.ParcelRef{Carrier: "SF", BillNo: fmt.Sprintf("SF%06d", i)}
					r.Apply(providers.EventPreviewed, st.Now(), "")
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("loaded %d orders in %v", n, time.Since(start))

	counts, err := st.LiveCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := counts[providers.Depal]; c["received"]+c["previewed"] != n/2 || counts[providers.Xportcn]["previewed"] != linked {
		t.Fatalf("counts = %v", counts)
	}

	p99 := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)*99/100]
	}
	const calls = 50
	var listT, findT []time.Duration
	q := ListQuery{States: []providers.State{providers.StateReceived}, Limit: 50}
	seen := map[Key]bool{}
	for i := 0; i < calls; i++ {
		t0 := time.Now()
		page, err := st.List(ctx, q)
		listT = append(listT, time.Since(t0))
		if err != nil || len(page.Orders) != 50 || page.Next == "" {
			t.Fatalf("list page %d: %d orders, next %q, %v", i, len(page.Orders), page.Next, err)
		}
		for _, r := range page.Orders {
			if r.State != providers.StateReceived || seen[r.Key()] {
				t.Fatalf("page %d: %s in %s (seen before: %v)", i, r.Key(), r.State, seen[r.Key()])
			}
			seen[r.Key()] = true
		}
		q.Cursor = page.Next
	}
	for i := 0; i < calls; i++ {
		j := (i * 7 % linked) * (n / linked)
		id := fmt.Sprintf("P%06d", j)
		if i%2 == 1 {
			id = fmt.Sprintf("SF%06d", j)
		}
		t0 := time.Now()
		got, err := st.Find(ctx, id)
		findT = append(findT, time.Since(t0))
		if err != nil || len(got) != 1 || got[0].OutOrderID != fmt.Sprintf("S-%06d", j) {
			t.Fatalf("Find(%s) = %v, %v", id, keysOf(got), err)
		}
	}
	lp, fp := p99(listT), p99(findT)
	t.Logf("at %d orders: list --state received --limit 50: p50 %v p99 %v; find: p50 %v p99 %v",
		n, listT[calls/2], lp, findT[calls/2], fp)
	if lp > 200*time.Millisecond || fp > 200*time.Millisecond {
		t.Fatalf("too slow: list p99 %v, find p99 %v (want < 200ms)", lp, fp)
	}
}
