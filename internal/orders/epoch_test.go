package orders

import (
	"context"
	"errors"
	"testing"
	"time"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// GetWithEpoch answers what Get and Epoch answer, in one round trip: on a
// server orderflow has seen change (the epoch moves to when it noticed),
// after the script cache was flushed (EVALSHA's NOSCRIPT), and for a
// missing record.
func TestGetWithEpoch(t *testing.T) {
	srv := redistest.Real(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := NewStore(rdb, Config{Now: func() time.Time { return now }})
	req := providers.OrderRequest{Provider: providers.Depal, OutOrderID: "ep-1",
		Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"},
		Items:   []providers.Item{{ProductID: 623456789012, SkuID: "b5f2", Quantity: 1}}}
	if _, _, err := s.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	k := Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	if _, err := s.Epoch(ctx); err != nil { // notes this server's run id
		t.Fatal(err)
	}
	// An earlier server noted: this one is new since now.
	if err := rdb.HSet(ctx, epochKey, "run", "an-earlier-server", "since", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r, epoch, err := s.GetWithEpoch(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key() != k || r.State != providers.StateReceived {
		t.Fatalf("record %v %s", r.Key(), r.State)
	}
	if !epoch.Equal(now) {
		t.Fatalf("epoch %s, want %s (the change just noticed)", epoch, now)
	}
	want, err := s.Epoch(ctx)
	if err != nil || !want.Equal(epoch) {
		t.Fatalf("Epoch %s (%v), GetWithEpoch %s", want, err, epoch)
	}
	if _, _, err := s.GetWithEpoch(ctx, Key{Provider: providers.Depal, OutOrderID: "none"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing record: %v, want ErrNotFound", err)
	}
}

// A record in the previous release's form (a hash) is read by
// GetWithEpoch too.
func TestGetWithEpochReadsTheOldForm(t *testing.T) {
	srv := redistest.Mini(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	doc := `{"version":1,"provider":"depal","outOrderId":"ep-old","request":{"provider":"depal","outOrderId":"ep-old"},"state":"received","receivedAt":"2026-11-30T10:00:00Z","history":[{"state":"received","at":"2026-11-30T10:00:00Z"}]}`
	if err := rdb.HSet(ctx, "orderflow:order:depal:ep-old", "v", "1", "doc", doc).Err(); err != nil {
		t.Fatal(err)
	}
	r, _, err := NewStore(rdb, Config{}).GetWithEpoch(ctx, Key{Provider: providers.Depal, OutOrderID: "ep-old"})
	if err != nil || r.Version != 1 || r.State != providers.StateReceived {
		t.Fatalf("old-form record: %+v, %v", r, err)
	}
}
