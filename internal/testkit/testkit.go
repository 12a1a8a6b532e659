// Package testkit builds the pieces end-to-end tests, the chaos run and the
// benchmarks share: a planned batch of orders with the state each must end
// in, a simulator on loopback, a worker binary, and waiting for orders to
// end.
package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/providers/sim"
)

// Planned is an order and the state it must end in.
type Planned struct {
	Req  providers.OrderRequest
	Want providers.State
}

// Key is the order's key.
func (p Planned) Key() orders.Key {
	return orders.Key{Provider: p.Req.Provider, OutOrderID: p.Req.OutOrderID}
}

// Batch plans n orders across both providers: mostly normal (completed),
// with planned preview failures (failed), seller cancellations
// (cancelled), refunds (terminated), split creates (completed), unknown
// status words (completed) and price-guard rejections (rejected).
func Batch(prefix string, n int) []Planned {
	out := make([]Planned, 0, n)
	for i := 0; i < n; i++ {
		p := providers.Names[i%len(providers.Names)]
		product := int64(623456780000 + i)
		want := providers.StateCompleted
		maxTotal := ""
		switch {
		case i%10 == 3:
			product, want = sim.PlannedErrorBase+int64(1+i%9), providers.StateFailed
		case i%10 == 5 && i%20 != 5:
			product, want = sim.ProductCancelled, providers.StateCancelled
		case i%20 == 5:
			product, want = sim.ProductTerminated, providers.StateTerminated
		case i%10 == 7:
			product = sim.ProductSplit
		case i%10 == 8:
			product = sim.ProductUnknownStatus
		case i%25 == 9:
			maxTotal, want = "0.01", providers.StateRejected
		}
		out = append(out, Planned{Want: want, Req: providers.OrderRequest{
			Provider:   p,
			OutOrderID: fmt.Sprintf("%s-%04d", prefix, i),
			Address: providers.Address{
				FullName: "Li Lei", Phone: "+86 138 0013 8000", Mobile: "13800138000", Country: "CN",
				Province: "Zhejiang", City: "Hangzhou", District: "Xihu", Address: "1 Example Road",
				PostCode: "310000", DistrictCode: "330106",
			},
			Items:    []providers.Item{{ProductID: product, SkuID: fmt.Sprintf("sku%d", i%7), Quantity: 1 + i%3}},
			MaxTotal: maxTotal,
			Options:  providers.Options{Flow: "general"},
		}})
	}
	return out
}

// StartSim starts a simulator on loopback, closed when the test ends.
func StartSim(tb testing.TB, cfg sim.Config) *sim.Sim {
	tb.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// FastTimeline is an order life of a few seconds at speed 3600.
var FastTimeline = sim.Timeline{PayAfter: 2 * time.Minute, ShipAfter: 20 * time.Minute,
	ParcelStep: 30 * time.Minute, CompleteAfter: 30 * time.Minute}

// WaitEnded waits until every planned order has ended, and returns the
// records. It fails the test at the timeout, listing the orders still
// live by state. progress, when set, is called on each round.
func WaitEnded(tb testing.TB, st *orders.Store, batch []Planned, timeout time.Duration) map[orders.Key]*orders.Record {
	tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	recs := map[orders.Key]*orders.Record{}
	for {
		live := map[string]int{}
		for _, p := range batch {
			if r := recs[p.Key()]; r != nil && r.Terminal() {
				continue
			}
			r, err := st.Get(ctx, p.Key())
			if err != nil {
				live["missing"]++
				continue
			}
			recs[p.Key()] = r
			if !r.Terminal() {
				live[string(r.State)]++
			}
		}
		if len(live) == 0 {
			return recs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s, orders not ended, by state: %v", timeout, live)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CheckStates fails the test for every order not in its planned state.
func CheckStates(tb testing.TB, batch []Planned, recs map[orders.Key]*orders.Record) {
	tb.Helper()
	var bad []string
	for _, p := range batch {
		r := recs[p.Key()]
		if r == nil || r.State != p.Want {
			got := "missing"
			if r != nil {
				got = fmt.Sprintf("%s (error %+v, history %+v)", r.State, r.Error, r.History)
			}
			bad = append(bad, fmt.Sprintf("%s: %s, want %s", p.Key(), got, p.Want))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		tb.Errorf("%d orders not in their planned state:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// BuildWorker builds cmd/worker into a temporary directory and returns
// the binary's path.
func BuildWorker(tb testing.TB) string {
	tb.Helper()
	bin, err := BuildWorkerInto(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// BuildWorkerInto builds cmd/worker of this module into dir and returns
// the binary's path: BuildWorker for the chaos run and the benchmarks.
func BuildWorkerInto(ctx context.Context, dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..") // internal/testkit/..
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/worker")
	cmd.Dir = root
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/worker: %w\n%s", err, out)
	}
	return bin, nil
}
