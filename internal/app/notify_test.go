package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
)

// An order with a callbackUrl hears every state change, in order, signed,
// also when the first deliveries fail.
func TestCallbacksInOrderSignedWithRetries(t *testing.T) {
	const secret = "cb-secret"
	var (
		mu       sync.Mutex
		states   []string
		seqs     []int
		failures = 2
	)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if got, want := r.Header.Get(pipeline.SignatureHeader), pipeline.Sign(secret, body); got != want {
			t.Errorf("signature %q, want %q", got, want)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		var ev pipeline.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		if len(seqs) > 0 && ev.Seq <= seqs[len(seqs)-1] {
			return // a repeated delivery after a retry: deduped by seq
		}
		states = append(states, ev.State)
		seqs = append(seqs, ev.Seq)
	}))
	t.Cleanup(upstream.Close)

	srv := redistest.Mini(t)
	fake := fakeprovider.New(providers.Depal)
	w, err := app.New(app.Config{
		Redis:                    asynq.RedisClientOpt{Addr: srv.Addr},
		Providers:                map[string]providers.Provider{providers.Depal: fake},
		PollSchedule:             []time.Duration{100 * time.Millisecond},
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
		CallbackSecret:           secret,
		CallbackAllowPrivate:     true, // the upstream is on 127.0.0.1
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	req := order(providers.Depal, "cb-1")
	req.CallbackURL = upstream.URL + "/events"
	b := &bundle{w: w}
	b.submit(t, req)
	k := orders.Key{Provider: providers.Depal, OutOrderID: "cb-1"}
	b.waitState(t, map[orders.Key]providers.State{k: providers.StateCompleted}, 20*time.Second)

	rec, _ := w.Store().Get(t.Context(), k)
	var want []string
	for _, h := range rec.History {
		want = append(want, string(h.State))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), states...)
		mu.Unlock()
		if len(got) == len(want) {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("callbacks %v, want %v", got, want)
				}
			}
			// the two refusals and the deliveries are on the record
			rec, _ = w.Store().Get(t.Context(), k)
			if len(rec.Deliveries) < 2 || rec.Deliveries[0].Status != http.StatusServiceUnavailable || rec.Deliveries[0].Error == "" ||
				rec.Deliveries[len(rec.Deliveries)-1].Error != "" {
				t.Fatalf("deliveries %+v", rec.Deliveries)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("callbacks %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
