package app

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// listAnswer is the body of GET /v1/orders and GET /v1/orders/find/{id}.
type listAnswer struct {
	Orders []*orders.Record `json:"orders"`
	Next   string           `json:"next,omitempty"`
}

// listHandler is GET /v1/orders?state=&provider=&since=&cursor=&limit=: a
// page of orders from the per-state index, newest entry into its state
// first. state may repeat or be comma-separated; since is a Go duration.
func listHandler(w *Worker) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		q := orders.ListQuery{Provider: v.Get("provider"), Cursor: v.Get("cursor"), Limit: 50}
		bad := func(msg string) { writeJSON(rw, http.StatusBadRequest, map[string]string{"error": msg}) }
		for _, sv := range v["state"] {
			for _, s := range strings.Split(sv, ",") {
				st := providers.State(s)
				if !st.Valid() {
					bad("unknown state " + strconv.Quote(s))
					return
				}
				q.States = append(q.States, st)
			}
		}
		if q.Provider != "" && !providers.Known(q.Provider) {
			bad("unknown provider " + strconv.Quote(q.Provider))
			return
		}
		if l := v.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > orders.MaxListLimit {
				bad("limit must be 1…" + strconv.Itoa(orders.MaxListLimit))
				return
			}
			q.Limit = n
		}
		if s := v.Get("since"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				bad("since must be a Go duration ≥ 0")
				return
			}
			if d > 0 {
				q.Since = w.Store().Now().Add(-d)
			}
		}
		page, err := w.Store().List(r.Context(), q)
		switch {
		case errors.Is(err, orders.ErrCursor):
			bad("bad cursor")
		case err != nil:
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"error": "redis unavailable"})
		default:
			if page.Orders == nil {
				page.Orders = []*orders.Record{}
			}
			writeJSON(rw, http.StatusOK, listAnswer{Orders: page.Orders, Next: page.Next})
		}
	})
}

// findHandler is GET /v1/orders/find/{id}: the orders that own a provider
// order id or a parcel tracking number (at either provider).
func findHandler(w *Worker) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		recs, err := w.Store().Find(r.Context(), id)
		switch {
		case err != nil:
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"error": "redis unavailable"})
		case len(recs) == 0:
			writeJSON(rw, http.StatusNotFound, map[string]string{"error": "no order owns " + id})
		default:
			writeJSON(rw, http.StatusOK, listAnswer{Orders: recs})
		}
	})
}
