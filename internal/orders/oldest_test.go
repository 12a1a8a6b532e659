package orders

import (
	"context"
	"testing"
	"time"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// TestOldestCountAndCursorBefore: the review inbox's oldest-first read,
// the count of orders that entered a state since a time, and the "older
// than" cursor, across both providers.
func TestOldestCountAndCursorBefore(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		ctx := context.Background()
		c := newClock()
		st := NewStore(srv.Client(t), Config{Retention: time.Hour, Now: c.Now})
		park := func(p, id string) {
			t.Helper()
			if _, _, err := st.Create(ctx, request(p, id)); err != nil {
				t.Fatal(err)
			}
			move(t, st, Key{p, id}, providers.EventPreviewed, providers.EventParked)
			c.Add(time.Minute)
		}
		start := c.Now()
		park(providers.Depal, "r1")
		park(providers.Xportcn, "r2")
		park(providers.Depal, "r3")
		park(providers.Xportcn, "r4")

		got, err := st.Oldest(ctx, providers.StateNeedsReview, 3)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, e.Record.OutOrderID)
		}
		if len(got) != 3 || ids[0] != "r1" || ids[1] != "r2" || ids[2] != "r3" {
			t.Fatalf("Oldest(needs_review, 3) = %v, want r1 r2 r3", ids)
		}
		if !got[0].At.Equal(start) || !got[1].At.Equal(start.Add(time.Minute)) {
			t.Fatalf("entered at %v, %v; want %v and a minute later", got[0].At, got[1].At, start)
		}
		if _, err := st.Oldest(ctx, providers.StateNeedsReview, 0); err == nil {
			t.Fatal("Oldest with limit 0: no error")
		}

		n, err := st.CountEntered(ctx, providers.Depal, providers.StateNeedsReview, start.Add(30*time.Second))
		if err != nil || n != 1 {
			t.Fatalf("CountEntered(depal, since r1+30s) = %d, %v; want 1 (r3)", n, err)
		}
		n, err = st.CountEntered(ctx, providers.Xportcn, providers.StateNeedsReview, time.Time{})
		if err != nil || n != 2 {
			t.Fatalf("CountEntered(xportcn, ever) = %d, %v; want 2", n, err)
		}

		// Older than: entered at or before r2's time.
		page, err := st.List(ctx, ListQuery{States: []providers.State{providers.StateNeedsReview},
			Cursor: CursorBefore(start.Add(time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		ids = nil
		for _, r := range page.Orders {
			ids = append(ids, r.OutOrderID)
		}
		if len(ids) != 2 || ids[0] != "r2" || ids[1] != "r1" {
			t.Fatalf("List after CursorBefore(r2's time) = %v, want r2 r1", ids)
		}
	})
}
