package console

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderflow/internal/console/consoletest"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// TestConsoleAtScale loads 10^5 orders into a real Redis and measures the
// console's pages through HTTP (the store reads and the rendering): the
// list, page after page, must answer in under 200 ms at p99. It is a
// measurement, run by `make bench` (ORDERFLOW_SCALE=1), not by the suite.
func TestConsoleAtScale(t *testing.T) {
	if os.Getenv("ORDERFLOW_SCALE") == "" {
		t.Skip("a measurement with 10^5 orders: make bench runs it (ORDERFLOW_SCALE=1)")
	}
	const n, workers = 100_000, 32
	srv := redistest.Real(t)
	st := orders.NewStore(srv.Client(t), orders.Config{Retention: time.Hour, StreamMaxLen: 1000})

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n || t.Failed() {
					return
				}
				p, id := providers.Names[i%2], fmt.Sprintf("S-%06d", i)
				switch i % 100 {
				case 1:
					consoletest.Write(t, st, p, id, providers.StateNeedsReview, "w")
				case 2:
					consoletest.Write(t, st, p, id, providers.StateFailed, "w")
				default:
					if _, _, err := st.Create(t.Context(), consoletest.Request(p, id)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("loaded %d orders in %v", n, time.Since(start).Round(time.Millisecond))

	c := New(Config{Store: st, Tasks: fakeTasks{}, Decider: &fakeDecider{st: st}})
	ts := httptest.NewServer(c)
	t.Cleanup(ts.Close)
	next1 := regexp.MustCompile(`<a href="(/console/orders\?[^"]+)">Next page`)
	p99 := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)*99/100]
	}
	measure := func(name, first string, calls int, follow bool) time.Duration {
		t.Helper()
		var ds []time.Duration
		u := first
		for i := range calls {
			t0 := time.Now()
			resp, err := http.Get(ts.URL + u)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			ds = append(ds, time.Since(t0))
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s call %d: GET %s: %d %v", name, i, u, resp.StatusCode, err)
			}
			if follow {
				m := next1.FindStringSubmatch(string(body))
				if m == nil {
					t.Fatalf("%s page %d has no next page", name, i)
				}
				u = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		lat := p99(ds)
		t.Logf("at %d orders: %s: p50 %v p99 %v (%d calls)", n, name, ds[calls/2].Round(time.Microsecond), lat.Round(time.Microsecond), calls)
		return lat
	}
	list := measure("list state=received, 50 pages in turn", "/console/orders?state=received", 50, true)
	all := measure("list every state, 50 pages in turn", "/console/orders", 50, true)
	reason := measure("list needs_review reason=CREATE_OUTCOME_UNKNOWN", "/console/orders?state=needs_review&reason=CREATE_OUTCOME_UNKNOWN", 20, false)
	search := measure("search by outOrderId", "/console/orders?q=S-054321", 50, false)
	overview := measure("overview", "/console/", 20, false)
	for name, lat := range map[string]time.Duration{"list": list, "list every state": all, "reason": reason, "search": search} {
		if lat > 200*time.Millisecond {
			t.Errorf("%s p99 %v, want < 200ms", name, lat)
		}
	}
	if overview > time.Second {
		t.Errorf("overview p99 %v, want < 1s", overview)
	}
}
