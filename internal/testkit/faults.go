package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/providers/sim"
)

// ExtraLineProduct is the product of the second line WithSecondLine adds:
// a normal product, so the order's fate (and planned state) stays what its
// first line makes it.
const ExtraLineProduct int64 = 623456790000

// WithSecondLine gives every order of batch planned to complete with a
// normal first line (no split, no unknown status word, no price guard) a
// second, normal line, when pick(i) holds for its index i: the carts
// sim.Faults.PartialCreate can act on (it refuses the last line of 2 or
// more). The planned states do not change: a partial create is parked
// (needs_review, PARTIAL_CREATE) and followed, and the simulator completes
// the order made for the first line. It returns the indexes changed.
func WithSecondLine(batch []Planned, pick func(i int) bool) []int {
	var changed []int
	for i := range batch {
		p := &batch[i]
		if p.Want != providers.StateCompleted || p.Req.MaxTotal != "" || len(p.Req.Items) != 1 || !pick(i) {
			continue
		}
		switch p.Req.Items[0].ProductID {
		case sim.ProductSplit, sim.ProductUnknownStatus:
			continue
		}
		p.Req.Items = append(p.Req.Items, providers.Item{ProductID: ExtraLineProduct + int64(i), SkuID: "extra", Quantity: 1})
		changed = append(changed, i)
	}
	return changed
}

// SimLog is a slog.Handler for sim.Config.Logger that keeps what the
// simulator's counters do not: which outOrderIds a fault hit. Today it
// keeps the partial creates ("sim: injected partial create", by provider
// and outOrderId) and the duplicate creates ("sim: duplicate create").
type SimLog struct {
	mu         sync.Mutex
	partial    map[orders.Key]int
	duplicates map[orders.Key]int
}

// NewSimLog returns an empty SimLog.
func NewSimLog() *SimLog {
	return &SimLog{partial: map[orders.Key]int{}, duplicates: map[orders.Key]int{}}
}

// Logger is the logger to give the simulator.
func (l *SimLog) Logger() *slog.Logger { return slog.New(l) }

// Enabled takes debug records: the simulator logs its faults at debug.
func (l *SimLog) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps the records it knows.
func (l *SimLog) Handle(_ context.Context, r slog.Record) error {
	var m map[orders.Key]int
	switch r.Message {
	case "sim: injected partial create":
		m = l.partial
	case "sim: duplicate create":
		m = l.duplicates
	default:
		return nil
	}
	var k orders.Key
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "provider":
			k.Provider = a.Value.String()
		case "outOrderId":
			k.OutOrderID = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	m[k]++
	l.mu.Unlock()
	return nil
}

// WithAttrs and WithGroup: the simulator logs flat records.
func (l *SimLog) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l.
func (l *SimLog) WithGroup(string) slog.Handler { return l }

// Partial returns the orders the simulator created partially (one line
// refused), with how many partial creates each had.
func (l *SimLog) Partial() map[orders.Key]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[orders.Key]int, len(l.partial))
	for k, v := range l.partial {
		out[k] = v
	}
	return out
}

