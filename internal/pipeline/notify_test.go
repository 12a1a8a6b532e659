package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// notifyOrder stores an order with a callbackUrl and history entries:
// received, previewed, and needs_review with a person's decision.
func notifyOrder(t *testing.T, st *orders.Store, url string) orders.Key {
	t.Helper()
	req := onceOrder("cb-1", 1)
	req.CallbackURL = url
	if _, _, err := st.Create(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	k := orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID}
	if _, err := st.Update(t.Context(), k, func(r *orders.Record) error {
		if !r.Apply(providers.EventPreviewed, st.Now(), "") || !r.Apply(providers.EventParked, st.Now(), "") {
			return errors.New("moves refused")
		}
		// the store takes decision entries that are not moves once decide.go
		// is built; the fields are carried the same on any entry
		last := &r.History[len(r.History)-1]
		last.Event, last.Actor, last.Action, last.Reason = orders.EntryDecision, "ops@example", "retry", "provider said try again"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return k
}

func notifyTask(k orders.Key, upto int) *asynq.Task {
	b, _ := json.Marshal(notifyRef{ref: ref{Provider: k.Provider, OutOrderID: k.OutOrderID}, Upto: upto})
	return asynq.NewTask(tasks.TypeNotify, b)
}

func notifyHandlers(t *testing.T, srv *redistest.Server, c *http.Client) (*Handlers, *orders.Store) {
	t.Helper()
	b := setupOnce(t, srv, nil)
	h, err := New(Config{Store: b.st, Providers: map[string]providers.Provider{providers.Depal: b.fake},
		Enqueuer: b.client, Inspector: b.insp, HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	return h, b.st
}

// Two notify tasks of one order racing (one per history length, as
// notifyLater makes them) never have two POSTs in flight at the same time,
// and every entry arrives once, in order, recorded as delivered.
func TestNotifyNeverOverlapsForOneOrder(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		var (
			inFlight, overlaps atomic.Int32
			mu                 sync.Mutex
			seqs               []int
		)
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if inFlight.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inFlight.Add(-1)
			var ev Event
			_ = json.NewDecoder(r.Body).Decode(&ev)
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			seqs = append(seqs, ev.Seq)
			mu.Unlock()
		}))
		t.Cleanup(upstream.Close)
		h, st := notifyHandlers(t, srv, CallbackClient(true, 5*time.Second))
		k := notifyOrder(t, st, upstream.URL)

		var wg sync.WaitGroup
		for upto := 2; upto <= 3; upto++ {
			for range 2 { // and each task twice, as a redelivery would
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					for {
						err := h.ProcessTask(ctx, notifyTask(k, upto))
						if _, deferred := providers.AsDeferral(err); !deferred {
							if err != nil {
								t.Errorf("notify upto %d: %v", upto, err)
							}
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				})
			}
		}
		wg.Wait()
		if n := overlaps.Load(); n > 0 {
			t.Fatalf("%d POSTs overlapped another of the same order", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(seqs) != "[1 2 3]" {
			t.Fatalf("delivered seqs %v, want [1 2 3]", seqs)
		}
		r, _ := st.Get(t.Context(), k)
		if r.Notified != 3 || len(r.Deliveries) != 3 || r.Deliveries[2].Seq != 3 || r.Deliveries[2].Status != http.StatusOK || r.Deliveries[2].Error != "" {
			t.Fatalf("notified %d, deliveries %+v", r.Notified, r.Deliveries)
		}
	})
}

// A callback that answers a redirect is not followed: the delivery fails
// with the 3xx recorded, and the redirect's target never hears from us.
func TestNotifyDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	t.Cleanup(target.Close)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(upstream.Close)
	for name, c := range map[string]*http.Client{
		"CallbackClient":           CallbackClient(true, 5*time.Second),
		"a client of the embedder": {Transport: http.DefaultTransport},
	} {
		t.Run(name, func(t *testing.T) {
			h, st := notifyHandlers(t, redistest.Mini(t), c)
			k := notifyOrder(t, st, upstream.URL)
			err := h.ProcessTask(t.Context(), notifyTask(k, 1))
			if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
				t.Fatalf("notify = %v, want HTTP 307", err)
			}
			if followed.Load() != 0 {
				t.Fatal("the redirect was followed")
			}
			r, _ := st.Get(t.Context(), k)
			if r.Notified != 0 || len(r.Deliveries) != 1 || r.Deliveries[0].Status != http.StatusTemporaryRedirect || r.Deliveries[0].Error == "" {
				t.Fatalf("notified %d, deliveries %+v", r.Notified, r.Deliveries)
			}
		})
	}
}

// Without the allowance, a callbackUrl whose name resolves to a loopback
// address is refused when dialled (the receiver never hears a thing), the
// task is archived rather than retried, and the refusal is recorded. The
// default client (Config.HTTPClient nil) refuses too.
func TestNotifyRefusesAPrivateTargetWhenDialled(t *testing.T) {
	var heard atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { heard.Add(1) }))
	t.Cleanup(upstream.Close)
	url := strings.Replace(upstream.URL, "127.0.0.1", "localhost", 1)
	for name, c := range map[string]*http.Client{"CallbackClient": CallbackClient(false, 5*time.Second), "default": nil} {
		t.Run(name, func(t *testing.T) {
			h, st := notifyHandlers(t, redistest.Mini(t), c)
			k := notifyOrder(t, st, url)
			err := h.ProcessTask(t.Context(), notifyTask(k, 1))
			var refused *RefusedTargetError
			if !errors.As(err, &refused) || !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("notify = %v, want a refused target, archived", err)
			}
			if heard.Load() != 0 {
				t.Fatal("the loopback receiver was reached")
			}
			r, _ := st.Get(t.Context(), k)
			if len(r.Deliveries) != 1 || !strings.Contains(r.Deliveries[0].Error, "loopback") {
				t.Fatalf("deliveries %+v, want the refusal recorded", r.Deliveries)
			}
		})
	}
	for _, ip := range []string{"169.254.169.254", "0.0.0.0", "10.1.2.3", "[fd00::1]", "[::ffff:127.0.0.1]"} {
		t.Run(ip, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+ip+":9/x", strings.NewReader("{}"))
			_, err := CallbackClient(ip != "10.1.2.3" && ip != "[fd00::1]" && ip != "[::ffff:127.0.0.1]", time.Second).Do(req)
			var refused *RefusedTargetError
			if !errors.As(err, &refused) {
				t.Fatalf("POST %s = %v, want a refused target", ip, err)
			}
		})
	}
}

// A decision's callback carries who decided what and why.
func TestNotifyEventCarriesTheDecision(t *testing.T) {
	var got Event
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
	}))
	t.Cleanup(upstream.Close)
	h, st := notifyHandlers(t, redistest.Mini(t), CallbackClient(true, 5*time.Second))
	k := notifyOrder(t, st, upstream.URL)
	if err := h.ProcessTask(t.Context(), notifyTask(k, 3)); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 3 || got.Event != orders.EntryDecision || got.Actor != "ops@example" || got.Action != "retry" || got.Reason != "provider said try again" {
		t.Fatalf("last callback %+v", got)
	}
}