// Duplicates returns the orders the simulator created twice.
func (l *SimLog) Duplicates() []orders.Key {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]orders.Key, 0, len(l.duplicates))
	for k := range l.duplicates {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// ParkedPartial reports whether rec went through needs_review for a
// partial create (PARTIAL_CREATE) and keeps the refused lines.
func ParkedPartial(rec *orders.Record) bool {
	if len(rec.Rejected) == 0 {
		return false
	}
	return slices.ContainsFunc(rec.History, func(t orders.Transition) bool {
		return t.State == providers.StateNeedsReview && strings.Contains(t.Note, "PARTIAL_CREATE")
	})
}

// CheckCreates checks, for every order of batch, what the simulator made
// against what the record says: an order that reached the provider has
// exactly the simulator's order ids for its own outOrderId (no other
// order's adopted), the partial creates the simulator made (partial) and
// only those are recorded as partial and were parked (needs_review,
// PARTIAL_CREATE). It returns one line per problem; the partial creates
// that went unnoticed (the record adopted the order, without its refused
// line, through a lookup: the create's answer was lost) are among them,
// and also listed in unnoticed.
func CheckCreates(s *sim.Sim, batch []Planned, recs map[orders.Key]*orders.Record, partial map[orders.Key]int) (bad []string, unnoticed []orders.Key) {
	for _, p := range batch {
		rec := recs[p.Key()]
		if rec == nil {
			continue // CheckStates names it
		}
		var ids []string
		for _, v := range s.Order(p.Req.Provider, p.Req.OutOrderID) {
			ids = append(ids, v.OrderID)
		}
		got := append([]string(nil), rec.ProviderOrderIDs...)
		sort.Strings(ids)
		sort.Strings(got)
		if !slices.Equal(ids, got) {
			bad = append(bad, fmt.Sprintf("%s: record has provider orders %v, the simulator made %v for it", p.Key(), got, ids))
		}
		switch n := partial[p.Key()]; {
		case n > 0 && !ParkedPartial(rec):
			unnoticed = append(unnoticed, p.Key())
			bad = append(bad, fmt.Sprintf("%s: the simulator created it partially (a line refused) but the record is %s with rejected %v, error %+v, history %+v: the partial create went unnoticed",
				p.Key(), rec.State, rec.Rejected, rec.Error, rec.History))
		case n == 0 && len(rec.Rejected) > 0:
			bad = append(bad, fmt.Sprintf("%s: recorded rejected lines %v but the simulator made no partial create of it", p.Key(), rec.Rejected))
		}
	}
	sort.Strings(bad)
	return bad, unnoticed
}

// CreateGauge serves a simulator's handler and counts, at the HTTP server
// in front of it, the create calls (Xportcn create, Depal submit) that
// arrived, those whose handler has returned (answered, dropped, or cut
// by the client going away), and those cut: the client's connection was
// gone when the handler returned (the simulator commits a create before
// its Latency, so a cut create is one made and not answered). It is the
// simulator-side view of which creates are in flight.
type CreateGauge struct {
	h        http.Handler
	arrived  atomic.Int64
	returned atomic.Int64
	cut      atomic.Int64
}

// ServeHTTP counts a create and passes every call on.
func (g *CreateGauge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isCreate(r.URL.Path) {
		g.h.ServeHTTP(w, r)
		return
	}
	g.arrived.Add(1)
	defer g.returned.Add(1)
	g.h.ServeHTTP(w, r)
	if r.Context().Err() != nil {
		g.cut.Add(1)
	}
}

func isCreate(path string) bool {
	return strings.HasSuffix(path, sim.XportcnPathCreate) || strings.HasSuffix(path, "/"+sim.DepalMethodSubmit)
}

// Counts returns how many creates arrived, returned and were cut so far.
func (g *CreateGauge) Counts() (arrived, returned, cut int64) {
	// returned first: a create counted as returned has arrived.
	cut = g.cut.Load()
	returned = g.returned.Load()
	return g.arrived.Load(), returned, cut
}

// StartSimGauged starts a simulator on loopback behind a CreateGauge; both
// are closed when the test ends. The URLs to give the clients are
// XportcnURL and DepalURL of the returned server address.
func StartSimGauged(tb testing.TB, cfg sim.Config) (*sim.Sim, *CreateGauge, *GaugedURLs) {
	tb.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	g := &CreateGauge{h: s.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close(); _ = s.Close() })
	base := "http://" + ln.Addr().String()
	return s, g, &GaugedURLs{Xportcn: base + sim.XportcnPrefix, Depal: base + sim.DepalPrefix}
}

// GaugedURLs are the base URLs of a simulator behind a CreateGauge.
type GaugedURLs struct{ Xportcn, Depal string }
